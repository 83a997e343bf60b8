#!/bin/bash
# The database server is SIGKILLed during a clean stage, after some of a script's documents were stored: nemesyst
# does not retry (a write it cannot confirm is not retried blindly); it fails at once with exit 3 and a message
# saying how to finish the run. Once the server is restarted and the run's heartbeat has expired (it is lost),
# --resume removes what the interrupted script stored and reruns it: every document exactly once.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
. "$top_srcdir/tests/serve/lib.sh"
cat >"$T/two_halves.sh" <<EOS
#!/bin/sh
# 3000 documents (stored: past the bulk writer's 1000), a pause while the marker exists, then 3000 more
awk 'BEGIN { for (i = 0; i < 3000; i++) printf "{\"i\": %d}\n", i }'
if [ -e "$T/marker" ]; then touch "$T/half"; sleep 5; fi
awk 'BEGIN { for (i = 3000; i < 6000; i++) printf "{\"i\": %d}\n", i }'
EOS
chmod +x "$T/two_halves.sh"
args=(--db-engine ferretdb --db-path "$T/db" --db-log-path "$T/db/log" --db-ip 127.0.0.1 --db-port "$PORT"
      --db-name sk --db-user-name alice --db-password-file "$T/pw" --heartbeat 1)
"$NEMESYST" "${args[@]}" --db-init --db-start 2>"$T/err0" || { cat "$T/err0"; fail "init and start"; }
touch "$T/marker"
"$NEMESYST" "${args[@]}" --data-clean --data-cleaner "$T/two_halves.sh" --data-collection c >"$T/out" 2>"$T/err" &
job=$!
for _ in $(seq 1 1200); do [ -e "$T/half" ] && break; sleep 0.05; done
[ -e "$T/half" ] || { cat "$T/err"; fail "the script never reached its pause"; }
# Wait until the first thousands are stored (the host flushes them in bulk as they arrive), however slow the machine.
NEM_T_USER=alice NEM_T_PASSWORD="$(cat "$T/pw")" NEM_T_PORT=$PORT check sk <<'PY' || fail "no document was stored"
import time
for _ in range(600):
    if count("c") >= 1000:
        break
    time.sleep(0.05)
ok(count("c") >= 1000, "documents stored before the kill: %d" % count("c"))
PY
kill -KILL "$(server_pid)"
RC=0; wait "$job" || RC=$?
cat "$T/out"; sed 's/^/   stderr: /' "$T/err" | tail -n 8
[ "$RC" -eq 3 ] || fail "exit status $RC after the server was killed, want 3"
RUN=$(sed -n 's/.* info: run \([^ ]*\)$/\1/p' "$T/err" | head -n 1)
grep -q "once it works again, --resume $RUN finishes this run exactly once" "$T/err" ||
    fail "no message saying how to finish the run"

rm -f "$T/marker"
"$NEMESYST" "${args[@]}" --db-start 2>"$T/err1" || { cat "$T/err1"; fail "restart after the kill"; }
NEM_T_USER=alice NEM_T_PASSWORD="$(cat "$T/pw")" NEM_T_PORT=$PORT check sk <<'PY'
eq(run["status"], "running", "the record of the cut-off run (the server was gone when it ended)")
ok(0 < count("c") < 6000, "part of the documents were stored before the kill: %d" % count("c"))
PY
sleep 3.5 # its heartbeat expires: the run is lost
"$NEMESYST" "${args[@]}" --data-clean --data-cleaner "$T/two_halves.sh" --data-collection c --resume "$RUN" \
    --db-stop >"$T/out2" 2>"$T/err2" || { cat "$T/out2" "$T/err2"; fail "--resume after the restart"; }
"$NEMESYST" "${args[@]}" --db-start 2>/dev/null || fail "start for the check"
NEM_T_USER=alice NEM_T_PASSWORD="$(cat "$T/pw")" NEM_T_PORT=$PORT check sk <<'PY'
eq(run["status"], "succeeded", "status after resume")
eq(count("c"), 6000, "documents: each exactly once")
eq(len(db.c.distinct("i")), 6000, "distinct documents")
PY
"$NEMESYST" "${args[@]}" --db-stop 2>/dev/null || fail "final stop"
