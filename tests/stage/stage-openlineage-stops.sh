#!/bin/bash
# --openlineage's events when a run with learners is stopped (SIGTERM through nemesyst-mpirun; events to a file:
# target, checked against the official schema by tests/stage/olcheck.py):
# 1. A learner group (--dl-data-parallel 2, a member on each of 2 worker ranks) that trains long, stopped at once
#    (--checkpoint-grace 0), and asked to checkpoint and end: the group's learner ends with exactly one ABORT (the
#    spec's "stopped abnormally"; not FAIL, whichever member's end rank 0 sees first, and not one event a member),
#    the run with ABORT; the run record's sent and dropped match the events in the file.
# 2. Checkpoints (--checkpoint-grace 2): learn[0], a C plugin, checkpoints when asked and ends within the grace;
#    learn[1], an executable, ignores the request and is stopped once the grace is over; learn[2], an executable,
#    checkpoints and exits 0 without a model. None completed its training, so each ends ABORT (not FAIL: the run
#    was interrupted, nothing went wrong in them; not COMPLETE: no model), with no errorMessage, and its record is
#    not done. --resume then gives each a START and a COMPLETE with the same runId, and the resumed plugin's input
#    facets carry the whole training's read (count, sha256, inputStatistics), as an uninterrupted run's (its
#    weights the same too).
# 3. A stop that reaches the scripts too (Slurm's scancel or a job's time limit signals every process of the job
#    step): SIGTERM to a cleaner and to nemesyst at once, the cleaner dying of it: the run was interrupted, not the
#    script at fault: ABORT, not FAIL.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
OLCHECK_DIR="$top_srcdir/tests/stage"
WRAP="$top_srcdir/src/app/nemesyst-mpirun"
LIN="$top_builddir/tests/groups/.libs/linear_plugin.so"
[ -f "$LIN" ] || fail "$LIN not built (make check builds it)"
SPEC=$("$top_srcdir/build-aux/openlineage-spec.sh" 2>"$T/spec.err")
if [ -z "$SPEC" ]; then
    cat "$T/spec.err"
    SPEC=none
fi
olcheck() { PYTHONPATH="$OLCHECK_DIR${PYTHONPATH:+:$PYTHONPATH}" check "$@"; }
PIPE='[{"$match": {"use": true}}, {"$project": {"x": 1, "y": 1}}]'
export NEM_TEST_PORT

# 120 points, 96 of them used (as stage-openlineage-more.sh's group)
for db in olstop_group0 olstop_group10 olstop_ckpt; do
    check $db <<'PY'
import random
rnd = random.Random(3)
db.points.insert_many([{"x": [rnd.uniform(-1, 1) for _ in range(3)], "y": rnd.uniform(-1, 1), "use": i % 5 != 0}
                       for i in range(120)])
PY
done

# wait_for WHAT PY [LOG]: until the Python expression PY (with db, the database $DB, T, and log, LOG's text) is
# true, at most 60 s; one Python process polls
wait_for() {
    DB=$DB "$PYTHON3" - "$2" "${3:-/dev/null}" <<'PY' && return 0
import os, sys, time, pymongo
db = pymongo.MongoClient("127.0.0.1", int(os.environ["NEM_TEST_PORT"]))[os.environ["DB"]]
T = os.environ["T"]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    log = open(sys.argv[2], errors="replace").read()
    if eval(sys.argv[1]):
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
PY
    [ -z "${3:-}" ] || sed 's/^/   stderr: /' "$3"
    fail "$1: not seen within 60 s"
}
export T
PIDS=()
# a job the test left running (it failed): stopped as a user would, through nemesyst-mpirun
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; rm -rf "$T"' EXIT

# stopped NAME ARGS...: nemesyst under nemesyst-mpirun on 3 ranks in the background (PID in W), output in
# $T/NAME.out and $T/NAME.err
stopped() {
    local name=$1
    shift
    "$PYTHON3" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
        "$WRAP" -n 3 --oversubscribe "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$DB" "$@" \
        >"$T/$name.out" 2>"$T/$name.err" &
    W=$!
    PIDS+=($W)
}
# sigterm NAME: SIGTERM to $W, which must end with 143; RUN its run id
sigterm() {
    kill -TERM "$W"
    RC=0
    wait "$W" || RC=$?
    PIDS=()
    cat "$T/$1.out"
    sed 's/^/   stderr: /' "$T/$1.err" | tail -n 30
    [ "$RC" -eq 143 ] || fail "$1: exit status $RC after SIGTERM, want 143"
    RUN=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$T/$1.out" | tail -n 1)
    [ -n "$RUN" ] || fail "$1: no run id in the summary"
}

# 1. The group while it trains (linear_ckpt: 100000 steps of 20 ms, no periodic checkpoint), stopped at once
# (--checkpoint-grace 0), then asked to checkpoint and end (--checkpoint-grace 10: the members agree on a step, member
# 0 stores the checkpoint there, and both end).
for grace in 0 10; do
    DB=olstop_group$grace
    NEM_T_SLEEP_MS=20 NEM_T_EVERY=0 stopped group$grace --dl-learn --dl-learner "$LIN" \
        --dl-learner-entry-point linear_ckpt --dl-data-collection points --dl-data-pipeline "$PIPE" --dl-epochs 100000 \
        --dl-data-parallel 2 --dl-output-model-collection lin --checkpoint-grace $grace \
        --openlineage "file:$T/group$grace.jsonl"
    # both members in their training loop
    wait_for "both members training" '"member 0 goes on from step 0" in log and "member 1 goes on from step 0" in log' \
        "$T/group$grace.err"
    sigterm group$grace
    olcheck $DB "$T/group$grace.jsonl" "$SPEC" $grace <<'PY'
import olcheck
events = olcheck.load(argv[0])
olcheck.validate(events, argv[1])
eq(run["status"], "interrupted", "run status")
seq = olcheck.sequences(events, run)
eq(seq, {"run": ["START", "ABORT"], "learn-0": ["START", "ABORT"]},
   "one START and one ABORT for the run and for the group's learner")
end = olcheck.ends(events, run)["learn-0"]
ok("errorMessage" not in end["run"]["facets"], "no error message on the group's ABORT")
e = script("learn-0")
eq(e["status"], "failed", "the group's record")
eq(e["group"]["size"], 2, "a group of 2")
eq(len({m["rank"] for m in e["group"]["members"]}), 2, "its members on 2 ranks")
if argv[2] != "0":
    ok("asked to stop, checkpoint at step" in e["error"], "the group checkpointed and ended: " + e["error"])
    eq(db["nemesyst_checkpoints.files"].count_documents({"metadata.run": RUN}), 1, "the group's checkpoint")
eq(run["openlineage"]["sent"], len(events), "events sent")
eq(run["openlineage"]["dropped"], 0, "events dropped")
eq(run["attempts"][0]["openlineage"], {"sent": len(events), "dropped": 0}, "the attempt's counts")
PY
done

# 2. Checkpoints. The reference: the plugin's training uninterrupted (200 steps), alone.
DB=olstop_ckpt
learners=(--dl-learn --dl-data-collection points --dl-data-pipeline "$PIPE" --dl-epochs 200
    --dl-output-model-collection lin)
NEM_T_EVERY=10 stage_run 0 $DB "${learners[@]}" --dl-learner "$LIN" --dl-learner-entry-point linear_ckpt \
    --openlineage "file:$T/ref.jsonl"
expect_rc 0
REF=$RUN
# learn[1]: an executable that never looks at its stop file; in a later attempt it ends at once with a model
cat >"$T/ignores_stop.sh" <<'EOS'
#!/bin/sh
if [ "$NEMESYST_ATTEMPT" = 1 ]; then
    echo '{"$nemesyst_metric": {"name": "alive", "step": 1, "value": 1}}'
    while :; do sleep 0.05; done
fi
printf 'm' >"$NEMESYST_WORKDIR/model"
echo "{\"\$nemesyst_model\": {\"path\": \"$NEMESYST_WORKDIR/model\", \"metadata\": {\"model\": \"ignores\"}}}"
EOS
chmod +x "$T/ignores_stop.sh"
# learn[2]: the checkpointing executable of stage-checkpoint.sh, but asked to stop it checkpoints and exits 0
sed 's/^        sys.exit(3)$/        sys.exit(0)/' "$FIX/checkpoint/ckpt_exec" >"$T/exits_0"
grep -q '^        sys.exit(0)$' "$T/exits_0" || fail "ckpt_exec no longer ends with sys.exit(3) when asked to stop"
chmod +x "$T/exits_0"
ckpt_learners=("${learners[@]}" --process-pool 2 --dl-learner "$LIN" "$T/ignores_stop.sh" "$T/exits_0"
    --dl-learner-entry-point linear_ckpt main main --openlineage "file:$T/ckpt.jsonl")
NEM_T_SLEEP_MS=40 NEM_T_EVERY=10 stopped ckpt "${ckpt_learners[@]}" --checkpoint-grace 2
# learn[0] and learn[2] have stored a checkpoint and learn[1] runs: stop the job
wait_for "learn[0] and learn[2]'s first checkpoints and learn[1] running" \
    '(all(db["nemesyst_checkpoints.files"].count_documents({"metadata.script": k}) for k in ("learn-0", "learn-2"))
      and "learn[1] " + T + "/ignores_stop.sh started (" in log)' \
    "$T/ckpt.err"
sigterm ckpt
STOPPED=$RUN
grep -q "learn\[0\]: a stop is coming: asked to checkpoint and end (up to 2 s)" "$T/ckpt.err" ||
    fail "learn[0] was not asked to checkpoint"
cp "$T/ckpt.jsonl" "$T/attempt1.jsonl"
olcheck $DB "$T/ckpt.jsonl" "$SPEC" <<'PY'
import olcheck
events = olcheck.load(argv[0])
olcheck.validate(events, argv[1])
eq(run["status"], "interrupted", "run status")
seq = olcheck.sequences(events, run)
eq(seq, {"run": ["START", "ABORT"], "learn-0": ["START", "ABORT"], "learn-1": ["START", "ABORT"],
         "learn-2": ["START", "ABORT"]}, "the run and each learner: START then ABORT")
by = olcheck.ends(events, run)
for k in ("learn-0", "learn-1", "learn-2"):
    ok("errorMessage" not in by[k]["run"]["facets"], k + ": no error message on its ABORT")
    eq(script(k)["status"], "failed", k + "'s record: not done (--resume reruns it)")
ok("asked to stop, checkpoint at step" in script("learn-0")["error"],
   "learn-0 checkpointed and ended: " + script("learn-0")["error"])
ok("interrupted by signal 15" in script("learn-1")["error"], "learn-1 was stopped: " + script("learn-1")["error"])
ok("asked to checkpoint and end, it ended without a model" in script("learn-2")["error"],
   "learn-2 ended well but without a model: stopped, not done: " + script("learn-2")["error"])
# learn-1 ignored the request: stopped once the grace (2 s) was over, learn-0 well within it
gap = (script("learn-1")["ended"] - script("learn-0")["ended"]).total_seconds()
ok(gap >= 1.5, "learn-0 ended within the grace, learn-1 once it was over: %.2f s later" % gap)
eq(len(list(db["nemesyst_checkpoints.files"].find({"metadata.run": RUN, "metadata.script": "learn-0"}))) >= 1, True,
   "learn-0's checkpoints kept")
eq(run["openlineage"], {"url": run["openlineage"]["url"], "run_uuid": run["openlineage"]["run_uuid"],
                        "sent": len(events), "dropped": 0}, "the run record's counts")
PY
NEM_T_EVERY=10 stage_run 0 $DB "${ckpt_learners[@]}" --process-pool 2 --resume "$STOPPED"
expect_rc 0
[ "$RUN" = "$STOPPED" ] || fail "resume reported run '$RUN', want '$STOPPED'"
grep -q "learn\[0\]: goes on from its checkpoint at step" "$ERR" || grep -q "member 0 goes on from step [1-9]" "$ERR" ||
    fail "learn[0] did not go on from its checkpoint"
grep -q "learn\[2\]: goes on from its checkpoint at step" "$ERR" || fail "learn[2] did not go on from its checkpoint"
olcheck $DB "$T/ckpt.jsonl" "$SPEC" "$T/attempt1.jsonl" "$T/ref.jsonl" "$REF" <<'PY'
import olcheck, uuid
events = olcheck.load(argv[0])
first = olcheck.load(argv[2])
olcheck.validate(events, argv[1])
eq(run["status"], "succeeded", "status after resume")
ok(events[:len(first)] == first, "attempt 1's %d events, then attempt 2's" % len(first))
seq = olcheck.sequences(events, run)
eq(seq, {"run": ["START", "ABORT", "START", "COMPLETE"], "learn-0": ["START", "ABORT", "START", "COMPLETE"],
         "learn-1": ["START", "ABORT", "START", "COMPLETE"], "learn-2": ["START", "ABORT", "START", "COMPLETE"]},
   "each: ABORT in attempt 1, COMPLETE in attempt 2")
att = olcheck.attempts(events, run)
eq(att["learn-0"], [1, 1, 2, 2], "learn-0's attempts")
ids = {}
for e in events:
    ids.setdefault(e["run"]["facets"]["nemesyst"].get("script", "run"), set()).add(e["run"]["runId"])
eq({k: len(v) for k, v in ids.items()}, {"run": 1, "learn-0": 1, "learn-1": 1, "learn-2": 1},
   "one runId each over both attempts")
eq(ids["learn-0"], {str(uuid.uuid5(olcheck.NS, RUN + "/learn-0"))}, "learn-0's runId")
# the resumed plugin's read against the uninterrupted run's
ref_run = db.nemesyst_runs.find_one({"_id": argv[4]})
ref = olcheck.ends(olcheck.load(argv[3]), ref_run)["learn-0"]
end = olcheck.ends(events, run)["learn-0"]
def read(e):
    return {d["name"]: d for d in e["inputs"]}["olstop_ckpt.points"]["inputFacets"]
got, want = read(end), read(ref)
eq(want["nemesyst_read"]["count"], 96, "the uninterrupted run's count")
eq(got["nemesyst_read"]["count"], want["nemesyst_read"]["count"], "the resumed learner's count: the whole training's")
eq(got["nemesyst_read"]["sha256"], want["nemesyst_read"]["sha256"], "and its digest")
eq(got["inputStatistics"]["rowCount"], 96, "inputStatistics")
eq(script("learn-0")["consumed"]["count"], 96, "the run record's consumed count")
outs = {o["name"]: o for o in end["outputs"]}
eq(outs["olstop_ckpt.lin"]["outputFacets"]["outputStatistics"]["rowCount"], 1, "learn-0's model")
mine = models("lin", {"metadata._nemesyst.run": RUN, "metadata._nemesyst.position": 0})
theirs = models("lin", {"metadata._nemesyst.run": argv[4]})
eq(mine[0]["metadata"]["w"], theirs[0]["metadata"]["w"], "the resumed weights are the uninterrupted run's")
ok(mine[0]["metadata"]["started_at"] > 0, "went on from step %d" % mine[0]["metadata"]["started_at"])
ok(models("lin", {"metadata._nemesyst.run": RUN, "metadata._nemesyst.position": 2})[0]["metadata"]["started_at"] > 0,
   "learn-2 went on from its checkpoint")
second = events[len(first):]
eq(run["openlineage"]["sent"], len(second), "the run record's counts are attempt 2's")
eq([a.get("openlineage") for a in run["attempts"]], [{"sent": len(first), "dropped": 0},
                                                     {"sent": len(second), "dropped": 0}], "each attempt's counts")
PY
# 3. SIGTERM to a cleaner (its process exits at once: the pipes close with it) and to nemesyst, as scancel does.
DB=olstop_scancel
cat >"$T/sleeper.sh" <<'EOS'
#!/bin/sh
echo '{"n": 1}'
exec sleep 60
EOS
chmod +x "$T/sleeper.sh"
"$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name $DB --data-clean --data-cleaner "$T/sleeper.sh" \
    --data-collection c --openlineage "file:$T/scancel.jsonl" >"$T/scancel.out" 2>"$T/scancel.err" &
W=$!
PIDS+=($W)
wait_for "the cleaner started" '"started (executable, pid " in log' "$T/scancel.err"
spid=$(sed -n 's/.*clean\[0\] .* started (executable, pid \([0-9]*\)).*/\1/p' "$T/scancel.err")
[ -n "$spid" ] || fail "no pid for the cleaner in the log"
kill -TERM "$spid" "$W"
RC=0
wait "$W" || RC=$?
PIDS=()
cat "$T/scancel.out"
sed 's/^/   stderr: /' "$T/scancel.err"
[ "$RC" -eq 143 ] || fail "scancel: exit status $RC after SIGTERM, want 143"
RUN=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$T/scancel.out" | tail -n 1)
olcheck $DB "$T/scancel.jsonl" "$SPEC" <<'PY'
import olcheck
events = olcheck.load(argv[0])
olcheck.validate(events, argv[1])
eq(run["status"], "interrupted", "run status")
eq(olcheck.sequences(events, run), {"run": ["START", "ABORT"], "clean-0": ["START", "ABORT"]},
   "the run and the cleaner killed with it: START then ABORT")
ok("errorMessage" not in olcheck.ends(events, run)["clean-0"]["run"]["facets"], "no error message on the ABORT")
eq(script("clean-0")["status"], "failed", "the cleaner's record: not done")
eq(run["openlineage"]["sent"], len(events), "events sent")
PY
[ "$SPEC" != none ] || { echo "SKIP: every check passed but the schema validation: the OpenLineage schema could not be fetched (no network; see above)"; exit 77; }
echo "ok"
