#!/bin/bash
# Checkpoints, exactness with PyTorch: a learner in 2.0.6's form (fixtures/checkpoint/torch_learner.py: an MLP with
# dropout, Adam, a step schedule, shuffled minibatches, CPU, fixed seeds, deterministic algorithms) that saves its
# model, optimizer, schedule, RNG states and epoch order with db.save_checkpoint every 25 of its 120 steps:
#   - uninterrupted: the reference state dict and loss history;
#   - stopped at step 60 in its first attempt (exit 4), then --resume: it loads the step-50 checkpoint and its
#     final state dict equals the reference's to 1e-6 relative (both read back from GridFS with torch.load), every
#     step's loss appears once with the reference's value, the record has two attempts;
#   - stopped by SIGTERM through nemesyst-mpirun while it trains: it checkpoints where it is when asked, and the
#     resumed run again gives the reference state dict.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
if ! "$PYTHON3" -c 'import torch' 2>/dev/null; then
    echo "SKIP: $PYTHON3 cannot import torch (python3-torch)"
    exit 77
fi
TL="$FIX/checkpoint/torch_learner.py"
export NEM_T_EPOCHS=8 NEM_T_EVERY=25

# 300 documents: y = a smooth function of x (8 numbers) plus noise, in the databases of every scenario
for d in ckt_ref ckt_stop ckt_term; do
    check "$d" <<'PY'
import math, random
rnd = random.Random(5)
rows = []
for i in range(300):
    x = [rnd.uniform(-1, 1) for _ in range(8)]
    rows.append({"_id": i, "x": x, "y": math.sin(2 * x[0]) + x[1] * x[2] - 0.5 * x[3] + rnd.gauss(0, 0.05)})
db.pts.insert_many(rows)
PY
done
learn() {
    local db=$1
    shift
    stage_run 0 "$db" --dl-learn --dl-learner "$TL" --dl-data-collection pts --dl-output-model-collection models "$@"
}

# compare DB: the run's model against the reference's, state dict and loss history
compare() {
    check "$1" ckt_ref <<'PY'
import io, gridfs, torch
ref = db.client[argv[0]]
def model_of(d):
    fs = d["models.files"].find({"metadata.model": "torch_checkpoint"})
    fs = list(fs)
    eq(len(fs), 1, "one model in " + d.name)
    return torch.load(io.BytesIO(gridfs.GridFS(d, collection="models").get(fs[0]["_id"]).read())), fs[0]["metadata"]
got, meta = model_of(db)
want, _ = model_of(ref)
eq(sorted(got), sorted(want), "the same parameters")
err, same = 0.0, True
for k in want:
    a, b = got[k].double(), want[k].double()
    eq(tuple(a.shape), tuple(b.shape), k + ": shape")
    same = same and torch.equal(got[k], want[k])
    err = max(err, float(((a - b).abs() / b.abs().clamp_min(1e-12)).max()))
print("torch exactness: largest relative error %.3g over %d tensors (%s)"
      % (err, len(want), "bit-identical" if same else "not bit-identical"))
ok(err <= 1e-6, "weights equal the uninterrupted run's to 1e-6 relative (%.3g)" % err)
ok(0 < meta["started_at"] < 120, "went on from a checkpoint, at step %s" % meta["started_at"])
mine = [(m["step"], m["value"]) for m in db["nemesyst_metrics"].find({"run": run["_id"], "script": "learn-0"}).sort("step", 1)]
theirs = [(m["step"], m["value"]) for m in ref["nemesyst_metrics"].find({"script": "learn-0"}).sort("step", 1)]
eq([s for s, _ in mine], list(range(1, 121)), "every step's loss once")
lerr = max(abs(a[1] - b[1]) / max(abs(b[1]), 1e-12) for a, b in zip(mine, theirs))
first = next(((a, b) for a, b in zip(mine, theirs) if a != b), None)
ok(lerr <= 1e-6, "every step's loss is the uninterrupted run's (%.3g; the first that differs, got and want: %r)"
   % (lerr, first))
eq(run["attempts"][-1]["status"], "succeeded", "the last attempt succeeded")
eq(len(run["attempts"]), 2, "two attempts")
eq(db["nemesyst_checkpoints.files"].count_documents({"metadata.run": run["_id"]}), 0,
   "checkpoints removed once the model is stored")
PY
}

learn ckt_ref
expect_rc 0
check ckt_ref <<'PY'
eq(len(models("models")), 1, "the reference model")
eq(models("models")[0]["metadata"]["started_at"], 0, "the reference ran from step 0")
eq(count("nemesyst_metrics", {"run": RUN}), 120, "120 losses")
PY

echo "== stopped at step 60, resumed from its step-50 checkpoint"
NEM_T_DIE_AT=60 learn ckt_stop
[ "$RC" -eq 4 ] || fail "a learner stopped at step 60: want exit 4, got $RC"
STOPPED=$RUN
check ckt_stop <<'PY'
files = list(db["nemesyst_checkpoints.files"].find({"metadata.run": run["_id"]}))
eq(sorted(f["metadata"]["step"] for f in files), [25, 50], "the 2 newest checkpoints kept")
eq({f["metadata"]["metadata"]["kind"] for f in files}, {"torch"}, "their metadata")
got = sorted(m["step"] for m in db["nemesyst_metrics"].find({"run": run["_id"], "script": "learn-0"}))
eq(got, list(range(1, 51)), "losses up to the newest checkpoint kept, the rest rolled back")
eq(len(models("models")), 0, "no model of the failed learner")
PY
learn ckt_stop --resume "$STOPPED"
expect_rc 0
grep -q "torch_learner: goes on from step 50" "$ERR" || fail "the learner did not go on from step 50"
RUN=$STOPPED compare ckt_stop
check ckt_stop <<'PY'
eq(models("models")[0]["metadata"]["started_at"], 50, "went on from step 50")
eq([a["status"] for a in run["attempts"]], ["failed", "succeeded"], "a failed attempt, then a successful one")
PY

echo "== stopped by SIGTERM through nemesyst-mpirun, resumed from where it was asked to checkpoint"
WRAP="$top_srcdir/src/app/nemesyst-mpirun"
NEM_T_SLEEP_MS=30 "$PYTHON3" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$WRAP" -n 2 --oversubscribe "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name ckt_term \
    --dl-learn --dl-learner "$TL" --dl-data-collection pts --dl-output-model-collection models \
    >"$T/term.out" 2>"$T/term.err" &
w=$!
# wait until the learner has stored its first checkpoint (step 25), then stop the job
for _ in $(seq 1 600); do
    n=$("$PYTHON3" -c 'import os, pymongo; print(pymongo.MongoClient("127.0.0.1", int(os.environ["NEM_TEST_PORT"]))["ckt_term"]["nemesyst_checkpoints.files"].count_documents({}))' 2>/dev/null)
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.05
done
[ "${n:-0}" -ge 1 ] || { cat "$T/term.err"; fail "the learner never stored its first checkpoint"; }
kill -TERM "$w"
RC=0; wait "$w" || RC=$?
sed 's/^/   stderr: /' "$T/term.err" | tail -n 20
[ "$RC" -eq 143 ] || fail "SIGTERM: want exit 143, got $RC"
TERMED=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$T/term.out" | tail -n 1)
grep -q "asked to checkpoint and end" "$T/term.err" || fail "the learner was not asked to checkpoint"
RUN=$TERMED check ckt_term <<'PY'
eq(run["status"], "interrupted", "the run is interrupted")
steps = sorted(f["metadata"]["step"] for f in db["nemesyst_checkpoints.files"].find({"metadata.run": run["_id"]}))
ok(steps and 25 <= steps[-1] < 120, "checkpointed when asked, at step %s" % steps)
print("SIGTERM: newest checkpoint at step %d" % steps[-1])
PY
learn ckt_term --resume "$TERMED"
expect_rc 0
RUN=$TERMED compare ckt_term
RUN=$TERMED check ckt_term <<'PY'
eq([a["status"] for a in run["attempts"]], ["interrupted", "succeeded"], "an interrupted attempt, then a successful one")
PY
echo "stage-checkpoint-torch: ok"
