#!/bin/bash
# Resume at once when the failure is plain to see, with the default --heartbeat (30 s): the run record names its
# rank 0 (host, boot id, pid namespace, pid, start time), so a run still recorded as running whose rank 0 ran on
# this host and has ended is lost at once, for --resume, --list-runs and nemesyst-registry runs alike.
#   A: the database server is SIGKILLed mid-stage: nemesyst exits 3 saying --resume finishes the run; once the
#      server is restarted, --resume is accepted at once and every document exists exactly once.
#   B: rank 0 is SIGKILLed under mpirun: once the job has ended, the run is lost at once and --resume finishes it.
#   C: pid reuse: the record names a live process of this host whose start time differs: lost; with the same start
#      time: alive, and --resume is refused.
#   D: a rank 0 on another host: --resume is refused saying how long until the run counts as lost; once its
#      heartbeat is 3 intervals old, the heartbeat rule takes it over as before.
# Nothing here sleeps for a heartbeat to expire: every wait is for a condition.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
STAGE_T=$T
. "$top_srcdir/tests/serve/lib.sh"
trap 'serve_cleanup; rm -rf "$STAGE_T"; [ -n "${SLEEPER:-}" ] && kill "$SLEEPER" 2>/dev/null' EXIT
REGISTRY="$top_builddir/nemesyst-registry"
[ -x "$REGISTRY" ] || fail "$REGISTRY not built"

# run_id FILE: the run id nemesyst logged ("info: run ID").
run_id() { sed -n 's/.* info: run \([^ ]*\)\( (resumed)\)\{0,1\}$/\1/p' "$1" | head -n 1; }
# list_runs WANT_RC STATUS: --list-runs on database rkb exits WANT_RC and shows run $lost_run with STATUS.
list_runs() {
    stage_run 0 rkb --list-runs
    [ "$RC" -eq "$1" ] || fail "--list-runs exited $RC, want $1"
    grep -Eq "^$lost_run +- +$2 " "$OUT" || fail "--list-runs does not show run $lost_run as $2"
}

# ---- A: the server is killed mid-stage ----
cat >"$T/two_halves.sh" <<EOS
#!/bin/sh
# 3000 documents (stored: past the bulk writer's 1000), a pause while the marker exists, then 3000 more
awk 'BEGIN { for (i = 0; i < 3000; i++) printf "{\"i\": %d}\n", i }'
if [ -e "$T/marker" ]; then echo half >"$T/half"; sleep 5; fi
awk 'BEGIN { for (i = 3000; i < 6000; i++) printf "{\"i\": %d}\n", i }'
EOS
chmod +x "$T/two_halves.sh"
own=(--db-engine ferretdb --db-path "$T/db" --db-log-path "$T/db/log" --db-ip 127.0.0.1 --db-port "$PORT"
     --db-name rk --db-user-name alice --db-password-file "$T/pw")
auth() { NEM_T_USER=alice NEM_T_PASSWORD="$(cat "$T/pw")" NEM_T_PORT=$PORT "$@"; }
"$NEMESYST" "${own[@]}" --db-init --db-start 2>"$T/err0" || { cat "$T/err0"; fail "init and start"; }
touch "$T/marker"
"$NEMESYST" "${own[@]}" --data-clean --data-cleaner "$T/two_halves.sh" --data-collection c >"$T/outA" 2>"$T/errA" &
job=$!
wait_for_file "$T/half" || { cat "$T/errA"; fail "the script never reached its pause"; }
auth check rk <<'PY' || fail "no document was stored"
import time
for _ in range(600):
    if count("c") >= 1000:
        break
    time.sleep(0.05)
ok(count("c") >= 1000, "documents stored before the kill: %d" % count("c"))
PY
kill -KILL "$(server_pid)"
RC=0; wait "$job" || RC=$?
sed 's/^/   stderr: /' "$T/errA" | tail -n 8
[ "$RC" -eq 3 ] || fail "exit status $RC after the server was killed, want 3"
RUN=$(run_id "$T/errA")
[ -n "$RUN" ] || fail "no run id in the log"
grep -q "once it works again, --resume $RUN finishes this run exactly once" "$T/errA" ||
    fail "no message saying how to finish the run"
rm -f "$T/marker"
"$NEMESYST" "${own[@]}" --db-start 2>"$T/err1" || { cat "$T/err1"; fail "restart after the kill"; }
auth check rk <<'PY'
eq(run["status"], "running", "the record of the cut-off run (the server was gone when it ended)")
ok(0 < count("c") < 6000, "part of the documents were stored before the kill: %d" % count("c"))
PY
# at once: no waiting for 3 heartbeat intervals (90 s)
"$NEMESYST" "${own[@]}" --data-clean --data-cleaner "$T/two_halves.sh" --data-collection c --resume "$RUN" \
    >"$T/outA2" 2>"$T/errA2"
RC=$?
sed 's/^/   stderr: /' "$T/errA2" | tail -n 8
[ "$RC" -eq 0 ] || fail "--resume right after the server kill exited $RC, want 0"
grep -q "that run was lost (its rank 0, pid [0-9]* on host .*, ended without closing the run" "$T/errA2" ||
    fail "resume did not say it takes over a lost run"
auth check rk <<'PY'
import os, socket
eq(run["status"], "succeeded", "status after resume")
eq(run["heartbeat_s"], 30, "the default heartbeat")
owner = run["rank0"]  # the resuming rank 0 now
eq(owner["host"], socket.gethostname(), "rank 0's host in the record")
eq(owner["boot_id"], open("/proc/sys/kernel/random/boot_id").read().strip(), "rank 0's boot id in the record")
eq(owner["pid_ns"], os.readlink("/proc/self/ns/pid"), "rank 0's pid namespace in the record")
ok(owner["pid"] > 0 and owner["start_ticks"] > 0, "rank 0's pid and start time in the record: %r" % owner)
eq(run.get("error"), None, "error after resume")
eq(count("c"), 6000, "documents: each exactly once")
eq(len(db.c.distinct("i")), 6000, "distinct documents")
PY
"$NEMESYST" "${own[@]}" --db-stop 2>/dev/null || fail "stop the test's server"

# ---- B: rank 0 is SIGKILLed ----
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
args=(--data-clean --data-cleaner "$FIX/clean.sh" "$T/slow.sh" --data-collection c --process-pool 2)
"$MPIRUN" --oversubscribe -n 2 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name rkb "${args[@]}" \
    >"$T/outB" 2>"$T/errB" &
job=$!
wait_for_file "$T/child.pid" || { cat "$T/errB"; fail "the slow script never started"; }
RUN=$(run_id "$T/errB")
[ -n "$RUN" ] || fail "no run id in the log"
# rank 0: the process of this job whose environment says rank 0 (this test's own job: its --db-name)
rank0=
for p in /proc/[0-9]*; do
    { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=0" || continue
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "--db-name rkb" && rank0=${p#/proc/}
done
[ -n "$rank0" ] || fail "cannot find rank 0"
kill -KILL "$rank0"
wait "$job"
echo "job ended with $? after rank 0 was killed"
child=$(cat "$T/child.pid")
for _ in $(seq 1 40); do alive "$child" || break; sleep 0.25; done
! alive "$child" || { kill -9 "$child"; fail "a script's child outlived the killed job"; }
check rkb <<'PY'
eq(run["status"], "running", "the record of the killed run (nothing could close it)")
eq(run["heartbeat_s"], 30, "the default heartbeat")
PY
lost_run=$RUN
list_runs 1 lost # at once
"$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name rkb runs --json >"$T/reg" 2>"$T/reg.err" ||
    { cat "$T/reg.err"; fail "nemesyst-registry runs"; }
"$PYTHON3" - "$T/reg" "$lost_run" <<'PY' || fail "nemesyst-registry runs does not call the killed run lost"
import json, sys
row = {r["id"]: r for r in json.load(open(sys.argv[1]))["runs"]}[sys.argv[2]]
assert row["status"] == "lost" and row["recorded_status"] == "running", row
print("ok: nemesyst-registry runs calls it lost at once")
PY
rm -f "$T/marker"
stage_run 2 rkb "${args[@]}" --resume "$lost_run"
expect_rc 0
[ "$RUN" = "$lost_run" ] || fail "resume reported run '$RUN'"
grep -q "that run was lost" "$ERR" || fail "resume did not say it takes over a lost run"
check rkb "$rank0" <<'PY'
eq(run["status"], "succeeded", "status after resuming the killed run")
eq(count("c", of_run()), 9, "documents: 7 + 2, each once")
eq(count("c", {"n": 1}), 1, "copies of the slow script's first document")
ok(run["rank0"]["pid"] != int(argv[0]), "the record now names the resuming rank 0")
ok(run["rank0"].get("launcher_pid", 0) > 0, "and, under mpirun with 2 ranks, its launcher: %r" % run["rank0"])
PY

# ---- C: pid reuse ----
sleep 300 &
SLEEPER=$!
# forge: the record of B says running, and its rank 0 is the sleeper, with another start time, then its own
forge_pid() {
    RUN=$lost_run check rkb "$SLEEPER" "$1" <<'PY'
import datetime
pid, same = int(argv[0]), argv[1] == "same"
stat = open("/proc/%d/stat" % pid).read()
ticks = int(stat[stat.rindex(")") + 2:].split()[19])
db.nemesyst_runs.update_one({"_id": RUN}, {
    "$set": {"status": "running", "heartbeat": datetime.datetime.now(datetime.timezone.utc),
             "rank0.pid": pid, "rank0.start_ticks": ticks if same else ticks + 12345},
    "$unset": {"rank0.launcher_pid": "", "rank0.launcher_start_ticks": ""}})
print("forged: rank 0 is pid %d, start time %s" % (pid, "its own" if same else "another"))
PY
}
forge_pid same
list_runs 0 running # its rank 0 lives
stage_run 2 rkb "${args[@]}" --resume "$lost_run"
expect_rc 2
grep -q "that run is still running (its rank 0 is pid $SLEEPER on this host" "$ERR" ||
    fail "resuming a run whose rank 0 lives was not refused clearly"
forge_pid other
alive "$SLEEPER" || fail "the sleeper died"
list_runs 1 lost # the pid was reused
stage_run 2 rkb "${args[@]}" --resume "$lost_run"
expect_rc 0
grep -q "that run was lost (its rank 0, pid $SLEEPER on host" "$ERR" || fail "resume after pid reuse"
kill "$SLEEPER"
SLEEPER=

# ---- D: rank 0 on another host ----
forge_host() {
    RUN=$lost_run check rkb "$1" <<'PY'
import datetime
age = int(argv[0])
db.nemesyst_runs.update_one({"_id": RUN}, {"$set": {
    "status": "running", "rank0.host": "another-host.invalid",
    "heartbeat": datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=age)}})
print("forged: rank 0 on another host, heartbeat %d s ago" % age)
PY
}
forge_host 12
stage_run 2 rkb "${args[@]}" --resume "$lost_run"
expect_rc 2
msg="run $lost_run may still be running on host another-host\.invalid \(heartbeat [0-9]+ s ago\); it counts as lost"
grep -Eq "$msg after [0-9]+ more seconds, or at once when resumed on another-host\.invalid" "$ERR" ||
    fail "the refusal does not say how long to wait"
left=$(sed -n 's/.*it counts as lost after \([0-9]*\) more seconds.*/\1/p' "$ERR" | head -n 1)
[ "$left" -le 78 ] && [ "$left" -ge 30 ] || fail "it counts as lost after $left s, want 78 or a little less"
list_runs 0 running # on another host, with a live heartbeat
forge_host 100 # 3 intervals of 30 s have passed: the heartbeat rule
stage_run 2 rkb "${args[@]}" --resume "$lost_run"
expect_rc 0
grep -q "that run was lost (recorded as running, last heartbeat" "$ERR" || fail "the heartbeat rule was not kept"
RUN=$lost_run check rkb <<'PY'
eq(run["status"], "succeeded", "status after the last resume")
eq(count("c", of_run()), 9, "documents: each once")
PY
