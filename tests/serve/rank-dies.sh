#!/bin/bash
# A worker rank dying in a job whose rank 0 started the server (--db-start ... --db-stop): the job ends non-zero
# within the timeout and the server is gone afterwards (SIGTERM from mpirun reaches rank 0's handler, or
# PDEATHSIG when rank 0 is killed outright).
. ./tests/env.sh
. "$top_srcdir/tests/serve/lib.sh"
NEM_ARGS=(--db-engine ferretdb --db-path "$DB" --db-log-path "$DB/log" --db-port "$PORT" --db-user-name alice
          --db-password-file "$T/pw" --db-ip 127.0.0.1)
"$NEMESYST" "${NEM_ARGS[@]}" --db-init 2>"$T/err" || { cat "$T/err" >&2; fail "init"; }
cat > "$T/kill_rank.sh" <<'EOS'
#!/bin/sh
# Kills the worker rank that started it (its parent).
kill -9 $PPID
sleep 5
EOS
chmod +x "$T/kill_rank.sh"
start=$SECONDS
timeout -k 5 90 "$MPIRUN" --oversubscribe -n 3 "$NEMESYST" "${NEM_ARGS[@]}" --db-start --db-stop --data-clean \
    --data-cleaner "$T/kill_rank.sh" --data-collection c >"$T/out" 2>"$T/err" &
job=$!
wait_for_file "$DB/nemesyst.pid" || { cat "$T/err"; fail "the server did not start"; }
pid=$(server_pid)
alive "$pid" || fail "no live server pid in the pid file"
wait "$job"; rc=$?
[ $((SECONDS - start)) -lt 85 ] || fail "the job hung after a rank died"
[ $rc -ne 0 ] || fail "the job exited 0 after a rank died"
for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done
! alive "$pid" || { cat "$T/err"; fail "server $pid outlived the job whose rank died"; }
echo "rank-dies: job exit $rc, server $pid gone"
