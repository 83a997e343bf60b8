#!/bin/bash
# Slurm: a private single-node cluster (munged, slurmctld, slurmd) runs every script of slurm/ with sbatch --wait,
# through srun --mpi=pmix, and checks each job's exit status and what it stored, read back from the database. Each
# script's header gives one usage line, which runs here as written (in a directory of its own with a copy of the
# script, HOME private to the test, N_DB_PORT and N_DB_ENGINE=ferretdb in the environment, sbatch waiting):
#   nemesyst.sbatch           a cleaning stage on two tasks into the test's FerretDB (Slurm's MpiDefault, with
#                             NEMESYST_SRUN_MPI empty; CUDA_VISIBLE_DEVICES reaching the scripts); its usage line:
#                             init, start, clean, stop, the server's files on node-local storage (TMPDIR);
#   nemesyst-array.sbatch     its usage line: an array of 4 learners, each its own script by its index, connecting
#                             to a store started beforehand through its address file;
#   nemesyst-multinode.sbatch its usage line (on one node): init (the db path is new), start, clean, stop, the
#                             server bound to the first node's host name;
#   nemesyst-example.sbatch   its usage line: the Fashion-MNIST example, reduced (FASHION_MNIST_LIMIT);
#   nemesyst-long.sbatch      its usage line: init, start, a learner, stop;
#   nemesyst-long.sbatch      a training longer than its one-minute job (the C plugin's full-batch gradient
#                             descent on 300 documents, 2,000 steps with a checkpoint every 100): stopped by the
#                             warning signal, requeued, resumed by the requeued job; the weights bit-identical to an
#                             uninterrupted run's, each of the 2,000 steps' metric once with the uninterrupted value,
#                             the consumed count and sha256 the uninterrupted model's, and the model's lineage
#                             (nemesyst-registry lineage) showing the two attempts;
#   a job whose script fails exits non-zero;
#   a job that hits its time limit (Slurm's SIGTERM, then SIGKILL after KillWait) leaves a run record that says so,
#   and --resume then completes it with every document exactly once.
#   NEMESYST_SRUN_MPI names srun's MPI plugin: a bogus one fails the job.
# nemesyst-store.sbatch's usage line runs in tests/slurm/store.sh, with client jobs of the store. The cluster and the
# helpers are tests/slurm/cluster.sh's. Daemons are stopped by the PIDs recorded there, whatever happens.
. ./tests/env.sh
. "$top_srcdir/tests/fixtures/ferretdb.sh" # nem_ferretdb_bin
set -u
. "$top_srcdir/tests/slurm/cluster.sh"

cat > "$T/clean.sh" <<'EOS'
#!/bin/sh
for i in 1 2 3 4; do echo "{\"i\": $i, \"slurm_job\": \"$SLURM_JOB_ID\", \"cuda\": \"$CUDA_VISIBLE_DEVICES\"}"; done
EOS
printf '#!/bin/sh\necho "{\\"x\\": 1}"\nexit 1\n' >"$T/fails.sh"
# the time-limit job's cleaner: ten documents, then, while the marker is there, far longer than the limit
cat > "$T/slow.sh" <<EOS
#!/bin/sh
i=0
while [ \$i -lt 10 ]; do echo "{\\"i\\": \$i}"; i=\$((i + 1)); done
[ -e "$T/marker" ] && sleep 600
exit 0
EOS
chmod +x "$T"/*.sh
touch "$T/marker"
cd "$T"
srv=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT")
count() { # DB COLLECTION [FILTER-JSON]
    "$PYTHON3" -c "import json, pymongo, sys; c = pymongo.MongoClient('127.0.0.1', $NEM_TEST_PORT)[sys.argv[1]][sys.argv[2]]; \
print(c.count_documents(json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}))" "$@"
}
for f in "$top_srcdir"/slurm/*.sbatch; do
    [ "$(usage_of "$f" | grep -c '^sbatch ')" = 1 ] || fail "$(basename "$f"): its header has no one sbatch usage line"
done
# Long training through requeues, in the background too: a deterministic C plugin learner, full-batch gradient
# descent on the 300 documents of `points` read through a pipeline, 2,000 steps of 20 ms with a checkpoint every 100,
# in a job of one minute whose warning signal (sbatch --signal USR1@30) stops the run; with --requeue the learner
# checkpoints where it is, the job requeues itself, and the requeued job (SLURM_RESTART_COUNT 1) resumes the run by
# itself. Slurm makes a requeued job wait two minutes; while it waits the test gives it a longer limit (scontrol
# update), since what a learner's end costs on FerretDB (each of its 2,000 metrics gets its model's id, one SQLite
# update a document, each scanning the collection) can take longer than a minute on a loaded machine. One learner:
# that update holds the database's SQLite lock throughout, and a second learner's write meanwhile (its checkpoint)
# would fail with SQLITE_BUSY.
PLUGIN="$top_builddir/tests/runner/.libs/plugin_fixture.so"
export NEM_T_STEPS=2000 NEM_T_EVERY=100
learners=(--dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point gd --dl-data-collection points
          --dl-data-pipeline '[{"$sort": {"i": 1}}, {"$project": {"x": 1, "y": 1}}]' --dl-output-model-collection models)
# the same 300 documents, _ids included, in the requeued run's database and the reference's: the same bytes read
"$PYTHON3" - "$NEM_TEST_PORT" slurmrq slurmrq_ref <<'PY' || fail "the learners' data"
import sys, pymongo
client = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]))
for name in sys.argv[2:]:
    rows = []
    for i in range(300):
        x = [((i * 37 + j * 11) % 101) / 50.0 - 1.0 for j in range(3)]
        rows.append({"_id": i, "i": i, "x": x, "y": 1.5 * x[0] - 2.0 * x[1] + 0.5 * x[2] + 0.25 + ((i * 7) % 13 - 6) / 100.0})
    client[name].points.insert_many(rows)
PY
NEM_T_SLEEP_MS=20 NEMESYST="$NEMESYST" sbatch --parsable --oversubscribe --overcommit --time=1 --signal=USR1@30 \
    --ntasks=2 -o "$T/requeue.out" "$top_srcdir/slurm/nemesyst-long.sbatch" "${srv[@]}" \
    --db-name slurmrq --checkpoint-grace 10 "${learners[@]}" >"$T/requeue.id" 2>&1 ||
    fail "sbatch of the requeue job: $(cat "$T/requeue.id")"
rq_job=$(tail -n 1 "$T/requeue.id")
# while the requeued job waits its two minutes, a longer time limit for its second start (a watcher in the background,
# stopped with the daemons)
(
    for _ in $(seq 1 600); do
        info=$(scontrol show job "$rq_job" 2>/dev/null)
        if grep -q 'JobState=PENDING' <<<"$info" && grep -q 'Restarts=1' <<<"$info"; then
            scontrol update JobId="$rq_job" TimeLimit=10 && echo "requeued job $rq_job: its time limit now 10 minutes"
            exit 0
        fi
        grep -Eq 'JobState=(COMPLETED|FAILED|TIMEOUT|CANCELLED)' <<<"$info" && exit 0
        sleep 0.5
    done
) >"$T/extend.out" 2>&1 &
pids+=($!)

# The time-limit job first, in the background: Slurm ends it between one and two minutes from now.
NEMESYST="$NEMESYST" timeout -k 5 300 sbatch --wait --oversubscribe --overcommit --time=1 --ntasks=2 \
    -o "$T/timelimit.out" "$top_srcdir/slurm/nemesyst.sbatch" "${srv[@]}" --db-name slurmtl \
    --data-clean --data-cleaner "$T/slow.sh" --data-collection tl >"$T/timelimit.sbatch" 2>&1 &
tl_pid=$!

# srun's MPI plugin left to Slurm's MpiDefault (NEMESYST_SRUN_MPI empty); the scripts get the job's environment.
NEMESYST_SRUN_MPI= CUDA_VISIBLE_DEVICES=nemesyst-test-7 sbatch_wait one --ntasks=2 "$top_srcdir/slurm/nemesyst.sbatch" \
    "${srv[@]}" --db-name slurmtest --data-clean --data-cleaner "$T/clean.sh" "$T/clean.sh" --data-collection c
[ $RC -eq 0 ] || fail "sbatch --wait exited $RC"
n=$(count slurmtest c '{"slurm_job": {"$ne": ""}, "_nemesyst.s": {"$exists": true}}')
[ "$n" = 8 ] || fail "want 8 documents written inside the Slurm job, found $n"
n=$(count slurmtest c '{"cuda": "nemesyst-test-7"}')
[ "$n" = 8 ] || fail "CUDA_VISIBLE_DEVICES reached $n of the 8 documents' scripts"
grep -q "2 script(s), 0 failed" "$T/one.out" || fail "no summary in the job output"
NEMESYST_SRUN_MPI=nosuchmpi sbatch_wait badmpi --ntasks=1 "$top_srcdir/slurm/nemesyst.sbatch" --version
[ $RC -ne 0 ] && grep -qi nosuchmpi "$T/badmpi.out" || fail "NEMESYST_SRUN_MPI=nosuchmpi did not reach srun (exit $RC)"

# nemesyst.sbatch's usage line: a server of the job's own, its files on node-local storage (TMPDIR) by default.
printf 'def main(**kwargs):\n    for i in range(3):\n        yield {"i": i}\n' > "$T/clean.py"
mkdir -p "$T/u-one" && cp "$T/clean.py" "$T/u-one/"
run_usage nemesyst "$T/u-one" "$T/u-one.out"
[ $RC -eq 0 ] || fail "nemesyst.sbatch's usage line exited $RC"
grep -q "1 script(s), 0 failed" "$T/u-one.out" || fail "nemesyst.sbatch's usage line: no successful summary"
ls -d "$T"/tmp/nemesyst-db-[0-9]*/log >/dev/null 2>&1 || fail "nemesyst.sbatch: the server's files are not in TMPDIR"
[ ! -e "$T/home/db" ] || fail "nemesyst.sbatch: the server used the default ~/db, not node-local storage"

# nemesyst-array.sbatch's usage line: four learners, one script each by the task's index, connecting through the
# address file of a store started beforehand (outside Slurm here: any server the tasks reach will do).
sport=$(nem_random_port)
store=(--db-engine ferretdb --db-port "$sport" --db-path "$T/store" --db-log-path "$T/store/log"
       --db-user-name me --db-password-file "$T/home/.nemesyst-pw" --db-address-file "$T/home/store.addr")
NEMESYST_FERRETDB="$FERRETDB_BIN" "$NEMESYST" "${store[@]}" --db-init --db-start >"$T/store.out" 2>&1 ||
    { cat "$T/store.out"; fail "the array's store"; }
store_pid=$(head -n 1 "$T/store/nemesyst.pid")
pids+=("$store_pid") # stopped whatever happens
mkdir -p "$T/u-array"
for a in 0 1 2 3; do printf 'def main(**kwargs):\n    yield ({"learner": %d}, b"model %d")\n' $a $a >"$T/u-array/learn-$a.py"; done
NO_PORT=1 run_usage nemesyst-array "$T/u-array" "$T/u-array-%a.out"
[ $RC -eq 0 ] || fail "nemesyst-array.sbatch's usage line exited $RC"
"$PYTHON3" - "$sport" "$T/home/.nemesyst-pw" <<'PY' || fail "nemesyst-array.sbatch: want 4 models, one from each task's learner"
import sys, pymongo
pw = open(sys.argv[2]).read().rstrip("\n")
db = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), username="me", password=pw, authSource="nemesyst").nemesyst
got = sorted(f["metadata"].get("learner") for f in db["debug_models.files"].find())
assert got == [0, 1, 2, 3], got
print("array: the models of learners", got)
PY
NEMESYST_FERRETDB="$FERRETDB_BIN" "$NEMESYST" "${store[@]}" --db-stop >>"$T/store.out" 2>&1 || fail "the store's stop"
kept=()
for p in "${pids[@]}"; do [ "$p" = "$store_pid" ] || kept+=("$p"); done
pids=("${kept[@]}")

sbatch_wait fails --ntasks=2 "$top_srcdir/slurm/nemesyst.sbatch" "${srv[@]}" --db-name slurmfail \
    --data-clean --data-cleaner "$T/fails.sh" --data-collection f
[ $RC -ne 0 ] || fail "a job whose script failed exited 0"
[ "$(count slurmfail f)" = 0 ] || fail "the failed script's document was not rolled back"

# nemesyst-multinode.sbatch's usage line, on the one node there is: the first job inits its new db path.
mport=$(nem_random_port)
mkdir -p "$T/u-multinode" && cp "$T/clean.py" "$T/u-multinode/"
N_DB_PORT=$mport run_usage nemesyst-multinode "$T/u-multinode" "$T/multinode.out" --nodes=1
[ $RC -eq 0 ] || fail "the multinode script on one node exited $RC"
grep -q "listening on $host port $mport" "$T/multinode.out" || fail "the server did not listen on the node's name $host"
grep -q "1 script(s), 0 failed" "$T/multinode.out" || fail "multinode: no successful summary"
[ -d "$T/u-multinode/nemesyst-db" ] || fail "multinode: no database in the default ./nemesyst-db"

# nemesyst-long.sbatch's usage line: a learner that ends within the time limit, the server started and stopped.
mkdir -p "$T/u-long"
printf 'def main(**kwargs):\n    yield ({"long": 1}, b"weights")\n' >"$T/u-long/train.py"
run_usage nemesyst-long "$T/u-long" "$T/u-long.out"
[ $RC -eq 0 ] || fail "nemesyst-long.sbatch's usage line exited $RC"
grep -q "1 script(s), 0 failed" "$T/u-long.out" || fail "nemesyst-long.sbatch's usage line: no successful summary"
[ -d "$T/home/nemesyst-db" ] || fail "nemesyst-long.sbatch: no database in ~/nemesyst-db"

data=/usr/share/datasets/fashion-mnist
if [ -r "$data/train-images-idx3-ubyte.gz" ] && [ -f "$(dirname "$NEMESYST")/examples/plugins/.libs/fashion_mnist_learner.so" ]; then
    # its usage line, from the source tree
    FASHION_MNIST_LIMIT=300 PORT=$(nem_random_port) run_usage nemesyst-example "$top_srcdir" "$T/example.out" || true
    grep -Eq "[0-9]+ script\(s\), 0 failed" "$T/example.out" && grep -q "^unchanged" "$T/example.out" ||
        fail "the example job did not succeed, or its verify did not say unchanged"
    grep -Eq "accuracy" "$T/example.out" || fail "the example job logged no accuracy"
    work=$(sed -n 's|^example: summary in \(.*\)/summary.json.*|\1|p' "$T/example.out")
    case $work in */nemesyst-example.*) rm -rf "$work" ;; esac # the example keeps it for a user; not for a test
else
    echo "example job left out (no dataset or no C learner in this build)"
fi

wait "$tl_pid"
tl_rc=$?
cat "$T/timelimit.sbatch" "$T/timelimit.out" | tail -n 30
[ $tl_rc -ne 0 ] || fail "the job past its time limit exited 0"
grep -qi "time limit\|DUE TO TIME LIMIT" "$T/timelimit.out" || echo "(Slurm's own time-limit line not in the output)"
RUN=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$T/timelimit.out" | tail -n 1)
[ -n "$RUN" ] || RUN=$(grep -o 'info: run [^ ]*' "$T/timelimit.out" | head -n 1 | awk '{print $3}')
[ -n "$RUN" ] || fail "no run id in the time-limited job's output"
"$PYTHON3" - "$NEM_TEST_PORT" "$RUN" <<'PY' || fail "the time-limited run's record"
import sys, pymongo
run = pymongo.MongoClient("127.0.0.1", int(sys.argv[1])).slurmtl.nemesyst_runs.find_one({"_id": sys.argv[2]})
if not run or run.get("status") != "interrupted" or "Slurm job" not in (run.get("error") or ""):
    sys.exit("run record: %r" % ({k: run.get(k) for k in ("status", "error")} if run else None))
print("time-limited run recorded:", run["error"])
PY
rm -f "$T/marker"
"$NEMESYST" "${srv[@]}" --db-name slurmtl --data-clean --data-cleaner "$T/slow.sh" --data-collection tl \
    --resume "$RUN" >"$T/resume.out" 2>&1 || { cat "$T/resume.out"; fail "--resume $RUN"; }
n=$(count slurmtl tl) d=$("$PYTHON3" -c "import pymongo; print(len(pymongo.MongoClient('127.0.0.1', $NEM_TEST_PORT).slurmtl.tl.distinct('i')))")
[ "$n $d" = "10 10" ] || fail "after --resume: $n documents, $d distinct (want 10 10)"
# The requeued training: done by its second start, with the weights and the metric history of an uninterrupted run.
NEM_T_SLEEP_MS=0 "$NEMESYST" "${srv[@]}" --db-name slurmrq_ref "${learners[@]}" >"$T/rq_ref.out" 2>&1 ||
    { cat "$T/rq_ref.out"; fail "the uninterrupted reference training"; }
state=
for _ in $(seq 1 900); do # up to 15 minutes: a minute's job, Slurm's two-minute requeue delay, the rest
    state=$(scontrol show job "$rq_job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1)
    restarts=$(scontrol show job "$rq_job" 2>/dev/null | grep -o 'Restarts=[0-9]*' | head -n 1)
    case $state in *COMPLETED | *FAILED | *TIMEOUT | *CANCELLED | *NODE_FAIL | *OUT_OF_MEMORY) break ;; esac
    sleep 1
done
cat "$T/extend.out"
grep -v '^\s*$' "$T/requeue.out" | tail -n 40
[ "$state" = JobState=COMPLETED ] || fail "the requeued job ended $state ($restarts)"
[ "$restarts" = Restarts=1 ] || fail "the job was not requeued once: $restarts"
grep -q "asked to checkpoint and end" "$T/requeue.out" || fail "the learners were not asked to checkpoint"
grep -q "requeued: it resumes this run" "$T/requeue.out" || fail "the job did not requeue itself"
grep -q "Slurm job $rq_job, restart 1: resuming its run" "$T/requeue.out" || fail "the requeued job did not resume"
"$PYTHON3" - "$NEM_TEST_PORT" "$rq_job" "$T/models" <<'PY' || fail "the requeued training"
import sys, gridfs, pymongo
client = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]))
db, ref, job = client.slurmrq, client.slurmrq_ref, sys.argv[2]
runs = list(db.nemesyst_runs.find())
assert len(runs) == 1, "one run across both starts of the job, got %d" % len(runs)
run = runs[0]
attempts = [(a.get("job"), a.get("restart"), a.get("status")) for a in run["attempts"]]
assert run["status"] == "succeeded", run["status"]
assert attempts == [(job, None, "interrupted"), (job, 1, "succeeded")], attempts
ids = []
for pos, key in ((0, "learn-0"),):
    f = db["models.files"].find_one({"metadata._nemesyst.position": pos})
    g = ref["models.files"].find_one({"metadata._nemesyst.position": pos})
    ids.append(str(f["_id"]))
    got = gridfs.GridFS(db, collection="models").get(f["_id"]).read()
    want = gridfs.GridFS(ref, collection="models").get(g["_id"]).read()
    assert got == want, "%s: weights %s, uninterrupted %s" % (key, got.hex(), want.hex())
    assert 0 < f["metadata"]["started_at"] < 2000, "%s went on from step %r" % (key, f["metadata"]["started_at"])
    assert f["metadata"]["_nemesyst"]["attempt"] == 2, "%s: stored by attempt %r" % (key, f["metadata"]["_nemesyst"]["attempt"])
    hist = [(m["step"], m["value"]) for m in db.nemesyst_metrics.find({"run": run["_id"], "script": key}).sort("step", 1)]
    assert [s for s, _ in hist] == list(range(1, 2001)), "%s: metric steps %s ... (%d)" % (key, hist[:3], len(hist))
    theirs = [(m["step"], m["value"]) for m in ref.nemesyst_metrics.find({"script": key}).sort("step", 1)]
    assert hist == theirs, key + ": metric values differ from the uninterrupted run's"
    reads = lambda meta: [(c["collection"], c["count"], c["digest"], c.get("complete"), c.get("pipeline"))
                          for c in meta["_nemesyst"]["consumed"]]
    assert reads(f["metadata"]) == reads(g["metadata"]), "%s: consumed %r, uninterrupted %r" % (
        key, reads(f["metadata"]), reads(g["metadata"]))
    assert [r[:2] for r in reads(f["metadata"])] == [("points", 300)], reads(f["metadata"])
    print("%s: %d bytes bit-identical after a requeue, went on from step %d; 2000 metric steps once, as uninterrupted;"
          " consumed %s" % (key, len(got), f["metadata"]["started_at"],
                            ", ".join("%s %d sha256 %s" % r[:3] for r in reads(f["metadata"]))))
assert db["nemesyst_checkpoints.files"].count_documents({}) == 0, "checkpoints left after success"
open(sys.argv[3], "w").write(" ".join(ids))
PY
for model in $(cat "$T/models"); do
    "$top_builddir/nemesyst-registry" "${srv[@]}" --db-name slurmrq lineage "$model" >"$T/lineage.txt" 2>&1 ||
        { cat "$T/lineage.txt"; fail "nemesyst-registry lineage $model"; }
    grep "^attempts" "$T/lineage.txt"
    grep -q "^attempts     2: 1 (Slurm job $rq_job, interrupted), 2 (Slurm job $rq_job requeued, succeeded)$" \
        "$T/lineage.txt" || fail "model $model: its lineage does not show the job's two attempts: $(cat "$T/lineage.txt")"
done
echo "slurm: ok"
