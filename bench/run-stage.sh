#!/bin/bash
# Stage benchmarks (issue 4, section 8) against one private FerretDB started by the test fixture (stopped by its PID
# on exit). Each prints one table: medians of a few repetitions and the ratio ours/baseline, both measured here.
# Usage: bench/run-stage.sh BUILD_DIR [--reps N] [--docs N] [--feed-docs N] [--rounds N] [--workers A-B]
#                                      [--only ingest,scaling,feed,pyfeed,rounds,parallel,idle]
# (`make bench-stage` passes BUILD_DIR; MPIRUN and PYTHON3 name the programs, default mpirun and /usr/bin/python3.)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: run-stage.sh BUILD_DIR [options]}" && pwd) || exit 2
shift
reps=3 docs=20000 feed_docs=20000 rounds=20 workers=1-4 only=ingest,scaling,feed,pyfeed,rounds,parallel,idle
while [ $# -gt 0 ]; do
    case $1 in
    --reps) reps=$2 ;;
    --docs) docs=$2 ;;
    --feed-docs) feed_docs=$2 ;;
    --rounds) rounds=$2 ;;
    --workers) workers=$2 ;;
    --only) only=$2 ;;
    *) echo "run-stage.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2 || { echo "run-stage.sh: $1 needs a value" >&2; exit 2; }
done
mpirun=${MPIRUN:-mpirun}
python3=${PYTHON3:-/usr/bin/python3}
want() { case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

. "$here/lib.sh"
bench_start stage

echo "FerretDB $(basename "$(dirname "$(nem_ferretdb_bin)")") on 127.0.0.1:$NEM_TEST_PORT (sqlite), $(nproc) CPU(s)"
status=0
start=$SECONDS
if want ingest; then
    echo
    "$build/bench/bench_stage_ingest" --port "$NEM_TEST_PORT" --reps "$reps" --docs "$docs" --tmp "$tmp" \
        --nemesyst "$build/nemesyst" --exec "$here/stage/emit-json.sh" --python "$here/stage/clean.py" \
        --plugin "$build/bench/stage/.libs/bench_plugin.so" --empty "$here/stage/empty.sh" || status=1
fi
if want scaling; then
    # The same documents split over W executable cleaners on W workers (mpirun -n W+1), into one collection.
    echo
    echo "Ingest by workers: $docs documents of 212 bytes split over W executable cleaners on W workers, whole command, median of $reps run(s); ratio = docs/s against W = 1"
    "$python3" - "$reps" "$mpirun" "$build/nemesyst" "$NEM_TEST_PORT" "$here/stage/emit-json.sh" "$docs" "$workers" <<'PY' || status=1
import os, statistics, subprocess, sys, time
import pymongo
reps, mpirun, nem, port, script, docs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
lo, hi = (int(x) for x in sys.argv[7].split("-"))
coll = pymongo.MongoClient("127.0.0.1", int(port))["bench_scaling"]["s"]
print("%-8s %10s %12s %10s %8s" % ("workers", "median s", "min-max s", "docs/s", "ratio"))
base = None
for w in range(lo, hi + 1):
    env = dict(os.environ, BENCH_STAGE_DOCS=str(docs // w))
    cmd = [mpirun, "--oversubscribe", "-n", str(w + 1), nem, "--db-ip", "127.0.0.1", "--db-port", port, "--db-name",
           "bench_scaling", "--log-level", "warn", "--data-clean", "--data-collection", "s", "--data-cleaner"] + [script] * w
    t = []
    for r in range(reps + 1):
        coll.drop()
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        if r:
            t.append(time.perf_counter() - t0)
        n = coll.estimated_document_count()
        if n != docs // w * w:
            sys.exit("ingest by workers: %d workers stored %d of %d documents" % (w, n, docs // w * w))
    m = statistics.median(t)
    rate = docs // w * w / m
    base = base or rate
    print("%-8d %10.3f %6.3f-%-5.3f %10.0f %8.2f" % (w, m, min(t), max(t), rate, rate / base))
coll.drop()
PY
fi
if want feed; then
    echo
    "$build/bench/bench_stage_feed" --port "$NEM_TEST_PORT" --reps "$reps" --docs "$feed_docs" || status=1
fi
if want pyfeed; then
    echo
    "$python3" "$here/stage/feed.py" --port "$NEM_TEST_PORT" --reps "$reps" --docs "$feed_docs" \
        --adapter-dir "$here/../python" || status=1
fi
if want rounds; then
    echo
    "$build/bench/bench_stage_rounds" --port "$NEM_TEST_PORT" --reps "$reps" --rounds "$rounds" \
        --workers "$workers" --tmp "$tmp" --mpirun "$mpirun" --nemesyst "$build/nemesyst" \
        --barrier "$build/bench/bench_stage_barrier" --empty "$here/stage/empty.sh" || status=1
fi
if want parallel; then
    # K cleaners that each sleep 1 s: on K workers (mpirun -n K+1), and on one worker with --process-pool K.
    # 2.0.6 ran its scripts one after another: K seconds.
    echo
    echo "Parallel rounds: K scripts that each sleep 1 s, whole command, median of $reps run(s); ratio = ours / K s (2.0.6 ran them one after another)"
    "$python3" - "$reps" "$mpirun" "$build/nemesyst" "$NEM_TEST_PORT" "$here/stage/sleep1.sh" <<'PY' || status=1
import statistics, subprocess, sys, time
reps, mpirun, nem, port, script = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
print("%-3s %-34s %10s %12s %8s" % ("K", "shape", "median s", "min-max s", "ratio"))
for k in (2, 4):
    for shape, ranks, pool in (("%d workers (mpirun -n %d)" % (k, k + 1), k + 1, 1),
                               ("1 worker, --process-pool %d" % k, 2, k)):
        cmd = [mpirun, "--oversubscribe", "-n", str(ranks), nem, "--db-ip", "127.0.0.1", "--db-port", port,
               "--db-name", "bench_parallel", "--process-pool", str(pool), "--log-level", "warn", "--data-clean",
               "--data-collection", "p", "--data-cleaner"] + [script] * k
        t = []
        for r in range(reps + 1):
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            if r:
                t.append(time.perf_counter() - t0)
        m = statistics.median(t)
        print("%-3d %-34s %10.3f %6.3f-%-5.3f %8.2f" % (k, shape, m, min(t), max(t), m / k))
PY
fi
if want idle; then
    echo
    echo "CPU of an idle rank (% of a core) while rank 0 works 2 s: blocking MPI_Barrier vs nemesyst's wait"
    for n in 2 3; do
        printf -- "-n %d: " "$n"
        "$mpirun" --oversubscribe -n "$n" "$build/bench/bench_stage_idle" 2 "$reps" || status=1
    done
fi
echo
echo "bench-stage: $((SECONDS - start)) s"
exit $status
