#!/bin/bash
# The Fashion-MNIST example's C plugins end to end through `nemesyst` at -n 2, on a small slice of the data
# (FASHION_MNIST_LIMIT per split, a few epochs of the 784-256-10 MLP), against this test's FerretDB: clean, learn,
# predict, then read back what was stored (with h5py, when installed: the model's HDF5 layout, and numpy predictions
# from it that match the C predictor's); retrain from the stored model; refuse a model of the old softmax layout.
# Skipped (77) when the Debian package dataset-fashion-mnist is not installed, or when the learner and predictor
# are not built because configure found no OpenBLAS (libopenblas-dev).
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
[ -n "${NEM_TEST_PORT:-}" ] || fail "no test server (run through tests/fixtures/with-ferretdb.sh)"
data=/usr/share/datasets/fashion-mnist
[ -r "$data/train-images-idx3-ubyte.gz" ] || { echo "SKIP: $data missing (apt-get install dataset-fashion-mnist)"; exit 77; }
plugins="$top_builddir/examples/plugins/.libs"
[ -f "$plugins/fashion_mnist_learner.so" ] || pkg-config --exists openblas ||
    { echo "SKIP: no OpenBLAS, so no C learner or predictor (apt-get install libopenblas-dev)"; exit 77; }
for p in cleaner learner predictor; do
    [ -f "$plugins/fashion_mnist_$p.so" ] || fail "plugin not built: $plugins/fashion_mnist_$p.so"
done
limit=600 epochs=5
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
db="fashion_test_$$"

FASHION_MNIST_LIMIT=$limit nem_mpirun -n 2 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$db" \
    --data-clean --data-cleaner "$plugins/fashion_mnist_cleaner.so" --data-collection fashion_mnist \
    --dl-learn --dl-learner "$plugins/fashion_mnist_learner.so" --dl-data-collection fashion_mnist \
    --dl-data-pipeline '[{"$match": {"split": "train"}}]' --dl-batch-size 32 --dl-epochs "$epochs" \
    --dl-output-model-collection fashion_models \
    --i-predict --i-predictor "$plugins/fashion_mnist_predictor.so" \
    --i-output-prediction-collection fashion_predictions --summary-json "$tmp/summary.json" >"$tmp/out" 2>&1 \
    || { cat "$tmp/out" >&2; fail "nemesyst run failed"; }
grep -q "accuracy" "$tmp/out" || { cat "$tmp/out" >&2; fail "the predictor logged no accuracy"; }

"$PYTHON3" - "$NEM_TEST_PORT" "$db" "$limit" "$epochs" <<'PY' || fail "read-back checks failed"
import io
import sys
import pymongo
try:
    import h5py
    import numpy as np
except ImportError:
    h5py = None

port, name, limit, epochs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
db = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=10000)[name]
errors = []

def check(cond, msg):
    if not cond:
        errors.append(msg)

# the cleaner: limit documents per split, pixels as binary with dtype and shape
data = db.fashion_mnist
for split in ("train", "test"):
    n = data.count_documents({"split": split})
    check(n == limit, "%d %s documents, want %d" % (n, split, limit))
doc = data.find_one({"img_num": 0})
check(doc is not None, "no document with img_num 0")
if doc:
    check(isinstance(doc["x"], bytes) and len(doc["x"]) == 784, "x is not 784 bytes of binary: %r" % type(doc["x"]))
    check(doc.get("dtype") == "uint8" and doc.get("shape") == [28, 28], "dtype/shape: %r %r"
          % (doc.get("dtype"), doc.get("shape")))
    check(doc.get("split") == "train" and doc.get("dataset") == "fashion-mnist" and 0 <= doc.get("y", -1) < 10,
          "bad fields: %r" % {k: v for k, v in doc.items() if k != "x"})
    check(max(doc["x"]) > 0, "an all-black first image")
check(sorted(data.distinct("img_num")) == list(range(2 * limit)), "img_num is not 0..%d" % (2 * limit - 1))

# the learner: one model, an HDF5 file, with its metadata
files = list(db["fashion_models.files"].find())
check(len(files) == 1, "%d models in GridFS, want 1" % len(files))
if files:
    f = files[0]
    chunks = sorted(db["fashion_models.chunks"].find({"files_id": f["_id"]}), key=lambda c: c["n"])
    blob = b"".join(bytes(c["data"]) for c in chunks)
    check(len(blob) == f["length"], "model is %d bytes, files says %d" % (len(blob), f["length"]))
    check(blob[:8] == b"\x89HDF\r\n\x1a\n", "model is not HDF5: %r" % blob[:8])
    meta = f.get("metadata", {})
    check(meta.get("model") == "fashion_mnist_mlp", "model metadata: %r" % meta.get("model"))
    check(meta.get("epochs") == epochs and meta.get("examples") == limit, "epochs/examples: %r %r"
          % (meta.get("epochs"), meta.get("examples")))
    check(0.5 < meta.get("train_accuracy", 0) <= 1 and meta.get("loss", -1) > 0, "train_accuracy/loss: %r %r"
          % (meta.get("train_accuracy"), meta.get("loss")))

# the model's HDF5 layout (fashion_mnist_model.h), read the way a Python predictor would
numpy_preds = None
if files and h5py:
    with h5py.File(io.BytesIO(blob), "r") as h5:
        shapes = {k: h5[k].shape for k in ("w1", "b1", "w2", "b2") if k in h5}
        check(shapes == {"w1": (784, 256), "b1": (256,), "w2": (256, 10), "b2": (10,)}, "datasets: %r" % shapes)
        check(all(h5[k].dtype == np.float32 for k in shapes), "datasets are not all float32")
        attrs = dict(h5.attrs)
        check(attrs.get("model") == "fashion_mnist_mlp" and attrs.get("hidden_activation") == "relu" and
              attrs.get("output_activation") == "softmax" and list(attrs.get("layer_sizes", [])) == [784, 256, 10]
              and attrs.get("format_version") == 2 and attrs.get("pixel_scale") == 255, "attributes: %r" % attrs)
        if len(shapes) == 4 and "pixel_scale" in attrs:
            test = list(data.find({"split": "test"}, {"x": 1, "img_num": 1}))
            x = np.array([np.frombuffer(d["x"], np.uint8) for d in test], np.float32) / attrs["pixel_scale"]
            logits = np.maximum(x @ h5["w1"][:] + h5["b1"][:], 0) @ h5["w2"][:] + h5["b2"][:]
            numpy_preds = dict(zip((d["img_num"] for d in test), logits.argmax(axis=1).tolist()))

# the predictor: one prediction per test document, better than chance, and one summary document
preds = list(db.fashion_predictions.find({"summary": {"$ne": True}}, {"img_num": 1, "prediction": 1, "y": 1}))
check(len(preds) == limit, "%d predictions, want %d" % (len(preds), limit))
check(all(0 <= p.get("prediction", -1) < 10 for p in preds), "a prediction out of 0..9")
check(sorted(p["img_num"] for p in preds) == list(range(limit, 2 * limit)), "predictions are not the test split")
correct = sum(p["prediction"] == p["y"] for p in preds)
accuracy = correct / len(preds) if preds else 0
print("fashion-mnist: %d/%d test examples right (accuracy %.3f)" % (correct, len(preds), accuracy))
check(accuracy > 0.6, "test accuracy %.3f not above 0.6" % accuracy)
if numpy_preds is not None:
    differ = sum(numpy_preds.get(p["img_num"]) != p["prediction"] for p in preds)
    # float32 sums in another order may flip a near tie, rarely
    check(differ <= len(preds) // 100, "%d C predictions differ from numpy's on the stored model" % differ)
summaries = list(db.fashion_predictions.find({"summary": True}))
check(len(summaries) == 1, "%d summary documents, want 1" % len(summaries))
if summaries and files:
    s = summaries[0]
    check(abs(s.get("test_accuracy", -1) - accuracy) < 1e-9 and s.get("labelled") == limit and
          s.get("correct") == correct, "summary counts: %r" % s)
    check(s.get("model") == files[0]["_id"] and s.get("model_bucket") == "fashion_models", "summary model: %r" % s)
    # the same accuracy, read back from the model's metadata and the run record (nemesyst_log_metric)
    ev = (db["fashion_models.files"].find_one({"_id": files[0]["_id"]})["metadata"].get("evaluation") or {})
    check(abs(ev.get("test_accuracy", {}).get("value", -1) - accuracy) < 1e-9, "model evaluation: %r" % ev)
    rec = db.nemesyst_runs.find_one({"_id": ev.get("test_accuracy", {}).get("run")}) or {}
    m = [x for x in rec.get("scripts", {}).get("predict-0", {}).get("metrics", []) if x["name"] == "test_accuracy"]
    check(len(m) == 1 and abs(m[0]["value"] - accuracy) < 1e-9 and m[0].get("model") == files[0]["_id"],
          "the run record's test_accuracy: %r" % m)
    learn = rec.get("scripts", {}).get("learn-0", {}).get("metrics", [])
    check({x["name"] for x in learn} == {"loss", "train_accuracy"}, "the learner's last metrics: %r" % learn)
    hist = list(db.nemesyst_metrics.find({"run": rec.get("_id"), "script": "learn-0", "name": "loss"}))
    check(sorted(h["step"] for h in hist) == list(range(epochs)), "the loss history: %r" % [h["step"] for h in hist])

# a model of the old softmax-regression layout (/weights, /bias), for the refusal below
if h5py:
    old = io.BytesIO()
    with h5py.File(old, "w") as h5:
        h5["weights"] = np.zeros((784, 10), np.float32)
        h5["bias"] = np.zeros(10, np.float32)
    import gridfs
    gridfs.GridFSBucket(db, "old_models").upload_from_stream("old.h5", old.getvalue())
for e in errors:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY

# retraining: the learner starts from the newest model (--dl-input-model-*) and stores a second one
nem_mpirun -n 2 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$db" \
    --dl-learn --dl-learner "$plugins/fashion_mnist_learner.so" --dl-data-collection fashion_mnist \
    --dl-data-pipeline '[{"$match": {"split": "train"}}]' --dl-batch-size 32 --dl-epochs 1 \
    --dl-output-model-collection fashion_models --dl-input-model-collection fashion_models \
    --dl-input-model-pipeline '[{"$sort": {"uploadDate": -1}}]' >"$tmp/out2" 2>&1 \
    || { cat "$tmp/out2" >&2; fail "retraining run failed"; }
grep -q "retraining the input model" "$tmp/out2" || { cat "$tmp/out2" >&2; fail "the learner did not retrain"; }
"$PYTHON3" - "$NEM_TEST_PORT" "$db" <<'PY' || fail "retraining read-back failed"
import sys
import pymongo
db = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), serverSelectionTimeoutMS=10000)[sys.argv[2]]
files = sorted(db["fashion_models.files"].find(), key=lambda f: f["uploadDate"])
assert len(files) == 2, "%d models after retraining, want 2" % len(files)
meta = files[1]["metadata"]
assert meta.get("retrained") is True and meta.get("train_accuracy", 0) > 0.5, meta
PY

# retraining from a model of the old softmax layout is refused, saying so
if "$PYTHON3" -c 'import h5py' 2>/dev/null; then
    nem_mpirun -n 2 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$db" \
        --dl-learn --dl-learner "$plugins/fashion_mnist_learner.so" --dl-data-collection fashion_mnist \
        --dl-data-pipeline '[{"$match": {"split": "train"}}]' --dl-batch-size 32 --dl-epochs 1 \
        --dl-output-model-collection fashion_models --dl-input-model-collection old_models \
        --dl-input-model-pipeline '[{"$sort": {"uploadDate": -1}}]' >"$tmp/out3" 2>&1 &&
        { cat "$tmp/out3" >&2; fail "retraining from an old softmax model succeeded"; }
    grep -q "old softmax-regression layout" "$tmp/out3" ||
        { cat "$tmp/out3" >&2; fail "no clear error for an old softmax model"; }
else
    echo "no h5py: the HDF5 layout and old-model checks left out"
fi
echo "fashion-mnist example: ok"
