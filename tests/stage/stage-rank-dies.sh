#!/bin/bash
# A worker rank dying (killed with SIGKILL by the script it runs) ends the whole job with a non-zero status and a
# message that names the dead rank, without hanging (mpirun -n 3 under `timeout 60`); the script's own child dies
# with it (no orphan).
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
start=$SECONDS
export NEM_T_PIDFILE="$T/child.pid"
timeout -k 5 60 "$MPIRUN" --oversubscribe -n 3 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" \
    --db-name rankdies --process-pool 1 --data-clean --data-cleaner "$FIX/kill_rank.sh" "$FIX/clean.sh" \
    --data-collection c >"$T/out" 2>"$T/err"
rc=$?
elapsed=$((SECONDS - start))
echo "exit $rc after $elapsed s"; cat "$T/out"; cat "$T/err"
[ $elapsed -lt 55 ] && [ $rc -ne 124 ] || fail "the job hung after a rank died (stopped by timeout after $elapsed s)"
[ $rc -ne 0 ] || fail "the job exited 0 after a rank died"
grep -Eiq "rank 1 .*(exited|killed|signal|died)" "$T/err" || fail "no message naming the dead rank"
child=$(cat "$NEM_T_PIDFILE" 2>/dev/null) || fail "the script never started its child"
alive() { [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" | grep -q '^Z'; } # a zombie is dead
for _ in $(seq 1 40); do alive "$child" || break; sleep 0.25; done
! alive "$child" || { kill -9 "$child"; fail "the script's child (pid $child) outlived its killed rank"; }
