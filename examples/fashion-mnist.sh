#!/bin/bash
# The full example, on the embedded FerretDB server: init a database with a user, then in one MPI job start it,
# clean Fashion-MNIST into it, learn a model, predict the test set with it, and stop the server.
#   bash examples/fashion-mnist.sh            (after bash build-aux/setup.sh)
# RANKS (default 3), PORT (default 27917), FASHION_MNIST_LIMIT (examples per split, default all) and
# NEMESYST (the binary) may be set in the environment.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
NEMESYST=${NEMESYST:-$top/_build/nemesyst}
RANKS=${RANKS:-3}
PORT=${PORT:-27917}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1 MONGOC_DISABLE_SHM=1
work=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-example.XXXXXX")
umask 077
head -c 24 /dev/urandom | base64 > "$work/password"      # a fresh password, in a file only we can read
common=(-c examples/configs/nemesyst/fashion-mnist.conf --db-engine ferretdb --db-port "$PORT"
        --db-path "$work/db" --db-log-path "$work/log" --db-password-file "$work/password")

"$NEMESYST" "${common[@]}" --db-init
mpirun --oversubscribe -n "$RANKS" "$NEMESYST" "${common[@]}" --db-start --data-clean --dl-learn --i-predict \
    --db-stop --summary-json "$work/summary.json"
echo "example: summary in $work/summary.json, server log in $work/log"
