#!/bin/bash
# Signals never leave a server behind: SIGTERM while --db-start waits for readiness, SIGINT or SIGTERM while a
# run that owns the server (--db-stop given) is busy (the server serves until the run has wound down), a second
# signal while it winds down, and SIGKILL of that run (PR_SET_PDEATHSIG).
. ./tests/env.sh
. "$top_srcdir/tests/serve/lib.sh"

serve --db-init 2>"$T/err" || { cat "$T/err" >&2; fail "init"; }

# A slow server: SIGTERM arrives during the start (after the pid file exists, before ping answers).
printf '#!/bin/bash\nsleep 3 3>&-\nexec "%s" "$@"\n' "$FERRETDB_BIN" > "$T/slow" && chmod +x "$T/slow"
NEMESYST_FERRETDB="$T/slow" "$SERVE_TOOL" "${SERVE_ARGS[@]}" --db-start 2>"$T/err" & tool=$!
wait_for_file "$DB/nemesyst.pid" || fail "no pid file"
pid=$(server_pid)
kill -TERM "$tool"
rc=0; wait "$tool" || rc=$?
[ "$rc" = 143 ] || fail "SIGTERM during start: exit $rc ($(cat "$T/err"))"
for _ in $(seq 1 200); do alive "$pid" || break; sleep 0.05; done
! alive "$pid" || fail "server $pid left after SIGTERM during --db-start"
sleep 3.5   # past the wrapper's sleep: nothing may exec ferretdb later
! pgrep -f -- "--sqlite-url=file:$DB/" >/dev/null || fail "a ferretdb for $DB appeared after the interrupted start"

# The first signal leaves the server serving while the run winds down (stage rollback, run record: here a round
# trip after the hold), then the run stops it in order.
for sig in TERM INT; do
    NEM_SERVE_TOOL_HOLD=30 NEM_SERVE_TOOL_ROUNDTRIP_AFTER_HOLD=1 "$SERVE_TOOL" "${SERVE_ARGS[@]}" --db-start --db-stop \
        >"$T/out" 2>"$T/err" & tool=$!
    for _ in $(seq 1 3600); do grep -qx "holding" "$T/err" && break; sleep 0.05; done # up to 3 min under load
    pid=$(server_pid); alive "$pid" || fail "no server to interrupt"
    kill -"$sig" "$tool"
    rc=0; wait "$tool" || rc=$?
    [ "$rc" -ge 128 ] || fail "SIG$sig: exit $rc"
    grep -qx "roundtrip ok" "$T/out" || fail "the server was gone before the run wound down after SIG$sig: $(cat "$T/out" "$T/err")"
    grep -q "(pid $pid) stopped" "$T/err" || fail "SIG$sig: the run did not stop its server in order: $(cat "$T/err")"
    ! alive "$pid" || fail "server $pid left after SIG$sig to its owner"
    [ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after SIG$sig"
done

# The same signal twice within a moment (a launcher delivering one signal by two paths, as Slurm's time limit does
# through slurmstepd and srun): one signal, the run winds down in order and stops its server itself.
NEM_SERVE_TOOL_HOLD=30 "$SERVE_TOOL" "${SERVE_ARGS[@]}" --db-start --db-stop 2>"$T/err" & tool=$!
for _ in $(seq 1 3600); do grep -qx "holding" "$T/err" && break; sleep 0.05; done
pid=$(server_pid); alive "$pid" || fail "no server to interrupt: $(cat "$T/err")"
kill -TERM "$tool"; kill -TERM "$tool"
rc=0; wait "$tool" || rc=$?
[ "$rc" = 143 ] || fail "two SIGTERMs at once: exit $rc: $(cat "$T/err")"
grep -q "(pid $pid) stopped" "$T/err" || fail "two SIGTERMs at once: the server was not stopped in order: $(cat "$T/err")"
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after two SIGTERMs at once"

# A second signal seconds later, while the run winds down: the user insists, the server is killed at once with
# the run.
NEM_SERVE_TOOL_HOLD=30 NEM_SERVE_TOOL_LINGER=30 "$SERVE_TOOL" "${SERVE_ARGS[@]}" --db-start --db-stop 2>"$T/err" & tool=$!
for _ in $(seq 1 3600); do grep -qx "holding" "$T/err" && break; sleep 0.05; done # up to 3 min under load
pid=$(server_pid); alive "$pid" || fail "no server to interrupt twice: $(cat "$T/err")"
kill -TERM "$tool"; sleep 2.5
alive "$pid" || fail "server $pid stopped by the first signal, before the run wound down"
start=$SECONDS
kill -TERM "$tool"
rc=0; wait "$tool" || rc=$?
[ "$rc" = 143 ] || fail "second SIGTERM: exit $rc"
[ $((SECONDS - start)) -lt 10 ] || fail "the second signal did not end the run at once"
for _ in $(seq 1 600); do alive "$pid" || break; sleep 0.05; done
! alive "$pid" || fail "server $pid left after a second SIGTERM"

# The owner killed outright: the kernel's parent-death signal stops the server.
NEM_SERVE_TOOL_HOLD=30 "$SERVE_TOOL" "${SERVE_ARGS[@]}" --db-start --db-stop 2>"$T/err" & tool=$!
for _ in $(seq 1 3600); do grep -qx "holding" "$T/err" && break; sleep 0.05; done # up to 3 min under load
pid=$(server_pid); alive "$pid" || fail "no server to orphan: $(cat "$T/err")"
kill -KILL "$tool"; wait "$tool" 2>/dev/null
for _ in $(seq 1 600); do alive "$pid" || break; sleep 0.05; done
! alive "$pid" || fail "server $pid outlived its owner's SIGKILL"
exit 0
