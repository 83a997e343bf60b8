#!/bin/bash
# The Fashion-MNIST example's learners as learner groups (--dl-data-parallel 2) beside the same learners alone, on a
# reduced set (FASHION_MNIST_LIMIT per split), in one run against this test's FerretDB: the C MLP (nemesyst_allreduce)
# and the PyTorch CNN (DistributedDataParallel over gloo) each reach the test accuracy of their single-process run
# within 1 point (the Python predictor measures all four models on the test split); each group stores one model,
# whose lineage holds both members' shards adding up to the training split. Skipped (77) without
# dataset-fashion-mnist, OpenBLAS (the C learner) or PyTorch and h5py for $PYTHON3.
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
limit=${FASHION_MNIST_GROUPS_LIMIT:-4000}
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
db="fashion_groups_test_$$"
export FASHION_MNIST_THREADS=1

start=$SECONDS
FASHION_MNIST_LIMIT=$limit nem_mpirun -n 3 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$db" \
    --process-pool 2 --data-clean --data-cleaner "$plugins/fashion_mnist_cleaner.so" --data-collection fashion_mnist \
    --dl-learn --dl-learner "$plugins/fashion_mnist_learner.so" "$plugins/fashion_mnist_learner.so" "$cnn" "$cnn" \
    --dl-data-parallel 1 2 1 2 --dl-batch-size 32 32 64 64 --dl-epochs 4 4 2 2 \
    --dl-data-collection fashion_mnist --dl-data-pipeline '[{"$match": {"split": "train"}}]' \
    --dl-output-model-collection mlp1 mlp2 cnn1 cnn2 \
    --i-predict --i-predictor "$predictor" "$predictor" "$predictor" "$predictor" \
    --i-output-prediction-collection predictions >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; fail "nemesyst run failed"; }
echo "fashion-mnist-groups: clean, 4 learners (2 of them groups of 2), 4 predictors in $((SECONDS - start)) s"

"$PYTHON3" - "$NEM_TEST_PORT" "$db" "$limit" <<'PY' || { tail -n 80 "$tmp/out" >&2; fail "read-back checks failed"; }
import sys
import pymongo
port, name, limit = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
db = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=10000)[name]
errors = []
acc = {}
for bucket in ("mlp1", "mlp2", "cnn1", "cnn2"):
    files = list(db[bucket + ".files"].find())
    if len(files) != 1:
        errors.append("%s: %d models, want 1" % (bucket, len(files)))
        continue
    meta = files[0]["metadata"]
    ev = meta.get("evaluation", {}).get("test_accuracy")
    acc[bucket] = ev.get("value") if isinstance(ev, dict) else ev
    k = 2 if bucket.endswith("2") else 1
    if meta.get("data_parallel") != k:
        errors.append("%s: data_parallel %r, want %d" % (bucket, meta.get("data_parallel"), k))
    if k == 2:
        g = meta["_nemesyst"].get("group", {})
        counts = [m.get("count") for m in g.get("members", [])]
        if g.get("size") != 2 or g.get("count") != limit or len(counts) != 2 or sum(counts) != limit:
            errors.append("%s: group lineage %r" % (bucket, g))
        if meta.get("examples") != limit:
            errors.append("%s: the group trained on %r examples an epoch, want %d" % (bucket, meta.get("examples"), limit))
print("test accuracy: " + ", ".join("%s %.4f" % (b, a) for b, a in sorted(acc.items()) if a is not None))
for one, two in (("mlp1", "mlp2"), ("cnn1", "cnn2")):
    a, b = acc.get(one), acc.get(two)
    if a is None or b is None:
        errors.append("no test accuracy for %s or %s: %r" % (one, two, acc))
    elif b < a - 0.01:
        errors.append("%s (K = 2) reached %.4f, more than 1 point below %s (K = 1) at %.4f" % (two, b, one, a))
    elif a < 0.6:
        errors.append("%s reached only %.4f" % (one, a))
if errors:
    print("\n".join(errors))
    sys.exit(1)
PY
echo "PASS: fashion-mnist-groups"
