#!/bin/bash
# SIGINT and SIGTERM under mpirun, through nemesyst-mpirun, at each phase (init, start, mid-stage, stop): the run
# winds down in order and the job exits 130 or 143 (plain mpirun would exit 1 and kill the ranks a second later);
# an interrupted stage's run record says "interrupted", its partial documents are rolled back, and no script, child
# of a script or server is left.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
. "$top_srcdir/tests/serve/lib.sh"
WRAP="$top_srcdir/src/app/nemesyst-mpirun"
export MPIRUN="$MPIRUN --oversubscribe"
cat >"$T/slow_clean.sh" <<EOS
#!/bin/sh
# one document, then a child that sleeps (it must die with the script), then the script sleeps too
echo '{"n": 1}'
sleep 300 &
sleep 300
EOS
chmod +x "$T/slow_clean.sh"
# A ferretdb that takes a while to start or to stop, so that a signal lands in that phase.
printf '#!/bin/bash\nsleep 2 3>&-\nexec "%s" "$@"\n' "$FERRETDB_BIN" >"$T/slow_start" && chmod +x "$T/slow_start"
printf '#!/bin/bash\ntrap "sleep 2; kill \\$child; wait \\$child" TERM\n"%s" "$@" &\nchild=$!\nwait $child\nwait $child\n' \
    "$FERRETDB_BIN" >"$T/slow_stop" && chmod +x "$T/slow_stop"

leftovers() { # processes whose command line names this test's directory (scripts, their children, servers)
    local p out=
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = $$ ] && continue
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF "$T/" && out+="${p#/proc/} "
    done
    echo "$out"
}

# launch PHASE_PATTERN SIG ARGS...: starts the job, waits for the log line PHASE_PATTERN, sends SIG to the wrapper.
launch() {
    local pattern=$1 sig=$2
    shift 2
    # A background job of a script starts with SIGINT ignored, which no trap can undo: restore it first, as a
    # terminal's foreground job would have it.
    "$PYTHON3" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
        "$WRAP" -n 2 "$NEMESYST" --db-ip 127.0.0.1 "$@" >"$T/out" 2>"$T/err" &
    local w=$!
    for _ in $(seq 1 1200); do grep -Eq "$pattern" "$T/err" && break; sleep 0.05; done
    grep -Eq "$pattern" "$T/err" || { cat "$T/err"; fail "never reached '$pattern'"; }
    kill -"$sig" "$w"
    RC=0; wait "$w" || RC=$?
    echo "== SIG$sig at '$pattern' -> exit $RC"; sed 's/^/   stderr: /' "$T/err" | tail -n 12
}
want_rc() { [ "$RC" -eq "$1" ] || fail "exit status $RC, want $1"; }
no_leftovers() {
    local left
    for _ in $(seq 1 40); do left=$(leftovers); [ -z "$left" ] && return 0; sleep 0.25; done
    fail "left behind: $(for p in $left; do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done)"
}

# Mid-stage, against the suite's server: both signals.
for sig in INT TERM; do
    want=$([ $sig = INT ] && echo 130 || echo 143)
    launch "started \(executable" $sig --db-port "$NEM_TEST_PORT" --db-name sig_$sig \
        --data-clean --data-cleaner "$T/slow_clean.sh" --data-collection c
    want_rc "$want"
    no_leftovers
    RUN=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$T/out" | tail -n 1)
    check sig_$sig $want <<'PY'
eq(run["status"], "interrupted", "run status")
sig = {"130": 2, "143": 15}[argv[0]]
eq(run["error"], "interrupted by %s (signal %d); --resume %s finishes it" % ({2: "SIGINT", 15: "SIGTERM"}[sig], sig, RUN),
   "run error")
eq(count("c"), 0, "partial documents rolled back")
PY
done

# Serving phases, with a server the job owns: SIGTERM during init and during start (slow to start), SIGINT during
# stop (slow to stop).
serve_args=(--db-engine ferretdb --db-path "$T/db" --db-log-path "$T/db/log" --db-port "$PORT" --db-name s
            --db-user-name alice --db-password-file "$T/pw")
NEMESYST_FERRETDB="$T/slow_start" launch "ferretdb init: started" TERM "${serve_args[@]}" --db-init
want_rc 143
no_leftovers
NEMESYST_FERRETDB="$FERRETDB_BIN" "$NEMESYST" --db-ip 127.0.0.1 "${serve_args[@]}" --db-init 2>"$T/err" ||
    { cat "$T/err"; fail "init after an interrupted init (no half-written state may break it)"; }
NEMESYST_FERRETDB="$T/slow_start" launch "ferretdb start: started" TERM "${serve_args[@]}" --db-start --db-stop
want_rc 143
no_leftovers
NEMESYST_FERRETDB="$T/slow_stop" launch "clean\[0\] done" INT "${serve_args[@]}" --db-start --db-stop \
    --data-clean --data-cleaner "$FIX/clean.sh" --data-collection c
[ "$RC" -eq 130 ] || [ "$RC" -eq 0 ] || fail "SIGINT near the stop: exit $RC, want 130 (or 0 when it came after the end)"
no_leftovers
[ ! -e "$T/db/nemesyst.pid" ] || fail "pid file left after an interrupted stop"
