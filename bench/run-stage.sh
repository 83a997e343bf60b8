#!/bin/bash
# Stage benchmarks (issue 4, section 8) against one private FerretDB started by the test fixture (stopped by its PID
# on exit). Each prints one table: medians of a few repetitions and the ratio ours/baseline, both measured here.
# Usage: bench/run-stage.sh BUILD_DIR [--reps N] [--docs N] [--feed-docs N] [--rounds N] [--workers A-B]
#                                      [--only ingest,feed,pyfeed,rounds,idle]
# (`make bench-stage` passes BUILD_DIR; MPIRUN and PYTHON3 name the programs, default mpirun and /usr/bin/python3.)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: run-stage.sh BUILD_DIR [options]}" && pwd) || exit 2
shift
reps=3 docs=20000 feed_docs=20000 rounds=20 workers=1-4 only=ingest,feed,pyfeed,rounds,idle
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

. "$here/../tests/fixtures/ferretdb.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-bench-stage.XXXXXX") || exit 1
cleanup() { nem_ferretdb_stop; rm -rf "$tmp"; }
trap cleanup EXIT
nem_ferretdb_start || exit 1
mkdir -p "$tmp/no-sysconf"
cd "$tmp" || exit 1 # no ./nemesyst.d here
export MONGOC_DISABLE_SHM=1 NEMESYST_SYSCONFDIR="$tmp/no-sysconf"
export OMPI_MCA_mpi_yield_when_idle=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset N_DB_PASSWORD N_DB_USER_NAME

echo "FerretDB $(basename "$(dirname "$(nem_ferretdb_bin)")") on 127.0.0.1:$NEM_TEST_PORT (sqlite), $(nproc) CPU(s)"
status=0
start=$SECONDS
if want ingest; then
    echo
    "$build/bench/bench_stage_ingest" --port "$NEM_TEST_PORT" --reps "$reps" --docs "$docs" --tmp "$tmp" \
        --nemesyst "$build/nemesyst" --exec "$here/stage/emit-json.sh" --python "$here/stage/clean.py" \
        --plugin "$build/bench/stage/.libs/bench_plugin.so" --empty "$here/stage/empty.sh" || status=1
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
