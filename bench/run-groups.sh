#!/bin/bash
# Learner groups (--dl-data-parallel K): the time of one epoch of the Fashion-MNIST example's learners, the C MLP
# (nemesyst_allreduce every step) and the PyTorch CNN (DistributedDataParallel over gloo), alone (K = 1, on one
# worker rank) and as groups of K (K worker ranks), on the same cleaned documents in one private FerretDB. Prints one
# table: medians of --reps runs at the example's batch sizes (256 and 128): the epoch as the learner logs it
# (member 0's), the script's whole time (reading included) and their ratios against K = 1 measured here; and the
# CPU seconds the job (nemesyst, its ranks and their scripts) and the database server used: where the time goes.
# Usage: bench/run-groups.sh BUILD_DIR [--reps N] [--docs N (training documents)] [--ks 1,2]
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: run-groups.sh BUILD_DIR [options]}" && pwd) || exit 2
shift
reps=3 docs=12000 ks=1,2
while [ $# -gt 0 ]; do
    case $1 in
    --reps) reps=$2 ;;
    --docs) docs=$2 ;;
    --ks) ks=$2 ;;
    *) echo "run-groups.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2 || { echo "run-groups.sh: $1 needs a value" >&2; exit 2; }
done
mpirun=${MPIRUN:-mpirun}
python3=${PYTHON3:-/usr/bin/python3}
plugins="$build/examples/plugins/.libs"
cnn="$here/../examples/learners/fashion_mnist_cnn.py"
[ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ -f "$plugins/fashion_mnist_learner.so" ] ||
    { echo "run-groups.sh: needs dataset-fashion-mnist and the example's C plugins (OpenBLAS)"; exit 0; }
"$python3" -c 'import torch' 2>/dev/null || cnn=
. "$here/lib.sh"
bench_start groups
export FASHION_MNIST_THREADS=1
echo "FerretDB on 127.0.0.1:$NEM_TEST_PORT (sqlite), $(nproc) CPU(s); $docs training documents, one epoch"
FASHION_MNIST_LIMIT=$docs "$build/nemesyst" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name bg --data-clean \
    --data-cleaner "$plugins/fashion_mnist_cleaner.so" --data-collection fm >"$tmp/clean.log" 2>&1 ||
    { cat "$tmp/clean.log"; exit 1; }

# CPU seconds (user + system) the server has used so far
server_cpu() { awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) / t }' "/proc/$NEM_TEST_FERRETDB_PID/stat"; }
# one LEARNER K BATCH: prints "EPOCH_S SCRIPT_S JOB_CPU_S SERVER_CPU_S" of one run
one() {
    local learner=$1 k=$2 batch=$3 log="$tmp/run.log" s0 c0 c1
    s0=$(server_cpu)
    c0=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
    "$mpirun" --oversubscribe -n $((k + 1)) "$build/nemesyst" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" \
        --db-name bg --dl-learn --dl-learner "$learner" --dl-data-collection fm --dl-data-parallel "$k" \
        --dl-data-pipeline '[{"$match": {"split": "train"}}]' --dl-batch-size "$batch" --dl-epochs 1 \
        --dl-output-model-collection "m$k" --summary-json "$tmp/s.json" >"$log" 2>&1 || { tail -5 "$log" >&2; return 1; }
    local epoch
    c1=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
    epoch=$(grep -E "epoch 1/1" "$log" | head -n 1 | sed -E 's/.*\(([0-9.]+) s\).*/\1/')
    "$python3" - "$tmp/s.json" "$epoch" "$(calc "($c1 - $c0) / $(getconf CLK_TCK)")" \
        "$(calc "$(server_cpu) - $s0")" <<'PY'
import sys
from bson import json_util
s = json_util.loads(open(sys.argv[1]).read())
script = [x for x in s["scripts"] if x["stage"] == "learn"][0]
print(sys.argv[2], (script["ended"] - script["started"]).total_seconds(), sys.argv[3], sys.argv[4])
PY
}
calc() { awk "BEGIN { print $* }"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '\n%-8s %3s %9s %7s %10s %7s %12s %12s\n' learner K "epoch s" "x K=1" "script s" "x K=1" "job cpu s" \
    "server cpu s"
for l in mlp ${cnn:+cnn}; do
    case $l in mlp) learner="$plugins/fashion_mnist_learner.so" batch=256 ;; cnn) learner=$cnn batch=128 ;; esac
    base_e= base_s=
    for k in ${ks//,/ }; do
        : >"$tmp/r"
        for _ in $(seq "$reps"); do
            one "$learner" "$k" "$batch" >>"$tmp/r" || exit 1
        done
        e=$(cut -d' ' -f1 "$tmp/r" | median) s=$(cut -d' ' -f2 "$tmp/r" | median)
        jc=$(cut -d' ' -f3 "$tmp/r" | median) sc=$(cut -d' ' -f4 "$tmp/r" | median)
        [ -n "$base_e" ] || base_e=$e base_s=$s
        printf '%-8s %3d %9.2f %7.2f %10.2f %7.2f %12.2f %12.2f\n' "$l" "$k" "$e" "$(calc "$e / $base_e")" \
            "$s" "$(calc "$s / $base_s")" "$jc" "$sc"
    done
done
