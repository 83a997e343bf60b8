#!/bin/bash
# SIGTERM to nemesyst during a stage: the running scripts are stopped and fail with an error naming them and the
# signal, the run record is closed as interrupted ("interrupted by signal 15"), and the exit status is 143.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
NEM_T_SLEEP=30 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name interrupt --process-pool 2 \
    --data-clean --data-cleaner "$FIX/clean.sh" "$FIX/clean.sh" --data-collection c >"$T/out" 2>"$T/err" &
pid=$!
# wait until both scripts run (their start is logged), then signal nemesyst itself
for i in $(seq 600); do # up to 60 s: a loaded machine starts slowly
    [ "$(grep -c 'started (executable' "$T/err")" -ge 2 ] && break
    sleep 0.1
done
kill -TERM "$pid"
start=$SECONDS
wait "$pid"
rc=$?
cat "$T/out" "$T/err"
[ $rc -eq 143 ] || fail "exit status $rc after SIGTERM, want 143"
[ $((SECONDS - start)) -lt 20 ] || fail "took $((SECONDS - start)) s to stop"
RUN=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$T/out")
check interrupt "$FIX/clean.sh" <<'PY'
eq((run["status"], run["error"]), ("interrupted", "interrupted by SIGTERM (signal 15); --resume %s finishes it" % RUN),
   "run record")
for p in range(2):
    e = script("clean-%d" % p)
    eq((e["status"], e["error"]), ("failed", "clean script #%d '%s': interrupted by signal 15" % (p, argv[0])),
       "clean-%d" % p)
eq(count("c"), 0, "documents")
PY
