#!/bin/bash
# The Fashion-MNIST example's two learners checkpoint every epoch and a stopped run goes on from there, on a reduced
# set (FASHION_MNIST_LIMIT per split), against this test's FerretDB: the C MLP (examples/plugins/
# fashion_mnist_learner.c) and the PyTorch CNN (examples/learners/fashion_mnist_cnn.py) in one learn stage, then the
# Python predictor, which measures each model's test accuracy and stores it in the model's metadata.
#   - uninterrupted: the reference accuracies;
#   - the same run stopped after its first epoch: with FASHION_MNIST_HOLD_AFTER=1 each learner waits, in the run's
#     first attempt, after epoch 1's checkpoint until it is asked to stop; once both checkpoints are stored
#     (nemesyst_checkpoints.files), SIGTERM through nemesyst-mpirun: the learners end with "stopping: checkpoint
#     after epoch 1", the run is interrupted (143), no model is stored;
#   - --resume RUN: both learners go on from epoch 1 (the CNN reading from the database the data its skipped first
#     epoch would have kept) and each model's test accuracy is within 1 point of the uninterrupted run's, its
#     recorded consumed data as many documents as the uninterrupted model's, and `nemesyst-registry verify` says
#     unchanged (its count and sha256 are those of a whole read of the data now); each
#     learner's metrics appear once per epoch; the run record has two attempts (interrupted, succeeded).
# Skipped (77) without dataset-fashion-mnist, OpenBLAS (the C learner) or PyTorch and h5py for $PYTHON3.
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
[ -n "${NEM_TEST_PORT:-}" ] || fail "no test server (run through tests/fixtures/with-ferretdb.sh)"
data=/usr/share/datasets/fashion-mnist
[ -r "$data/train-images-idx3-ubyte.gz" ] || { echo "SKIP: $data missing (apt-get install dataset-fashion-mnist)"; exit 77; }
"$PYTHON3" -c 'import torch, h5py' 2>/dev/null ||
    { echo "SKIP: $PYTHON3 cannot import torch and h5py (apt-get install python3-torch python3-h5py)"; exit 77; }
plugins="$top_builddir/examples/plugins/.libs"
[ -f "$plugins/fashion_mnist_learner.so" ] || { echo "SKIP: no C learner (configure found no OpenBLAS)"; exit 77; }
cnn="$top_srcdir/examples/learners/fashion_mnist_cnn.py"
predictor="$top_srcdir/examples/predictors/fashion_mnist_predictor.py"
wrap="$top_srcdir/src/app/nemesyst-mpirun"
limit=${FASHION_MNIST_CHECKPOINT_LIMIT:-2000}
epochs_mlp=3 epochs_cnn=3
tmp=$(mktemp -d) || exit 99
job=
trap '[ -n "$job" ] && kill -TERM "$job" 2>/dev/null; rm -rf "$tmp"' EXIT
export FASHION_MNIST_THREADS=1 FASHION_MNIST_LIMIT=$limit
ref="fashion_ckpt_ref_$$" stop="fashion_ckpt_stop_$$"
ref_db=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$ref")
stop_db=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$stop")
# the same scripts and options each time
scripts=(--dl-learner "$plugins/fashion_mnist_learner.so" "$cnn" --dl-data-collection fashion_mnist
         --dl-data-pipeline '[{"$match": {"split": "train"}}]' --dl-batch-size 32 64
         --dl-epochs "$epochs_mlp" "$epochs_cnn" --dl-output-model-collection fashion_models
         --i-predictor "$predictor" --i-output-prediction-collection fashion_predictions)
clean=(--data-clean --data-cleaner "$plugins/fashion_mnist_cleaner.so" --data-collection fashion_mnist)

start=$SECONDS
timeout -k 5 600 "$MPIRUN" --oversubscribe -n 3 "$NEMESYST" "${ref_db[@]}" "${clean[@]}" --dl-learn \
    --i-predict "${scripts[@]}" >"$tmp/ref.out" 2>&1 || { cat "$tmp/ref.out" >&2; fail "the uninterrupted run failed"; }
echo "fashion-mnist-checkpoint: the uninterrupted run in $((SECONDS - start)) s"

# The same, stopped after the first epoch: SIGTERM through nemesyst-mpirun once both learners have checkpointed.
start=$SECONDS
FASHION_MNIST_HOLD_AFTER=1 MPIRUN="$MPIRUN" "$wrap" --oversubscribe -n 3 "$NEMESYST" "${stop_db[@]}" \
    "${clean[@]}" --dl-learn --i-predict "${scripts[@]}" >"$tmp/stop.out" 2>&1 &
job=$!
n=0
for _ in $(seq 1 1200); do
    kill -0 "$job" 2>/dev/null || break
    n=$("$PYTHON3" -c 'import sys, pymongo
db = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), serverSelectionTimeoutMS=5000)[sys.argv[2]]
print(len(db["nemesyst_checkpoints.files"].distinct("metadata.script", {"metadata.step": 1})))' \
        "$NEM_TEST_PORT" "$stop" 2>/dev/null)
    [ "${n:-0}" -ge 2 ] && break
    sleep 0.2
done
[ "${n:-0}" -ge 2 ] || { cat "$tmp/stop.out" >&2; fail "the learners never stored their first checkpoints"; }
kill -TERM "$job"
rc=0; wait "$job" || rc=$?
job=
[ "$rc" -eq 143 ] || { cat "$tmp/stop.out" >&2; fail "SIGTERM: want exit 143, got $rc"; }
run=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$tmp/stop.out" | tail -n 1)
[ -n "$run" ] || { cat "$tmp/stop.out" >&2; fail "no run id in the stopped run's summary"; }
for k in 0 1; do
    grep -q "error: learn script #$k .*: stopping: checkpoint after epoch 1$" "$tmp/stop.out" ||
        { cat "$tmp/stop.out" >&2; fail "learner $k did not stop after its epoch 1 checkpoint"; }
done
"$PYTHON3" - "$NEM_TEST_PORT" "$stop" "$run" <<'PY' || fail "the stopped run's checks failed"
import sys
import pymongo
db = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), serverSelectionTimeoutMS=10000)[sys.argv[2]]
run = db["nemesyst_runs"].find_one({"_id": sys.argv[3]}) or {}
assert run.get("status") == "interrupted", "the stopped run is %r" % run.get("status")
steps = {}
for f in db["nemesyst_checkpoints.files"].find({"metadata.run": sys.argv[3]}):
    steps.setdefault(f["metadata"]["script"], []).append(f["metadata"]["step"])
assert steps == {"learn-0": [1], "learn-1": [1]}, "checkpoints: %r" % steps
assert db["fashion_models.files"].count_documents({}) == 0, "a model of the stopped learners"
PY
echo "fashion-mnist-checkpoint: stopped after the first epoch in $((SECONDS - start)) s (run $run)"

# --resume: the learners go on from their checkpoints (FASHION_MNIST_HOLD_AFTER holds the first attempt only).
start=$SECONDS
FASHION_MNIST_HOLD_AFTER=1 timeout -k 5 600 "$MPIRUN" --oversubscribe -n 3 "$NEMESYST" "${stop_db[@]}" \
    --resume "$run" "${clean[@]}" --dl-learn --i-predict "${scripts[@]}" >"$tmp/resume.out" 2>&1 ||
    { cat "$tmp/resume.out" >&2; fail "the resumed run failed"; }
echo "fashion-mnist-checkpoint: resumed in $((SECONDS - start)) s"
grep -q "goes on from its checkpoint after epoch 1 of $epochs_mlp" "$tmp/resume.out" &&
    grep -q "goes on from its checkpoint after epoch 1 of $epochs_cnn" "$tmp/resume.out" &&
    [ "$(grep -c "goes on from its checkpoint after epoch 1 of" "$tmp/resume.out")" -eq 2 ] ||
    { cat "$tmp/resume.out" >&2; fail "the learners did not both go on from their epoch 1 checkpoints"; }

"$PYTHON3" - "$NEM_TEST_PORT" "$ref" "$stop" "$run" "$epochs_mlp" "$epochs_cnn" "$limit" <<'PY' ||
import sys
import pymongo
port, ref_name, stop_name, run_id = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
epochs = {"fashion_mnist_mlp": int(sys.argv[5]), "fashion_mnist_cnn": int(sys.argv[6])}
limit = int(sys.argv[7])
client = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=10000)
ref, db = client[ref_name], client[stop_name]
errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


def models(d):
    """{architecture: (test accuracy, metadata, script)} of the models in d's bucket."""
    out = {}
    for f in d["fashion_models.files"].find():
        meta = f["metadata"]
        ev = meta.get("evaluation", {}).get("test_accuracy")
        out[meta.get("model")] = (ev.get("value") if isinstance(ev, dict) else ev, meta,
                                  "learn-%d" % meta["_nemesyst"]["position"])
    return out


want, got = models(ref), models(db)
check(sorted(want) == sorted(got) == sorted(epochs), "models: %r and %r" % (sorted(want), sorted(got)))
lines = []
for arch in sorted(epochs):
    if arch not in want or arch not in got:
        continue
    (a, ma, _), (b, mb, script) = want[arch], got[arch]
    if a is None or b is None:
        errors.append("%s: no test accuracy (uninterrupted %r, resumed %r)" % (arch, a, b))
        continue
    lines.append("%s %.4f uninterrupted, %.4f stopped and resumed" % (arch, a, b))
    check(abs(a - b) <= 0.01, "%s: resumed %.4f, more than 1 point from the uninterrupted %.4f" % (arch, b, a))
    check(a > 0.6, "%s: the uninterrupted run reached only %.4f" % (arch, a))
    check(mb.get("epochs") == epochs[arch] and mb.get("examples") == limit,
          "%s: epochs/examples %r %r" % (arch, mb.get("epochs"), mb.get("examples")))
    # the data the whole training read, as the model's lineage records it: as many documents as the uninterrupted
    # run's (the digests differ between the two databases, whose documents have their own _ids; verify, below,
    # checks the resumed one against its own data)
    def reads(meta):
        return sorted((c.get("collection"), c.get("count"))
                      for c in meta.get("_nemesyst", {}).get("consumed", []))
    check(reads(mb) == reads(ma) and reads(ma),
          "%s: consumed %r, the uninterrupted run's %r" % (arch, reads(mb), reads(ma)))
    # each epoch's metrics once: epoch 0 from the first attempt, the rest from the second
    for name in ("loss", "train_accuracy"):
        steps = sorted(m["step"] for m in db["nemesyst_metrics"].find({"run": run_id, "script": script,
                                                                       "name": name}))
        check(steps == list(range(epochs[arch])), "%s (%s): %s at steps %r, want each epoch once"
              % (arch, script, name, steps))
print("test accuracy: " + "; ".join(lines))
run = db["nemesyst_runs"].find_one({"_id": run_id}) or {}
check(run.get("status") == "succeeded", "the run is %r" % run.get("status"))
check([a.get("status") for a in run.get("attempts", [])] == ["interrupted", "succeeded"],
      "attempts: %r" % run.get("attempts"))
check(db["nemesyst_checkpoints.files"].count_documents({"metadata.run": run_id}) == 0,
      "checkpoints left once the models are stored")
for e in errors:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
    { tail -n 60 "$tmp/resume.out" >&2; fail "read-back checks failed"; }
# The resumed models' consumed records are those of the whole training: a read of the data now gives the same count
# and sha256, which is what verify checks.
ids=$("$PYTHON3" -c 'import sys, pymongo
d = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), serverSelectionTimeoutMS=10000)[sys.argv[2]]
print(" ".join(str(f["_id"]) for f in d["fashion_models.files"].find()))' "$NEM_TEST_PORT" "$stop")
[ -n "$ids" ] || fail "no model to verify"
for id in $ids; do
    "$top_builddir/nemesyst-registry" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$stop" verify "$id" \
        > "$tmp/verify.out" 2>&1 || { cat "$tmp/verify.out" >&2; fail "verify of resumed model $id: exit $?"; }
    grep -q "unchanged" "$tmp/verify.out" || { cat "$tmp/verify.out" >&2; fail "verify of resumed model $id"; }
    sed "s/^/verify: /" "$tmp/verify.out"
done
echo "PASS: fashion-mnist-checkpoint"
