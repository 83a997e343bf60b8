#!/bin/bash
# Nothing outlives its job: a script of every kind (an executable, an original-style Python script, the C plugin)
# leaves daemons behind, processes that left its process group and session (setsid, a double fork); when the
# script ends, however it ends (success, failure, --script-timeout, its own SIGKILL, a SIGTERM it ignores, nemesyst
# interrupted or killed outright), they end with it. Each script writes its daemons' pids to a file first; the
# proof is that every one of them is gone within 10 s of the script's end.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
DFIX="$FIX/daemon"
trap 'for p in $(cat "$T"/d*/*-[0-9]*-[0-9]* 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done; rm -rf "$T"' EXIT

# gone PID: no such process, or one that has ended and waits to be reaped
gone() {
    kill -0 "$1" 2>/dev/null || return 0
    [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}

# expect_gone WHAT DIR NFILES: DIR holds NFILES pid files (one per script), and every pid they list is gone within
# 10 s.
expect_gone() {
    local what=$1 dir=$2 want=$3 f pid pids="" n=0 left
    for f in "$dir"/*; do
        case ${f##*/} in *.*) continue ;; esac
        n=$((n + 1))
        pids="$pids $(tr '\n' ' ' < "$f")"
    done
    [ "$n" -eq "$want" ] || fail "$what: $n pid files in $dir, want $want: $(ls "$dir")"
    for _ in $(seq 200); do
        left=""
        for pid in $pids; do gone "$pid" || left="$left $pid"; done
        [ -z "$left" ] && { echo "$what: daemons $pids gone"; return 0; }
        sleep 0.05
    done
    for pid in $left; do ps -o pid=,pgid=,sid=,ppid=,args= -p "$pid" >&2; done
    fail "$what: daemons left running 10 s after their scripts ended:$left"
}

# wait_files DIR N: N pid files in DIR (the scripts are running and their daemons exist)
wait_files() {
    for _ in $(seq 1200); do # up to 60 s: a loaded machine starts slowly
        [ "$(find "$1" -maxdepth 1 -name '*-[0-9]*-[0-9]*' ! -name '*.*' | wc -l)" -ge "$2" ] && return 0
        sleep 0.05
    done
    fail "the scripts did not report their daemons: $(ls "$1")"
}

scripts=(--data-clean --data-cleaner "$DFIX/daemon.sh" "$DFIX/daemon.py" "$PLUGIN"
         --data-cleaner-entry-point main main daemonize --process-pool 3)

# Success, on two ranks (the scripts run on rank 1): the documents are stored, the daemons are gone.
mkdir "$T/dok"
NEM_T_DAEMON_DIR="$T/dok" stage_run 2 daemon_ok "${scripts[@]}" --data-collection c_exec c_py c_so
expect_rc 0
check daemon_ok <<'PY'
eq(run["status"], "succeeded", "run status")
eq((count("c_exec"), count("c_py"), count("c_so")), (3, 3, 13), "documents")
PY
expect_gone success "$T/dok" 3

# Failure: every script fails after leaving its daemons.
mkdir "$T/dfail"
NEM_T_DAEMON_DIR="$T/dfail" NEM_T_DAEMON_END=fail stage_run 0 daemon_fail "${scripts[@]}" --data-collection f1 f2 f3
expect_rc 4
grep -q "daemon.sh.*exited with status 3" "$ERR" || fail "no failure of daemon.sh"
expect_gone failure "$T/dfail" 3

# The script kills itself.
mkdir "$T/dkill"
NEM_T_DAEMON_DIR="$T/dkill" NEM_T_DAEMON_END=kill stage_run 0 daemon_kill "${scripts[@]}" --data-collection k1 k2 k3
expect_rc 4
grep -q "daemon.sh.*killed by SIGKILL" "$ERR" || fail "no SIGKILL of daemon.sh"
expect_gone kill "$T/dkill" 3

# --script-timeout: the scripts hang; a fourth ignores SIGTERM, so its guard's hard stop ends it after the grace.
mkdir "$T/dtime"
printf '#!/bin/sh\ntrap "" TERM\nNEM_T_DAEMON_END=wait exec "%s"\n' "$DFIX/daemon.sh" > "$T/stubborn.sh"
chmod +x "$T/stubborn.sh"
NEM_T_DAEMON_DIR="$T/dtime" NEM_T_DAEMON_END=hang stage_run 2 daemon_timeout --script-timeout 2 \
    --data-clean --data-cleaner "$DFIX/daemon.sh" "$DFIX/daemon.py" "$PLUGIN" "$T/stubborn.sh" \
    --data-cleaner-entry-point main main daemonize main --process-pool 4 --data-collection t1 t2 t3 t4
expect_rc 4
[ "$(grep -c "timed out after 2 s" "$ERR")" -ge 4 ] || fail "not every script timed out"
expect_gone timeout "$T/dtime" 4

# nemesyst interrupted (SIGTERM) while the scripts run: they stop, and their daemons with them.
mkdir "$T/dint"
NEM_T_DAEMON_DIR="$T/dint" NEM_T_DAEMON_END=wait "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" \
    --db-name daemon_int "${scripts[@]}" --data-collection i1 i2 i3 >"$T/out.int" 2>"$T/err.int" &
pid=$!
wait_files "$T/dint" 3
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 143 ] || { cat "$T/err.int"; fail "exit status $rc after SIGTERM, want 143"; }
expect_gone interrupt "$T/dint" 3

# nemesyst killed outright: each guard's death signal ends its script and the script's daemons.
mkdir "$T/dkilled"
NEM_T_DAEMON_DIR="$T/dkilled" NEM_T_DAEMON_END=wait "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" \
    --db-name daemon_killed "${scripts[@]}" --data-collection x1 x2 x3 >"$T/out.killed" 2>"$T/err.killed" &
pid=$!
wait_files "$T/dkilled" 3
kill -KILL "$pid"
wait "$pid" 2>/dev/null
expect_gone "nemesyst killed" "$T/dkilled" 3
echo "stage-daemon: ok"
