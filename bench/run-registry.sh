#!/bin/bash
# A registry that scales with the store (issue 20): `affected` for one document, `verify --all`, `runs` and `models`
# (and `models --best`), each timed (wall) with its peak memory (its maximum resident set size, from GNU time) and
# the server's CPU time (FerretDB's user + system, /proc/PID/stat: what the store spent answering, apart from the
# load of a shared machine, which the wall time is not), on a store of N models and D documents, at
# each N given (100 and 1,000 by default) over the same D documents (10^6 by default).
# The store is made the real way first: one nemesyst run (a cleaner, a learner, a predictor: the shared test
# plugin) makes the collections, the indexes nemesyst makes where it writes and one model with its real lineage;
# then the bench adds, with pymongo, documents (insert_many, {i, g: i % MAX_N, x}) and models that copy that model's
# files document and run record, each in a run of its own (new _id, run id, stamps), model K reading its own slice
# of the documents ([{$match: {g: K}}]) and retrained from model K-1 unless K is a multiple of 10 (chains of 10), so
# that one document is read by one model and reaches the same few (up to 10) at every N: what `affected` reports is
# the same, and what grows is only what it must look through. The claim: the peak does not grow with N (ratio of
# the largest N to the smallest near 1), and neither does the time per model.
# --cursors C: the models read C distinct slices, not one each: the first chain (models 0 to 9, the one `affected`
# follows) its own, the others C - 10 shared ones (model K >= 10 reads slice 10 + (K - 10) % (C - 10)), as a sweep's
# models share their data; the documents are then in C slices. verify --all re-reads each distinct cursor once, and
# FerretDB's SQLite backend pushes no filter but one on _id down (an index on g is not used): each cursor re-read
# is a scan of every document there, where mongod reads the slice through the index. So the default (a slice per
# model) costs N scans of D documents on FerretDB; C bounds it (report the cursors with the times).
# Usage: bench/run-registry.sh BUILD_DIR [--models 100,1000] [--docs 1000000] [--reps 3] [--cursors C]
#        (PYTHON3 names python)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: run-registry.sh BUILD_DIR [--models N,...] [--docs D] [--reps R]}" && pwd) || exit 2
shift
models=100,1000
docs=1000000
reps=3
cursors=0
while [ $# -gt 0 ]; do
    case "$1" in
    --models) models=${2:?--models needs N,...}; shift 2 ;;
    --docs) docs=${2:?--docs needs a number}; shift 2 ;;
    --reps) reps=${2:?--reps needs a number}; shift 2 ;;
    --cursors) cursors=${2:?--cursors needs a number}; shift 2 ;;
    *) echo "run-registry.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
case "$models$docs$reps$cursors" in '' | *[!0-9,]*) echo "run-registry.sh: numbers wanted" >&2; exit 2 ;; esac
python3=${PYTHON3:-/usr/bin/python3}

. "$here/lib.sh"
bench_start registry

plugin="$build/tests/runner/.libs/plugin_fixture.so"
case $cursors in 0) ;; ?|10) echo "run-registry.sh: --cursors must be over 10 (the first chain's own ten)" >&2; exit 2 ;; esac
[ -f "$plugin" ] || { echo "run-registry.sh: $plugin not built (make check builds it)" >&2; exit 1; }
NEM_T_COUNT=200 "$build/nemesyst" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name reg \
    --data-clean --data-cleaner "$plugin" --data-cleaner-entry-point clean --data-collection data \
    --dl-learn --dl-learner "$plugin" --dl-learner-entry-point learn --dl-data-collection data \
    --dl-data-pipeline '[{"$match": {"g": 0}}]' --dl-batch-size 50 --dl-output-model-collection models \
    --i-predict --i-predictor "$plugin" --i-predictor-entry-point predict --i-output-prediction-collection preds \
    >"$tmp/seed.out" 2>"$tmp/seed.err" || { cat "$tmp/seed.out" "$tmp/seed.err" >&2; exit 1; }

"$python3" - "$models" "$docs" "$reps" "$build/nemesyst-registry" "$NEM_TEST_PORT" "$cursors" "$NEM_TEST_FERRETDB_PID" <<'PY'
import copy, datetime, os, resource, subprocess, sys, time
from bson import ObjectId
import hashlib, pymongo, gridfs
sizes, ndocs, reps, reg, port, cursors, server_pid = sys.argv[1:8]
sizes = sorted(int(s) for s in sizes.split(",") if s)
ndocs, reps, cursors = int(ndocs), int(reps), int(cursors)
db = pymongo.MongoClient("127.0.0.1", int(port))["reg"]
GROUPS = cursors or max(sizes)

def slice_of(k):
    """the slice model k reads: its own, or with --cursors one of C - 10 shared ones past the first chain's"""
    return k if not cursors or k < 10 else 10 + (k - 10) % (cursors - 10)

def stamp(run_id, key):
    return ObjectId(hashlib.sha256(b"nemesyst-stamp\0" + run_id.encode() + b"\0" + key.encode()).digest()[:12])

seed_run = db.nemesyst_runs.find_one()
seed_file = db["models.files"].find_one()
seed_chunks = list(db["models.chunks"].find({"files_id": seed_file["_id"]}))
clean_s = seed_run["scripts"]["clean-0"]["stamp"]

t0 = time.time()
batch, have = [], db.data.count_documents({})
for i in range(have, ndocs):
    batch.append({"i": i, "g": i % GROUPS, "x": float(i), "_nemesyst": {"s": clean_s}})
    if len(batch) == 10000:
        db.data.insert_many(batch, ordered=False)
        batch = []
if batch:
    db.data.insert_many(batch, ordered=False)
sys.stderr.write("documents: %d in %.1fs\n" % (db.data.count_documents({}), time.time() - t0))
# the learners' pipelines select by g: an index on it is the user's, as it would be for such a pipeline (verify
# re-reads each model's slice through it; without one every slice is a scan of every document)
db.data.create_index([("g", 1)])

made, prev = 1, seed_file["_id"]
start = seed_run["started"]
def add_models(upto):
    global made, prev
    runs, files, chunks = [], [], []
    while made < upto:
        k = made
        started = start + datetime.timedelta(seconds=made)
        run_id = started.strftime("%Y%m%dT%H%M%SZ") + "-%08x" % made
        run = copy.deepcopy(seed_run)
        run["_id"], run["started"], run["name"] = run_id, started, "bench-%d" % made
        for key, e in run["scripts"].items():
            e["stamp"] = stamp(run_id, key)
        if "stamps" in run:  # the indexed list of the record's stamps (runrec.h): its own, not the seed's
            run["stamps"] = [e["stamp"] for e in run["scripts"].values() if "stamp" in e]
        runs.append(run)
        f = copy.deepcopy(seed_file)
        f["_id"] = ObjectId()
        f["filename"] = "%s-learn-0-0" % run_id
        f["uploadDate"] = started
        n = f["metadata"]["_nemesyst"]
        n["run"] = run_id
        n["parent"] = {"id": prev, "bucket": "models"} if made % 10 else None
        for c in n["consumed"]:
            c["pipeline"] = '[{"$match": {"g": %d}}]' % slice_of(k)
        files.append(f)
        for c in seed_chunks:
            c = dict(c)
            c["_id"], c["files_id"] = ObjectId(), f["_id"]
            chunks.append(c)
        prev = f["_id"]
        made += 1
    if runs:
        db.nemesyst_runs.insert_many(runs)
        db["models.chunks"].insert_many(chunks)
        db["models.files"].insert_many(files)

TIME, peak_file = "/usr/bin/time", os.path.abspath("peak.kib")
if not os.access(TIME, os.X_OK):
    sys.exit("run-registry.sh: %s (GNU time) is needed to measure peak memory" % TIME)

def server_cpu():
    """the server's user + system CPU seconds so far (fields 14 and 15 of /proc/PID/stat, in clock ticks)"""
    with open("/proc/%s/stat" % server_pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def measure(args):
    """wall seconds, peak RSS (MiB) and server CPU seconds of one registry call: the best wall, the largest peak
    and the least server CPU of reps."""
    walls, peaks, cpus = [], [], []
    for _ in range(reps):
        c0 = server_cpu()
        t = time.time()
        pid = os.fork()
        if pid == 0:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1); os.dup2(fd, 2)
            # not the child's own ru_maxrss: a child forked from this process counts this process's pages in its
            # peak until it execs; GNU time forks from itself, small, and reports its child's (KiB)
            os.execv(TIME, [TIME, "-f", "%M", "-o", peak_file, reg, "--db-ip", "127.0.0.1", "--db-port", port,
                            "--db-name", "reg"] + args)
        _, status, ru = os.wait4(pid, 0)
        walls.append(time.time() - t)
        cpus.append(server_cpu() - c0)
        peaks.append(int(open(peak_file).read().split()[-1]) / 1024.0)
        rc = os.waitstatus_to_exitcode(status)
        if rc not in (0, 1, 5):
            sys.exit("registry %s: exit %d" % (" ".join(args), rc))
        sys.stderr.write("  %s: %.2fs, %.1f MiB, server %.2fs CPU\n" % (" ".join(args), walls[-1], peaks[-1], cpus[-1]))
    return min(walls), max(peaks), min(cpus)

one = str(db.data.find_one({"g": 3})["_id"])  # read by model 3 only: 3 to 9 affected
verbs = [("affected --id (1 doc)", ["affected", "--collection", "data", "--id", one]),
         ("verify --all", ["verify", "--all"]),
         ("runs", ["runs"]),
         ("runs --json", ["--json", "runs"]),
         ("models", ["models"]),
         ("models --json", ["--json", "models"]),
         ("models --best", ["models", "--best", "seen", "--max"])]
res = {}
for n in sizes:
    add_models(n)
    sys.stderr.write("models: %d\n" % db["models.files"].count_documents({}))
    for name, args in verbs:
        res[(name, n)] = measure(args)

print("registry at scale: %d documents in %d slices, FerretDB; best wall of %d, largest peak RSS (GNU time %%M)"
      % (ndocs, GROUPS, reps))
print("distinct cursors (verify --all re-reads, affected re-runs): " +
      ", ".join("%d at %d models" % (len(set(slice_of(k) for k in range(n))), n) for n in sizes))
head = "%-22s" % "verb"
for n in sizes:
    head += " | %6d models: wall s, ms/model, peak MiB" % n
if len(sizes) > 1:
    head += " | peak %d/%d | ms/model %d/%d" % (sizes[-1], sizes[0], sizes[-1], sizes[0])
print(head)
for name, _ in verbs:
    line = "%-22s" % name
    for n in sizes:
        w, p, _ = res[(name, n)]
        line += " | %8.2f %10.2f %11.1f           " % (w, 1000 * w / n, p)
    if len(sizes) > 1:
        (w0, p0, _), (w1, p1, _) = res[(name, sizes[0])], res[(name, sizes[-1])]
        line += " | %6.2f     | %6.2f" % (p1 / p0, (w1 / sizes[-1]) / (w0 / sizes[0]))
    print(line)
print("the server's CPU time (FerretDB, user + system) for each verb, the least of %d:" % reps)
head = "%-22s" % "verb"
for n in sizes:
    head += " | %6d models: server CPU s, ms/model" % n
if len(sizes) > 1:
    head += " | ms/model %d/%d" % (sizes[-1], sizes[0])
print(head)
for name, _ in verbs:
    line = "%-22s" % name
    for n in sizes:
        c = res[(name, n)][2]
        line += " | %20.2f %9.2f" % (c, 1000 * c / n)
    if len(sizes) > 1:
        c0, c1 = res[(name, sizes[0])][2], res[(name, sizes[-1])][2]
        line += " | %6.2f" % ((c1 / sizes[-1]) / (c0 / sizes[0]) if c0 > 0 else float("nan"))
    print(line)
PY
