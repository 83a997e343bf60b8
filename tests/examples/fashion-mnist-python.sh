#!/bin/bash
# The Fashion-MNIST example's PyTorch learner (examples/learners/fashion_mnist_cnn.py) and Python predictor
# (examples/predictors/fashion_mnist_predictor.py) end to end through `nemesyst` and the Python adapter, on a small
# slice of the data (FASHION_MNIST_LIMIT per split), against this test's FerretDB: the C cleaner, then the CNN for
# one epoch (and the C MLP learner in the same round, on a second worker, when its plugin is built), then the
# predictor, which evaluates the newest model of each architecture; then reads back what was stored: the models'
# metadata and lineage, predictions that reference the model that made them, one summary per model with its test
# accuracy (the CNN's well above chance). Then the CNN retrains from its model and the predictor, picking that
# architecture only, evaluates the new one. Skipped (77) without dataset-fashion-mnist or without PyTorch and h5py
# for $PYTHON3 (Debian: python3-torch python3-h5py).
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
[ -n "${NEM_TEST_PORT:-}" ] || fail "no test server (run through tests/fixtures/with-ferretdb.sh)"
data=/usr/share/datasets/fashion-mnist
[ -r "$data/train-images-idx3-ubyte.gz" ] || { echo "SKIP: $data missing (apt-get install dataset-fashion-mnist)"; exit 77; }
"$PYTHON3" -c 'import torch, h5py' 2>/dev/null ||
    { echo "SKIP: $PYTHON3 cannot import torch and h5py (apt-get install python3-torch python3-h5py)"; exit 77; }
plugins="$top_builddir/examples/plugins/.libs"
[ -f "$plugins/fashion_mnist_cleaner.so" ] || fail "plugin not built: $plugins/fashion_mnist_cleaner.so"
cnn="$top_srcdir/examples/learners/fashion_mnist_cnn.py"
predictor="$top_srcdir/examples/predictors/fashion_mnist_predictor.py"
# The C learner (an MLP in HDF5) trains beside the CNN when it is built: the predictor then reads both formats.
learners=("$cnn") batches=(64) ranks=2 with_c=0
if [ -f "$plugins/fashion_mnist_learner.so" ]; then
    learners=("$plugins/fashion_mnist_learner.so" "$cnn") batches=(32 64) ranks=3 with_c=1
fi
limit=2000
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
db="fashion_py_test_$$"
common=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$db" --dl-data-collection fashion_mnist
        --dl-data-pipeline '[{"$match": {"split": "train"}}]' --dl-output-model-collection fashion_models)
export FASHION_MNIST_THREADS=1

start=$SECONDS
FASHION_MNIST_LIMIT=$limit nem_mpirun -n $ranks "$NEMESYST" "${common[@]}" \
    --data-clean --data-cleaner "$plugins/fashion_mnist_cleaner.so" --data-collection fashion_mnist \
    --dl-learn --dl-learner "${learners[@]}" --dl-batch-size "${batches[@]}" --dl-epochs 1 \
    --i-predict --i-predictor "$predictor" --i-output-prediction-collection fashion_predictions \
    >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; fail "nemesyst run failed"; }
echo "fashion-mnist-python: clean, learn ($((ranks - 1)) learners), predict in $((SECONDS - start)) s"
grep -Eq "fashion_mnist_cnn model [0-9a-f]{24}: accuracy 0\.[0-9]{4} \([0-9]+/$limit\)" "$tmp/out" ||
    { cat "$tmp/out" >&2; fail "the predictor printed no accuracy for the CNN"; }

"$PYTHON3" - "$NEM_TEST_PORT" "$db" "$limit" "$with_c" <<'PY' || { cat "$tmp/out" >&2; fail "read-back checks failed"; }
import io
import sys
import pymongo
import torch

port, name, limit, with_c = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
db = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=10000)[name]
errors = []

def check(cond, msg):
    if not cond:
        errors.append(msg)

def blob(f):
    chunks = sorted(db["fashion_models.chunks"].find({"files_id": f["_id"]}), key=lambda c: c["n"])
    return b"".join(bytes(c["data"]) for c in chunks)

# the models: one CNN (and one MLP), with their metadata and lineage
files = {f["metadata"].get("model"): f for f in db["fashion_models.files"].find()}
want = {"fashion_mnist_cnn", "fashion_mnist_mlp"} if with_c else {"fashion_mnist_cnn"}
check(set(files) == want and db["fashion_models.files"].count_documents({}) == len(want),
      "models in GridFS: %r, want %r" % (sorted(files), sorted(want)))
cnn = files.get("fashion_mnist_cnn")
if cnn:
    meta = cnn["metadata"]
    check(meta.get("architecture") == "fashion_mnist_cnn" and meta.get("framework") == "pytorch",
          "architecture/framework: %r %r" % (meta.get("architecture"), meta.get("framework")))
    check(meta.get("epochs") == 1 and meta.get("examples") == limit and meta.get("batch_size") == 64,
          "epochs/examples/batch_size: %r %r %r" % (meta.get("epochs"), meta.get("examples"), meta.get("batch_size")))
    check(0 < meta.get("train_accuracy", 0) <= 1 and meta.get("loss", -1) > 0,
          "train_accuracy/loss: %r %r" % (meta.get("train_accuracy"), meta.get("loss")))
    check(meta.get("channels") == [16, 32, 64] and meta.get("hidden") == 128 and meta.get("retrained") is False,
          "channels/hidden/retrained: %r %r %r" % (meta.get("channels"), meta.get("hidden"), meta.get("retrained")))
    consumed = [c for c in meta.get("_nemesyst", {}).get("consumed", []) if c.get("collection") == "fashion_mnist"]
    check(len(consumed) == 1 and consumed[0].get("count") == limit and consumed[0].get("complete") is True,
          "lineage of the CNN: %r" % consumed)
    data = blob(cnn)
    check(len(data) == cnn["length"] and data[:2] == b"PK", "the CNN model is not a torch.save file")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        check("0.weight" in state and tuple(state["0.weight"].shape) == (16, 1, 3, 3), "state_dict: %r" % list(state))
    except Exception as e:
        check(False, "torch.load of the CNN model: %s" % e)
if with_c and files.get("fashion_mnist_mlp"):
    check(blob(files["fashion_mnist_mlp"])[:8] == b"\x89HDF\r\n\x1a\n", "the C learner's model is not HDF5")

# the predictions: for each model one per test document and one summary, all referencing it
preds = db.fashion_predictions
ids = {f["_id"]: m for m, f in files.items()}
unref = preds.count_documents({"_nemesyst.model": {"$nin": list(ids)}})
check(unref == 0, "%d prediction documents reference no model of the run" % unref)
for model_id, model in ids.items():
    rows = list(preds.find({"_nemesyst.model": model_id, "summary": {"$ne": True}},
                           {"img_num": 1, "prediction": 1, "y": 1}))
    check(len(rows) == limit, "%s: %d predictions, want %d" % (model, len(rows), limit))
    check(sorted(r["img_num"] for r in rows) == list(range(limit, 2 * limit)), "%s: not the test split" % model)
    check(all(0 <= r.get("prediction", -1) < 10 for r in rows), "%s: a prediction out of 0..9" % model)
    correct = sum(r["prediction"] == r["y"] for r in rows)
    summaries = list(preds.find({"summary": True, "model_id": model_id}))
    check(len(summaries) == 1, "%s: %d summaries, want 1" % (model, len(summaries)))
    if summaries:
        s = summaries[0]
        check(s.get("_nemesyst", {}).get("model") == model_id, "%s: the summary does not reference it" % model)
        check(s.get("architecture") == model and s.get("n") == limit and s.get("correct") == correct and
              abs(s.get("test_accuracy", -1) - correct / limit) < 1e-9, "%s: summary %r (counted %d right)"
              % (model, {k: v for k, v in s.items() if k != "_nemesyst"}, correct))
        print("fashion-mnist-python: %s test accuracy %.3f (%d/%d)" % (model, correct / limit, correct, limit))
        check(s.get("test_accuracy", 0) > 0.5, "%s: test accuracy %.3f not above 0.5" % (model, correct / limit))
check(preds.count_documents({"summary": True}) == len(ids), "summaries: not one per model")
for e in errors:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY

# retraining: the CNN starts from its model (--dl-input-model-*); the predictor, asked for that architecture only,
# evaluates the new model
start=$SECONDS
FASHION_MNIST_MODELS=fashion_mnist_cnn nem_mpirun -n 2 "$NEMESYST" "${common[@]}" \
    --dl-learn --dl-learner "$cnn" --dl-batch-size 64 --dl-epochs 1 --dl-input-model-collection fashion_models \
    --dl-input-model-pipeline '[{"$match": {"metadata.model": "fashion_mnist_cnn"}}, {"$sort": {"uploadDate": -1}}]' \
    --i-predict --i-predictor "$predictor" --data-collection fashion_mnist \
    --i-output-prediction-collection fashion_predictions2 >"$tmp/out2" 2>&1 \
    || { cat "$tmp/out2" >&2; fail "retraining run failed"; }
echo "fashion-mnist-python: retrain and predict in $((SECONDS - start)) s"
grep -q "retraining the input model" "$tmp/out2" || { cat "$tmp/out2" >&2; fail "the CNN did not retrain"; }
"$PYTHON3" - "$NEM_TEST_PORT" "$db" "$limit" <<'PY' || { cat "$tmp/out2" >&2; fail "retraining read-back failed"; }
import sys
import pymongo
db = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), serverSelectionTimeoutMS=10000)[sys.argv[2]]
limit = int(sys.argv[3])
cnns = sorted(db["fashion_models.files"].find({"metadata.model": "fashion_mnist_cnn"}), key=lambda f: f["uploadDate"])
assert len(cnns) == 2, "%d CNN models after retraining, want 2" % len(cnns)
meta = cnns[1]["metadata"]
assert meta.get("retrained") is True and meta["_nemesyst"]["parent"]["id"] == cnns[0]["_id"], meta
summaries = list(db.fashion_predictions2.find({"summary": True}))
assert len(summaries) == 1 and summaries[0]["model_id"] == cnns[1]["_id"], summaries
assert summaries[0]["test_accuracy"] > 0.5, summaries
n = db.fashion_predictions2.count_documents({"_nemesyst.model": cnns[1]["_id"], "summary": {"$ne": True}})
assert n == limit and db.fashion_predictions2.count_documents({}) == limit + 1, n
print("fashion-mnist-python: the retrained CNN: test accuracy %.3f" % summaries[0]["test_accuracy"])
PY
echo "fashion-mnist-python example: ok"
