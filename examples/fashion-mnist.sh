#!/bin/bash
# The full example, on the embedded FerretDB server: init a database with a user, then in one MPI job start it,
# clean Fashion-MNIST into it, train two models at once in one learn stage (the C MLP and, when python3-torch is
# installed, the PyTorch CNN: two scripts of one round on two workers, 2.0.6's "hybrid parallelisation"), predict
# the test set with them, and then ask the store: each model's test accuracy read back from the database, the
# best model's lineage (as text and as a Graphviz picture) and `verify` of its training data; then stop the server.
#   bash examples/fashion-mnist.sh            (after bash build-aux/setup.sh)
# Environment: RANKS (default 3), PORT (default 27917), FASHION_MNIST_LIMIT (examples per split, default all),
# TORCH=0 (leave the PyTorch CNN out), EPOCHS="C CNN" (epochs per learner, default "8 3"), PARALLEL="C CNN"
# (--dl-data-parallel per learner, default "1 1": "2 2" trains each as a learner group of 2, README "Learner
# groups"; a group takes that many worker slots of one round),
# NEMESYST (the binary, default _build/nemesyst), PLUGINDIR (the built C plugins, default found beside NEMESYST,
# else installed), SCRIPTS=c (default: the C plugins of examples/plugins) or python (the original-style Python
# scripts of examples/cleaners, learners, predictors), PREDICTOR (a predictor script to use instead; it must read
# the learner's model format), LAUNCHER (what starts the job's ranks, default "mpirun --oversubscribe -n RANKS";
# slurm/nemesyst-example.sbatch sets "srun --mpi=pmix"). The dataset comes from the Debian package
# dataset-fashion-mnist.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
NEMESYST=${NEMESYST:-$top/_build/nemesyst}
RANKS=${RANKS:-3}
PORT=${PORT:-27917}
SCRIPTS=${SCRIPTS:-c}
[ -x "$NEMESYST" ] || { echo "example: no $NEMESYST: run bash build-aux/setup.sh (or set NEMESYST)" >&2; exit 1; }

data=/usr/share/datasets/fashion-mnist
if [ ! -r "$data/train-images-idx3-ubyte.gz" ]; then
    echo "example: installing dataset-fashion-mnist"
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dataset-fashion-mnist \
        >/dev/null || { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null; }
fi

# the interpreter nemesyst runs Python scripts with (NEMESYST_PYTHON3, else the one configure found: Debian's)
python=${NEMESYST_PYTHON3:-/usr/bin/python3}
[ -x "$python" ] || python=python3
scripts=()
case "$SCRIPTS" in
c)
    if [ -z "${PLUGINDIR:-}" ]; then
        for d in "$(dirname "$NEMESYST")/examples/plugins/.libs" \
                 "$(pkg-config --variable=libdir nemesyst 2>/dev/null || echo /nonexistent)/nemesyst/plugins"; do
            [ -f "$d/fashion_mnist_learner.so" ] && { PLUGINDIR=$d; break; }
        done
    fi
    [ -f "${PLUGINDIR:-}/fashion_mnist_learner.so" ] || {
        echo "example: the C plugins are not built (looked beside $NEMESYST; set PLUGINDIR; a build configured" \
             "--without-hdf5 has no C learner or predictor: run SCRIPTS=python)" >&2; exit 1; }
    read -r epochs_c epochs_cnn <<<"${EPOCHS:-8 3}"
    read -r par_c par_cnn <<<"${PARALLEL:-1 1}"
    if [ "${TORCH:-1}" != 0 ] && "$python" -c 'import torch, h5py' 2>/dev/null; then
        # both learners in the one learn stage, each with its own pipeline, epochs and batch size; the Python
        # predictor reads both models (the MLP's HDF5 through h5py, the CNN's torch state)
        scripts=(--data-cleaner "$PLUGINDIR/fashion_mnist_cleaner.so"
                 --dl-learner "$PLUGINDIR/fashion_mnist_learner.so" "$top/examples/learners/fashion_mnist_cnn.py"
                 --dl-data-collection fashion_mnist fashion_mnist
                 --dl-data-pipeline '[{"$match": {"split": "train"}}]' '[{"$match": {"split": "train"}}]'
                 --dl-epochs "$epochs_c" "${epochs_cnn:-3}" --dl-batch-size 256 128
                 --dl-data-parallel "$par_c" "${par_cnn:-1}"
                 --dl-output-model-collection fashion_models fashion_models
                 --i-predictor "${PREDICTOR:-$top/examples/predictors/fashion_mnist_predictor.py}")
    else
        echo "example: python3-torch or python3-h5py missing (or TORCH=0): the C MLP alone"
        scripts=(--data-cleaner "$PLUGINDIR/fashion_mnist_cleaner.so" --dl-learner "$PLUGINDIR/fashion_mnist_learner.so"
                 --dl-epochs "$epochs_c" --dl-data-parallel "$par_c" --i-predictor "${PREDICTOR:-$PLUGINDIR/fashion_mnist_predictor.so}")
    fi
    ;;
python)
    scripts=(--data-cleaner examples/cleaners/fashion_mnist_cleaner.py
             --dl-learner examples/learners/fashion_mnist_learner.py --dl-epochs 1
             --i-predictor "${PREDICTOR:-examples/predictors/fashion_mnist_predictor.py}")
    ;;
*) echo "example: SCRIPTS must be c or python" >&2; exit 2 ;;
esac

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1 MONGOC_DISABLE_SHM=1
work=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-example.XXXXXX")
umask 077
head -c 24 /dev/urandom | base64 > "$work/password"      # a fresh password, in a file only we can read
common=(-c examples/configs/nemesyst/fashion-mnist.conf --db-engine ferretdb --db-port "$PORT"
        --db-path "$work/db" --db-log-path "$work/log" --db-password-file "$work/password")

"$NEMESYST" "${common[@]}" --db-init
# the server this job starts stays up for the questions below; it is stopped on every way out
trap '"$NEMESYST" "${common[@]}" --db-stop >/dev/null 2>&1 || true' EXIT
read -ra launcher <<<"${LAUNCHER:-mpirun --oversubscribe -n $RANKS}"
"${launcher[@]}" "$NEMESYST" "${common[@]}" "${scripts[@]}" --db-start --data-clean --dl-learn \
    --i-predict --summary-json "$work/summary.json"

# Find and trace the models: the registry reads what the run recorded (README "Asking the store").
registry=("$(dirname "$NEMESYST")/nemesyst-registry")
[ -x "${registry[0]}" ] || registry=(nemesyst-registry)
registry+=("${common[@]}")
echo
echo "example: each model's test accuracy, read back from the database (measured by the predictor):"
"${registry[@]}" --json models --bucket fashion_models | "$python" -c '
import json, sys
for m in json.load(sys.stdin)["models"]:
    x = m["metrics"]
    print("  %s %s: test accuracy %.4f (train accuracy %.4f, %d epochs)" % (m["id"], m["script"],
          x.get("evaluation.test_accuracy", float("nan")), x.get("train_accuracy", float("nan")), x.get("epochs", 0)))'
best=$("${registry[@]}" --json models --bucket fashion_models --best evaluation.test_accuracy --max |
       "$python" -c 'import json, sys; print(json.load(sys.stdin)["models"][0]["id"])')
echo
echo "example: the best model, $best: its lineage"
"${registry[@]}" lineage "$best"
echo
echo "example: is its training data still what it was trained on?"
"${registry[@]}" verify "$best"
"${registry[@]}" lineage "$best" --dot > "$work/lineage.dot"
if command -v dot >/dev/null 2>&1; then
    dot -Tsvg "$work/lineage.dot" > "$work/lineage.svg"
    echo "example: its lineage as a picture in $work/lineage.svg (Graphviz DOT in $work/lineage.dot)"
else
    echo "example: its lineage as Graphviz DOT in $work/lineage.dot (install graphviz to draw it)"
fi
echo "example: summary in $work/summary.json, server log in $work/log"
