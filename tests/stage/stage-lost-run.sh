#!/bin/bash
# Lost runs: rank 0 refreshes its run record's heartbeat (--heartbeat 1); a live run cannot be resumed; after rank 0
# is SIGKILLed the record still says "running" (nothing could close it), but --list-runs reports it as lost (exit 1)
# once the heartbeat is 3 intervals old, no script or child of a script is left, and --resume of the lost run
# completes it with exactly one copy of each document.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
cat >"$T/slow.sh" <<EOS
#!/bin/sh
# two documents; while the marker exists, then a child and a long sleep (the run is killed meanwhile)
echo '{"n": 1}'
echo '{"n": 2}'
if [ -e "$T/marker" ]; then
    sleep 300 &
    echo \$! >"$T/child.pid"
    sleep 300
fi
EOS
chmod +x "$T/slow.sh"
touch "$T/marker"
common=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name lost --heartbeat 1)
args=(--data-clean --data-cleaner "$FIX/clean.sh" "$T/slow.sh" --data-collection c --process-pool 2)
"$MPIRUN" --oversubscribe -n 2 "$NEMESYST" "${common[@]}" "${args[@]}" >"$T/out1" 2>"$T/err1" &
job=$!
for _ in $(seq 1 1200); do [ -s "$T/child.pid" ] && break; sleep 0.05; done
[ -s "$T/child.pid" ] || { cat "$T/err1"; fail "the slow script never started"; }
RUN=$(sed -n 's/.* info: run \([^ ]*\)$/\1/p' "$T/err1" | head -n 1)
[ -n "$RUN" ] || fail "no run id in the log"
check lost <<'PY'
import time
b1 = run["heartbeat"]
for _ in range(300):  # up to 30 s: a loaded machine may delay a beat, never stop it
    b2 = db.nemesyst_runs.find_one({"_id": RUN})["heartbeat"]
    if b2 > b1:
        break
    time.sleep(0.1)
ok(b2 > b1, "the heartbeat advances while the run lives (%s -> %s)" % (b1, b2))
eq(run["heartbeat_s"], 1, "heartbeat interval in the record")
PY
lost_run=$RUN
stage_run 0 lost "${args[@]}" --heartbeat 1 --resume "$lost_run"
RUN=$lost_run
expect_rc 2
grep -q "that run is still running" "$ERR" || fail "resuming a live run was not refused clearly"

# rank 0 (the process of this job whose environment says rank 0) is killed outright
rank0=
for p in /proc/[0-9]*; do
    { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=0" || continue
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "--db-name lost" && rank0=${p#/proc/}
done
[ -n "$rank0" ] || fail "cannot find rank 0"
kill -KILL "$rank0"
wait "$job"
echo "job ended with $? after rank 0 was killed"
child=$(cat "$T/child.pid")
alive() { [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" | grep -q '^Z'; }
for _ in $(seq 1 40); do alive "$child" || break; sleep 0.25; done
! alive "$child" || { kill -9 "$child"; fail "a script's child outlived the killed job"; }
check lost <<'PY'
eq(run["status"], "running", "the record of the killed run (nothing could close it)")
PY
sleep 3.5 # past 3 heartbeat intervals
stage_run 0 lost --list-runs
RUN=$lost_run
expect_rc 1
grep -Eq "^$RUN +- +lost " "$OUT" || fail "--list-runs does not call the killed run lost"
grep -q "1 lost run(s)" "$ERR" || fail "no warning about the lost run"

rm -f "$T/marker"
stage_run 2 lost "${args[@]}" --heartbeat 1 --resume "$lost_run"
expect_rc 0
[ "$RUN" = "$lost_run" ] || fail "resume reported run '$RUN'"
grep -q "that run was lost" "$ERR" || fail "resume did not say it takes over a lost run"
check lost <<'PY'
eq(run["status"], "succeeded", "status after resuming the lost run")
eq(count("c", of_run()), 9, "documents: 7 + 2, each once")
eq(count("c", {"n": 1}), 1, "copies of the slow script's first document")
PY
stage_run 0 lost --list-runs
[ "$RC" -eq 0 ] || fail "--list-runs exited $RC with no lost run left"
grep -Eq "^$lost_run +- +succeeded " "$OUT" || fail "--list-runs does not show the resumed run as succeeded"
