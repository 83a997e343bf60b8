#!/bin/bash
# Rollback and resume at size, on one private FerretDB (stopped by its PID on exit). A cleaner writes N documents
# and fails; the run's rollback must leave none. Kept with --keep-partial, the same failure is then resumed: the
# purge of the N partial documents and the rerun must leave exactly N. Times come from nemesyst's own log lines;
# the baseline, measured in the same run, is the ingest of the same N documents by a successful run (into a
# collection of its own, so the rollback's collection holds only the N documents).
# Usage: bench/run-rollback.sh BUILD_DIR [--docs N] (default 100000; the issue's figure is 1000000)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: run-rollback.sh BUILD_DIR [--docs N]}" && pwd) || exit 2
shift
docs=100000
while [ $# -gt 0 ]; do
    case $1 in
    --docs) docs=$2 ;;
    *) echo "run-rollback.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2 || { echo "run-rollback.sh: $1 needs a value" >&2; exit 2; }
done
python3=${PYTHON3:-/usr/bin/python3}
. "$here/lib.sh"
bench_start rollback
export NEM_T_COUNT=$docs NEM_T_MARKER="$tmp/marker"
run() { # LOG COLLECTION ARGS...: one nemesyst run, its log kept
    local log=$1 coll=$2
    shift 2
    "$build/nemesyst" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name bench --data-clean \
        --data-cleaner "$here/../tests/stage/fixtures/many.sh" --data-collection "$coll" "$@" >"$log.out" 2>"$log"
}
# seconds between the first log line matching A and the first after it matching B
span() {
    "$python3" - "$1" "$2" "$3" <<'PY'
import re, sys, datetime
log, a, b = sys.argv[1:]
t = lambda l: datetime.datetime.strptime(l[:23], "%Y-%m-%dT%H:%M:%S.%f")
ta = None
for line in open(log):
    if ta is None and re.search(a, line):
        ta = t(line)
    elif ta is not None and re.search(b, line):
        print("%.2f" % (t(line) - ta).total_seconds()); break
PY
}
count() {
    "$python3" - "$NEM_TEST_PORT" "$1" <<'PY'
import hashlib, sys, pymongo
from bson import ObjectId
db = pymongo.MongoClient("127.0.0.1", int(sys.argv[1])).bench
run = sys.argv[2]
# the run's one script's provenance stamp, by its documented definition (src/provenance/provenance.h)
s = ObjectId(hashlib.sha256(b"nemesyst-stamp\0" + run.encode() + b"\0clean-0").digest()[:12])
f = {"_nemesyst.s": s} if run != "-" else {}
print(db.c.count_documents(f), len(db.c.distinct("i", f)))
PY
}
echo "FerretDB on 127.0.0.1:$NEM_TEST_PORT (sqlite), $(nproc) CPU(s), $docs documents"
run "$tmp/ok" base || { cat "$tmp/ok"; exit 1; }
ingest=$(span "$tmp/ok" "started \(executable" "done: $docs documents")
touch "$tmp/marker"
run "$tmp/fail" c
rollback=$(span "$tmp/fail" "marker .* present: failing" "error: clean script #0")
left=$(count "$(sed -n 's/^run \([^:]*\): .*/\1/p' "$tmp/fail.out")")
run "$tmp/keep" c --keep-partial
kept_run=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$tmp/keep.out")
rm -f "$tmp/marker"
run "$tmp/resume" c --resume "$kept_run" || { cat "$tmp/resume"; exit 1; }
purge=$(span "$tmp/resume" "info: run .*(resumed)" "started \(executable")
after=$(count "$kept_run")
printf '%-34s %10s %10s\n' "" "seconds" "x ingest"
printf '%-34s %10s %10s\n' "ingest of $docs (baseline)" "$ingest" "1.00"
printf '%-34s %10s %10s\n' "rollback of the failed script" "$rollback" "$(echo "scale=2; $rollback / $ingest" | bc)"
printf '%-34s %10s %10s\n' "resume: purge of the partial copy" "$purge" "$(echo "scale=2; $purge / $ingest" | bc)"
echo "left after rollback (documents, distinct): $left (want 0 0)"
echo "after resume (documents, distinct): $after (want $docs $docs)"
[ "$left" = "0 0" ] && [ "$after" = "$docs $docs" ]
