#!/bin/bash
# Checkpoints of learner groups (--dl-data-parallel 2): a linear model trained by full-batch gradient descent over
# 100 steps with a checkpoint every 25, through nemesyst_allreduce (a C plugin: linear_plugin.c's linear_ckpt) and
# through torch.distributed's gloo (ckpt_torch.py, SGD with momentum):
#   - uninterrupted, a group of 2 on 2 worker ranks: the reference weights and metric history;
#   - member 1 fails at step 60 in the first attempt: the group fails (exit 4), member 0's checkpoints of steps 25
#     and 50 are the only ones stored, the metrics up to step 50 are kept; --resume (the group now on one rank's 2
#     slots, --process-pool 2) goes on from step 50 on both members, which check over the group and log that they
#     loaded the same step and weights; the weights are bit-identical to the reference's, every step's metric
#     appears once with the reference's value, the record has two attempts, the checkpoints are gone;
#   - SIGTERM through nemesyst-mpirun while the group trains: the members agree on the step, member 0 stores the
#     checkpoint there, the run is interrupted (143), and --resume gives the reference weights again;
#   - SIGTERM to a learner that does not checkpoint when asked (--checkpoint-grace 1; the C plugin alone, PyTorch as
#     a group of 2): it is stopped, the metrics up to its newest periodic checkpoint are kept and those after it
#     rolled back, and --resume gives the reference weights.
. tests/stage/lib.sh 2>/dev/null || . "$(dirname "$0")/../stage/lib.sh"
LIN="$top_builddir/tests/groups/.libs/linear_plugin.so"
TORCH="$top_srcdir/tests/groups/ckpt_torch.py"
WRAP="$top_srcdir/src/app/nemesyst-mpirun"
[ -f "$LIN" ] || fail "$LIN not built (make check builds it)"
DB=groups_ckpt_$$
PIPE='[{"$match": {"use": true}}, {"$project": {"x": 1, "y": 1}}]'
export NEM_T_EVERY=25

# 1000 documents, 900 of them used: y = 2 x0 - x1 + 0.5 x2 + 1 + noise (as groups.sh)
check "$DB" <<'PY'
import random
rnd = random.Random(7)
rows = []
for i in range(1000):
    x = [rnd.uniform(-1, 1) for _ in range(3)]
    rows.append({"x": x, "y": 2 * x[0] - x[1] + 0.5 * x[2] + 1 + rnd.gauss(0, 0.01), "use": i % 10 != 0})
db.points.insert_many(rows)
PY

# learn NP [ARGS...]: the learner ($LEARNER, entry $ENTRY) as a group of 2 into bucket $BUCKET, on NP ranks
learn() {
    local np=$1
    shift
    stage_run "$np" "$DB" --dl-learn --dl-learner "$LEARNER" --dl-learner-entry-point "$ENTRY" \
        --dl-data-collection points --dl-data-pipeline "$PIPE" --dl-epochs 100 --dl-data-parallel "${GK:-2}" \
        --dl-output-model-collection "$BUCKET" "$@"
}

# same_as_ref RUN KIND: RUN's model and metrics against the reference run's ($REF)
same_as_ref() {
    RUN=$1 check "$DB" "$REF" "$BUCKET" "$2" "${GK:-2}" <<'PY'
import gridfs, struct
ref_id, bucket, kind, k = argv
def model_of(run_id):
    ms = models(bucket, {"metadata._nemesyst.run": run_id})
    eq(len(ms), 1, "%s: one model in run %s (member 0's)" % (kind, run_id))
    data = gridfs.GridFS(db, collection=bucket).get(ms[0]["_id"]).read()
    return struct.unpack("<%dd" % (len(data) // 8), data), ms[0]["metadata"]
got, meta = model_of(RUN)
want, _ = model_of(ref_id)
err = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(got, want))
print("%s group exactness: resumed %r" % (kind, list(got)))
print("%s group exactness: reference %r" % (kind, list(want)))
print("%s group exactness: largest relative error %.3g (%s)" % (kind, err,
      "bit-identical" if got == want else "not bit-identical"))
eq(len(got), 4, kind + ": 4 weights")
ok(got == want, kind + ": weights bit-identical to the uninterrupted group's")
ok(abs(got[0] - 2) < 0.05, kind + ": weights near the truth: %r" % (got,))
mine = [(m["step"], m["value"]) for m in db["nemesyst_metrics"].find({"run": RUN, "script": "learn-0"}).sort("step", 1)]
theirs = [(m["step"], m["value"]) for m in db["nemesyst_metrics"].find({"run": ref_id, "script": "learn-0"}).sort("step", 1)]
eq([s for s, _ in theirs], list(range(1, 101)), kind + ": the reference's metrics, steps 1..100")
eq([s for s, _ in mine], list(range(1, 101)), kind + ": every step's metric once after the resume")
eq(mine, theirs, kind + ": every step's metric the uninterrupted group's")
eq(len(run["attempts"]), 2, kind + ": two attempts")
e = script("learn-0")
eq(e["status"], "succeeded", kind + ": the learner's status")
if k != "1":
    eq(e["group"]["size"], 2, kind + ": a group of 2")
    eq(e["group"]["count"], 900, kind + ": the group's total")
eq(db["nemesyst_checkpoints.files"].count_documents({"metadata.run": RUN}), 0,
   kind + ": the run's checkpoints removed once the model is stored")
PY
}

# loaded_same ERRFILE STEP: both members logged going on from STEP with the same weights
loaded_same() {
    local a b
    a=$(sed -n "s/.*member 0 goes on from step $2 (weights \([0-9a-f]*\)).*/\1/p" "$1" | head -n 1)
    b=$(sed -n "s/.*member 1 goes on from step $2 (weights \([0-9a-f]*\)).*/\1/p" "$1" | head -n 1)
    [ "${GK:-2}" -ne 1 ] || b=$a # alone: member 0 only
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "$KIND: members 0 and 1 did not both go on from step $2 with the same weights ('$a', '$b')"
    echo "ok: $KIND: both members went on from step $2, weights $a"
}

run_kind() {
    echo "== $KIND: the uninterrupted group of 2"
    learn 3
    expect_rc 0
    REF=$RUN
    grep -q "member 1 goes on from step 0 " "$ERR" || fail "$KIND: member 1 did not start from step 0"

    echo "== $KIND: member 1 fails at step 60; --resume goes on from step 50 on both members"
    NEM_T_DIE_AT=60 NEM_T_DIE_MEMBER=1 learn 3
    [ "$RC" -eq 4 ] || fail "$KIND: a member stopped at step 60: want exit 4, got $RC"
    STOPPED=$RUN
    # (with gloo, member 0 may fail on the closed connection before member 1's own end is seen, and the record then
    # names member 0's failure: member 1's own message is in the log)
    grep -q "member 1 stopped at step 60 (test)" "$ERR" || fail "$KIND: member 1 did not stop at step 60"
    check "$DB" "$KIND" <<'PY'
kind = argv[0]
e = script("learn-0")
eq(e["status"], "failed", kind + ": the group failed")
eq(sorted(m["status"] for m in e["group"]["members"]), ["failed", "failed"], kind + ": both members failed")
rank0 = [m["rank"] for m in e["group"]["members"] if m["member"] == 0][0]
files = list(db["nemesyst_checkpoints.files"].find({"metadata.run": RUN}))
eq(sorted((f["metadata"]["script"], f["metadata"]["step"]) for f in files), [("learn-0", 25), ("learn-0", 50)],
   kind + ": the 2 newest checkpoints, stored once each")
eq({f["metadata"]["rank"] for f in files}, {rank0}, kind + ": stored by member 0's rank")
got = sorted(m["step"] for m in db["nemesyst_metrics"].find({"run": RUN, "script": "learn-0"}))
eq(got, list(range(1, 51)), kind + ": metrics up to the newest checkpoint kept, the rest rolled back")
PY
    learn 0 --resume "$STOPPED" --process-pool 2
    expect_rc 0
    loaded_same "$ERR" 50
    same_as_ref "$STOPPED" "$KIND"
    RUN=$STOPPED check "$DB" "$BUCKET" <<'PY'
eq([a["status"] for a in run["attempts"]], ["failed", "succeeded"], "a failed attempt, then a successful one")
eq(models(argv[0], {"metadata._nemesyst.run": RUN})[0]["metadata"]["started_at"], 50, "went on from step 50")
PY
}

# sigterm [ARGS...]: SIGTERM through nemesyst-mpirun (ARGS added to its command line) once the group has stored a
# checkpoint, then --resume
sigterm() {
    echo "== $KIND: SIGTERM through nemesyst-mpirun while the group trains; --resume"
    NEM_T_SLEEP_MS=40 "$PYTHON3" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
        "$WRAP" -n 3 --oversubscribe "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$DB" \
        --dl-learn --dl-learner "$LEARNER" --dl-learner-entry-point "$ENTRY" --dl-data-collection points \
        --dl-data-pipeline "$PIPE" --dl-epochs 100 --dl-data-parallel "${GK:-2}" --dl-output-model-collection "$BUCKET" "$@" \
        >"$T/term.out" 2>"$T/term.err" &
    local w=$! n=0
    # wait until the group has stored its first checkpoint (step 25) in this run, then stop the job
    for _ in $(seq 1 600); do
        n=$(NEM_T_DB=$DB "$PYTHON3" -c '
import os, pymongo
db = pymongo.MongoClient("127.0.0.1", int(os.environ["NEM_TEST_PORT"]))[os.environ["NEM_T_DB"]]
runs = [r["_id"] for r in db["nemesyst_runs"].find({"status": "running"})]
print(db["nemesyst_checkpoints.files"].count_documents({"metadata.run": {"$in": runs}}))' 2>/dev/null)
        [ "${n:-0}" -ge 1 ] && break
        sleep 0.05
    done
    [ "${n:-0}" -ge 1 ] || { cat "$T/term.err"; fail "$KIND: the group never stored its first checkpoint"; }
    kill -TERM "$w"
    RC=0; wait "$w" || RC=$?
    sed 's/^/   stderr: /' "$T/term.err" | tail -n 20
    [ "$RC" -eq 143 ] || fail "$KIND: SIGTERM: want exit 143, got $RC"
    TERMED=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$T/term.out" | tail -n 1)
    [ -n "$TERMED" ] || fail "$KIND: no run id in the summary"
    grep -q "asked to checkpoint and end" "$T/term.err" || fail "$KIND: the members were not asked to checkpoint"
    RUN=$TERMED check "$DB" "$KIND" <<'PY'
import os
kind = argv[0]
eq(run["status"], "interrupted", kind + ": the run is interrupted")
files = list(db["nemesyst_checkpoints.files"].find({"metadata.run": RUN}))
steps = sorted(f["metadata"]["step"] for f in files)
ok(steps and int(os.environ["NEM_T_EVERY"]) <= steps[-1] < 100, kind + ": checkpoints at steps %s" % steps)
got = sorted(m["step"] for m in db["nemesyst_metrics"].find({"run": RUN, "script": "learn-0"}))
eq(got, list(range(1, steps[-1] + 1)), kind + ": metrics up to the newest checkpoint kept, the rest rolled back")
eq({f["metadata"]["script"] for f in files}, {"learn-0"}, kind + ": under the group's one key")
print("%s: SIGTERM: newest checkpoint at step %d" % (kind, steps[-1]))
open(os.environ["T"] + "/term.step", "w").write(str(steps[-1]))
PY
    learn 3 --resume "$TERMED"
    expect_rc 0
    loaded_same "$ERR" "$(cat "$T/term.step")"
    same_as_ref "$TERMED" "$KIND"
    RUN=$TERMED check "$DB" <<'PY'
eq([a["status"] for a in run["attempts"]], ["interrupted", "succeeded"], "an interrupted attempt, then a successful one")
PY
}
export T

KIND="C plugin" LEARNER=$LIN ENTRY=linear_ckpt BUCKET=lin_ckpt
run_kind
sigterm
C_REF=$REF
KIND="C plugin, not checkpointing when asked" NEM_T_IGNORE_STOP=1 NEM_T_EVERY=10 sigterm --checkpoint-grace 1
# alone, a learner that does not checkpoint when asked: stopped once its grace (1 s) is over; the metrics of the
# steps its newest periodic checkpoint (every 10 steps) covers were sent before it was stored, those after it are
# rolled back, and --resume gives the weights of the uninterrupted learner alone
echo "== C plugin alone: the uninterrupted learner"
GK=1 learn 3
expect_rc 0
REF=$RUN
KIND="C plugin alone, not checkpointing when asked" GK=1 NEM_T_IGNORE_STOP=1 NEM_T_EVERY=10 sigterm --checkpoint-grace 1

if ! "$PYTHON3" -c 'import torch.distributed' 2>/dev/null; then
    echo "SKIP: $PYTHON3 cannot import torch (python3-torch): the PyTorch half"
    exit 77
fi
KIND="PyTorch" LEARNER=$TORCH ENTRY=main BUCKET=lin_ckpt_torch
run_kind
sigterm
# a group that does not checkpoint when asked: stopped once its grace (1 s) is over; the resume goes on from its
# newest periodic checkpoint (every 10 steps), the metrics logged after it rolled back
KIND="PyTorch, not checkpointing when asked" NEM_T_IGNORE_STOP=1 NEM_T_EVERY=10 sigterm --checkpoint-grace 1
check "$DB" "$C_REF" "$REF" <<'PY'
a = models("lin_ckpt", {"metadata._nemesyst.run": argv[0]})[0]["metadata"]["w"]
print("the C plugin's and PyTorch's uninterrupted groups: %r %r" % (a, models("lin_ckpt_torch", {"metadata._nemesyst.run": argv[1]})[0]["metadata"]["w"]))
PY
check "$DB" <<'PY'
eq(count("nemesyst_runs", {"status": "running"}), 0, "no run left running")
PY
echo "PASS: learner groups' checkpoints"
