#!/bin/bash
# A server started through a wrapper script (a cluster module's: it runs the real server as its child, in the
# background) is stopped as a process group: a start interrupted by SIGTERM, a start that times out, a wrapper
# that ignores SIGTERM (SIGKILL after --db-stop-timeout), a wrapper that ends at once leaving its server in the
# background, and a real FerretDB behind a wrapper stopped by --db-stop, in the same run and from another: no
# process of the wrapper's group is left. The wrappers write their children's pids; the proof is that every one
# of them, and the whole group, is gone within 10 s.
. ./tests/env.sh
. "$top_srcdir/tests/serve/lib.sh"
trap 'for p in $(cat "$T"/*.child 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done; serve_cleanup' EXIT

# group_left PGID: the live processes (not zombies) of process group PGID
group_left() {
    local p left=""
    for p in $(pgrep -g "$1"); do alive "$p" && left="$left $p"; done
    echo "$left"
}

# expect_gone WHAT PGID CHILDFILE: the child the wrapper recorded and every process of the group end within 10 s.
expect_gone() {
    local what=$1 pgid=$2 child left
    [ -s "$3" ] || fail "$what: the wrapper recorded no child"
    child=$(cat "$3")
    for _ in $(seq 200); do
        left=$(group_left "$pgid")
        alive "$child" && [[ " $left " != *" $child "* ]] && left="$left $child"
        [ -z "${left// /}" ] && { echo "$what: group $pgid and child $child gone"; return 0; }
        sleep 0.05
    done
    ps -o pid=,pgid=,sid=,ppid=,args= -p "$(echo $left | tr ' ' ,)" >&2
    fail "$what: processes of the server's group left running:$left"
}

# started_pid: the server's pid as the last run in $T/err logged it
started_pid() {
    sed -n 's/.* started pid \([0-9]*\) .*/\1/p' "$T/err" | tail -n1
}

# wrapper NAME BODY: a wrapper script $T/NAME whose background child's pid goes to $T/NAME.child
wrapper() {
    printf '#!/bin/bash\n%s\n' "$2" > "$T/$1" && chmod +x "$T/$1"
}

serve --db-init 2>"$T/err" || { cat "$T/err" >&2; fail "init"; }

# A start interrupted by SIGTERM while the wrapper's server (a stand-in that never answers) runs.
wrapper hangs 'sleep 300 & echo $! > "$0.child"; wait'
NEMESYST_FERRETDB="$T/hangs" "$SERVE_TOOL" "${SERVE_ARGS[@]}" --db-start 2>"$T/err" & tool=$!
wait_for_file "$T/hangs.child" && wait_for_file "$DB/nemesyst.pid" || fail "the wrapper did not start"
pid=$(server_pid)
kill -TERM "$tool"
rc=0; wait "$tool" || rc=$?
[ "$rc" = 143 ] || fail "SIGTERM during start: exit $rc ($(cat "$T/err"))"
expect_gone "interrupted start" "$pid" "$T/hangs.child"

# A start that times out.
wrapper slow 'sleep 300 & echo $! > "$0.child"; wait'
rc=0; NEMESYST_FERRETDB="$T/slow" serve --db-start --db-start-timeout 2 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "did not answer ping .* within --db-start-timeout 2 s" "$T/err" ||
    fail "start timeout: exit $rc ($(cat "$T/err"))"
pid=$(started_pid)
expect_gone "start timeout" "$pid" "$T/slow.child"

# A wrapper and server that ignore SIGTERM: SIGKILL for the group after --db-stop-timeout.
wrapper deaf 'trap "" TERM; sleep 300 & echo $! > "$0.child"; wait'
rc=0; NEMESYST_FERRETDB="$T/deaf" serve --db-start --db-start-timeout 2 --db-stop-timeout 1 2>"$T/err" || rc=$?
[ "$rc" = 3 ] || fail "deaf server: exit $rc ($(cat "$T/err"))"
grep -q "did not stop within --db-stop-timeout 1 s: killing it" "$T/err" || fail "no kill after the stop timeout: $(cat "$T/err")"
pid=$(started_pid)
expect_gone "SIGTERM ignored" "$pid" "$T/deaf.child"

# A wrapper that ends at once, its server left in the background: the start failed, and the server goes too.
wrapper leaves 'sleep 300 & echo $! > "$0.child"; exit 0'
rc=0; NEMESYST_FERRETDB="$T/leaves" serve --db-start 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "exited with status 0 before it answered ping" "$T/err" ||
    fail "wrapper that left: exit $rc ($(cat "$T/err"))"
pid=$(started_pid)
expect_gone "wrapper that left its server" "$pid" "$T/leaves.child"
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after a wrapper that left its server"

# The real FerretDB behind a wrapper: a full cycle in one run, then --db-start and --db-stop from another run.
wrapper real "\"$FERRETDB_BIN\" \"\$@\" & echo \$! > \"\$0.child\"; wait"
cp "$T/real" "$T/real2"
out=$(NEMESYST_FERRETDB="$T/real" NEM_SERVE_TOOL_ROUNDTRIP=1 serve --db-start --db-stop 2>"$T/err") ||
    { cat "$T/err" >&2; fail "cycle through a wrapper"; }
[ "$out" = "roundtrip ok" ] || fail "round trip through a wrapper: $out"
pid=$(started_pid)
expect_gone "--db-start --db-stop" "$pid" "$T/real.child"
NEMESYST_FERRETDB="$T/real2" serve --db-start 2>"$T/err" || { cat "$T/err" >&2; fail "start through a wrapper"; }
pid=$(server_pid)
alive "$(cat "$T/real2.child")" || fail "the real server is not running after --db-start"
serve --db-stop --db-stop-timeout 20 2>"$T/err" || { cat "$T/err" >&2; fail "--db-stop of a wrapper's server"; }
expect_gone "--db-stop from another run" "$pid" "$T/real2.child"
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after --db-stop"
exit 0
