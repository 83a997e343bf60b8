#!/bin/bash
# Bundles at size (issue 21): `nemesyst-registry bundle RUN --with-data` and `import` of a run whose learner (a C
# plugin, bench/bundle/learner.c) consumed N documents (about 212 bytes each, written by the stage benchmark's C
# plugin cleaner) and stored a model of M MiB, against a baseline measured in the same run on the same private
# FerretDB: bench_bundle read (a find over the same documents into a BSON stream file, and the GridFS download of
# the model) for bundle, and bench_bundle write (insert_many of those documents, the GridFS upload of the model)
# for import. Each import goes into a fresh database of the same server (dropped, untimed, after it); which side
# goes first alternates between repetitions. Times are each process's wall seconds, start-up included; peak memory
# is each process's ru_maxrss (wait4). The ratio is the median over the repetitions of nemesyst/baseline, the two
# measured one right after the other. Every import is checked (the documents and the model's length on the target).
# Usage: bench/run-bundle.sh BUILD_DIR [--docs 1000000] [--model-mib 256] [--reps 3]   (PYTHON3 names python)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: run-bundle.sh BUILD_DIR [--docs N] [--model-mib M] [--reps R]}" && pwd) || exit 2
shift
docs=1000000 mib=256 reps=3
while [ $# -gt 0 ]; do
    case $1 in
    --docs) docs=${2:?--docs needs N} ;;
    --model-mib) mib=${2:?--model-mib needs M} ;;
    --reps) reps=${2:?--reps needs R} ;;
    *) echo "run-bundle.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift 2
done
for v in "$docs" "$mib" "$reps"; do
    case $v in '' | *[!0-9]*) echo "run-bundle.sh: --docs, --model-mib and --reps want numbers" >&2; exit 2 ;; esac
done
python3=${PYTHON3:-/usr/bin/python3}

. "$here/lib.sh"
bench_start bundle

"$python3" - "$build" "$NEM_TEST_PORT" "$tmp" "$docs" "$mib" "$reps" <<'PY'
import hashlib, os, re, statistics, subprocess, sys, time
import pymongo
build, port, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
docs, mib, reps = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
nem, reg, raw = build + "/nemesyst", build + "/nemesyst-registry", build + "/bench/bench_bundle"
cleaner = build + "/bench/stage/.libs/bench_plugin.so"
learner = build + "/bench/bundle/.libs/bench_bundle_learner.so"
conn = ["--db-ip", "127.0.0.1", "--db-port", port]
client = pymongo.MongoClient("127.0.0.1", int(port))

# run(cmd): runs it, its output into files; (wall seconds, peak RSS KiB from its rusage, stdout); exits on failure.
def run(cmd, env=None):
    t0 = time.perf_counter()
    o, e = open(os.path.join(tmp, "out"), "wb"), open(os.path.join(tmp, "err"), "wb")
    pid = os.posix_spawn(cmd[0], cmd, dict(os.environ, **(env or {})),
                         file_actions=[(os.POSIX_SPAWN_DUP2, o.fileno(), 1), (os.POSIX_SPAWN_DUP2, e.fileno(), 2)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    o.close(), e.close()
    out = open(os.path.join(tmp, "out")).read()
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        sys.exit("run-bundle.sh: %s exited %d: %s %s" % (" ".join(cmd), rc, out[-300:],
                 open(os.path.join(tmp, "err")).read()[-600:]))
    return wall, ru.ru_maxrss, out

# ---- the source store: N documents, a run whose learner consumed them all and stored an M MiB model ----
src = "bench_bundle"
w, _, _ = run([nem] + conn + ["--db-name", src, "--data-clean", "--data-collection", "docs", "--data-cleaner",
               cleaner, "--log-level", "warn"], {"BENCH_STAGE_DOCS": str(docs)})
print("set-up: %d documents cleaned in %.1f s" % (docs, w), file=sys.stderr)
w, _, out = run([nem] + conn + ["--db-name", src, "--dl-learn", "--dl-learner", learner, "--dl-learner-entry-point",
                 "learn", "--dl-data-collection", "docs", "--dl-batch-size", "1000", "--dl-output-model-collection",
                 "model", "--log-level", "warn"], {"BENCH_BUNDLE_MODEL_MIB": str(mib)})
m = re.search(r"^run ([^:\s]+):", out, re.M)
if not m:
    sys.exit("run-bundle.sh: no run id in the learner's summary: " + out[-400:])
run_id = m.group(1)
db = client[src]
assert db["docs"].estimated_document_count() == docs
(model,) = list(db["model.files"].find())
assert model["length"] == mib << 20, model["length"]
assert model["metadata"]["_nemesyst"]["consumed"][0]["count"] == docs, model["metadata"]["_nemesyst"]["consumed"]
print("set-up: run %s learnt from them and stored %d MiB in %.1f s" % (run_id, mib, w), file=sys.stderr)

bundle = os.path.join(tmp, "run.nemb")
rawdir = os.path.join(tmp, "raw")
os.makedirs(rawdir, exist_ok=True)
def do_bundle(r):
    return run([reg] + conn + ["--db-name", src, "bundle", run_id, "-o", bundle, "--with-data", "--force"])
def do_read(r):
    for f in os.listdir(rawdir):
        os.unlink(os.path.join(rawdir, f))
    return run([raw, "read", "--port", port, "--db", src, "--collection", "docs", "--bucket", "model", "--dir", rawdir])
def check(name):
    d = client[name]
    n = d["docs"].estimated_document_count()
    (f,) = list(d["model.files"].find())
    assert n == docs and f["length"] == mib << 20, (name, n, f["length"])
    client.drop_database(name)
def do_import(r):
    name = "bench_bundle_import_%d" % r
    res = run([reg] + conn + ["--db-name", name, "import", bundle])
    check(name)
    return res
def do_write(r):
    name = "bench_bundle_raw_%d" % r
    res = run([raw, "write", "--port", port, "--db", name, "--collection", "docs", "--bucket", "model", "--dir", rawdir])
    check(name)
    return res

res = {k: [] for k in ("bundle", "read", "import", "write")}
sha_s = []
for r in range(reps + 1):  # repetition 0 is the warm-up
    order = [("bundle", do_bundle), ("read", do_read)]
    if r % 2:
        order.reverse()
    for k, f in order:
        x = f(r)
        if r:
            res[k].append(x)
    if r:  # the cost of one more read of the file with its sha256: what import's check pass does
        t0 = time.perf_counter()
        h = hashlib.sha256()
        with open(bundle, "rb") as fh:
            for piece in iter(lambda: fh.read(1 << 20), b""):
                h.update(piece)
        sha_s.append(time.perf_counter() - t0)
    order = [("import", do_import), ("write", do_write)]
    if r % 2:
        order.reverse()
    for k, f in order:
        x = f(r)
        if r:
            res[k].append(x)
    print("repetition %d of %d done" % (r, reps), file=sys.stderr)

size = os.path.getsize(bundle)
raw_bytes = sum(os.path.getsize(os.path.join(rawdir, f)) for f in os.listdir(rawdir))
print("%d documents (%.0f MiB of BSON) consumed by one run, and its %d MiB model; the bundle --with-data is %.0f MiB."
      % (docs, os.path.getsize(os.path.join(rawdir, "docs.bson")) / 1048576.0, mib, size / 1048576.0))
print("Medians of %d repetitions after a warm-up; ratio = median over the repetitions of nemesyst/baseline, each"
      " pair measured one right after the other; peak = the largest ru_maxrss over the repetitions." % reps)
print()
print("| operation | median s | min-max s | baseline | baseline median s | ratio | peak MiB | baseline peak MiB |")
print("|---|---|---|---|---|---|---|---|")
for k, b, name, bname in (("bundle", "read", "`bundle RUN --with-data`", "find + GridFS download"),
                          ("import", "write", "`import` into a new database", "insert_many + GridFS upload")):
    t = [x[0] for x in res[k]]
    bt = [x[0] for x in res[b]]
    ratio = statistics.median(a / c for a, c in zip(t, bt))
    print("| %s | %.1f | %.1f-%.1f | %s | %.1f | %.2f | %.0f | %.0f |" % (
        name, statistics.median(t), min(t), max(t), bname, statistics.median(bt), ratio,
        max(x[1] for x in res[k]) / 1024.0, max(x[1] for x in res[b]) / 1024.0))
print()
print("For scale: the documents and the model together are %.0f MiB; the sha256 of the whole bundle file (what"
      " import's check pass adds: one more read of the file) took %.1f s (median)." % (raw_bytes / 1048576.0,
      statistics.median(sha_s)))
PY
