#!/bin/bash
# The full example, on the embedded FerretDB server: init a database with a user, then in one MPI job start it,
# clean Fashion-MNIST into it, learn a model, predict the test set with it, and stop the server.
#   bash examples/fashion-mnist.sh            (after bash build-aux/setup.sh)
# Environment: RANKS (default 3), PORT (default 27917), FASHION_MNIST_LIMIT (examples per split, default all),
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
    scripts=(--data-cleaner "$PLUGINDIR/fashion_mnist_cleaner.so" --dl-learner "$PLUGINDIR/fashion_mnist_learner.so"
             --i-predictor "${PREDICTOR:-$PLUGINDIR/fashion_mnist_predictor.so}")
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
read -ra launcher <<<"${LAUNCHER:-mpirun --oversubscribe -n $RANKS}"
"${launcher[@]}" "$NEMESYST" "${common[@]}" "${scripts[@]}" --db-start --data-clean --dl-learn \
    --i-predict --db-stop --summary-json "$work/summary.json"
echo "example: summary in $work/summary.json, server log in $work/log"
