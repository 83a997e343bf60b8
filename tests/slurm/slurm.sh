#!/bin/bash
# Slurm: a private single-node cluster (munged, slurmctld, slurmd) runs every script of slurm/ with sbatch --wait,
# through srun --mpi=pmix, and checks each job's exit status and what it stored, read back from the database:
#   nemesyst.sbatch           a cleaning stage on two tasks into the test's FerretDB;
#   nemesyst-array.sbatch     an array of 2, each task picking its own cleaner and collection by its index;
#   nemesyst-multinode.sbatch init, start, clean, stop, the server bound to the first node's host name;
#   nemesyst-example.sbatch   the Fashion-MNIST example, reduced (FASHION_MNIST_LIMIT);
#   nemesyst-long.sbatch      a training longer than its one-minute job: stopped by the warning signal, requeued,
#                             resumed by the requeued job, bit-identical to an uninterrupted run;
#   a job whose script fails exits non-zero;
#   a job that hits its time limit (Slurm's SIGTERM, then SIGKILL after KillWait) leaves a run record that says so,
#   and --resume then completes it with every document exactly once.
# Daemons are stopped by the PIDs recorded here, whatever happens.
. ./tests/env.sh
set -u
for b in slurmctld slurmd sbatch munged; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || { echo "$b not installed"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-slurm.XXXXXX")
chmod 755 "$T"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT

# munge, with the key the package made; started here unless one already runs.
if [ ! -S /run/munge/munge.socket.2 ]; then
    [ -r /etc/munge/munge.key ] || { echo "no /etc/munge/munge.key"; exit 77; }
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- /usr/sbin/munged -F > "$T/munged.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
fi

host=$(hostname -s)
node=$(/usr/sbin/slurmd -C | head -n1)
ctl_port=$(nem_random_port); d_port=$(( ctl_port + 1 ))
mkdir -p "$T/state" "$T/spool" "$T/log"
cat > "$T/slurm.conf" <<EOC
ClusterName=nemesyst-test
SlurmctldHost=$host
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
MailProg=/bin/true
KillWait=5
OverTimeLimit=0
ReturnToService=2
EnforcePartLimits=ALL
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
$node State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=UNLIMITED State=UP OverSubscribe=YES
EOC
export SLURM_CONF="$T/slurm.conf"
/usr/sbin/slurmctld -D -f "$SLURM_CONF" > "$T/log/ctld.out" 2>&1 &
pids+=($!)
/usr/sbin/slurmd -D -f "$SLURM_CONF" > "$T/log/d.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do # up to a minute or more on a loaded machine
    timeout 2 sinfo -h -o %T 2>/dev/null | grep -q idle && break
    sleep 0.2
done
timeout 5 sinfo -h -o %T | grep -q idle || { tail "$T"/log/*; fail "the Slurm node never became idle"; }

cat > "$T/clean.sh" <<'EOS'
#!/bin/sh
for i in 1 2 3 4; do echo "{\"i\": $i, \"slurm_job\": \"$SLURM_JOB_ID\"}"; done
EOS
for a in 0 1; do printf '#!/bin/sh\necho "{\\"task\\": %s, \\"job\\": \\"$SLURM_ARRAY_JOB_ID\\"}"\n' "$a" >"$T/task-$a.sh"; done
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
# sbatch_wait NAME SBATCH-OPTIONS... -- SCRIPT ARGS...: sbatch --wait, its exit status in RC, the job's output in $T/NAME.out
sbatch_wait() {
    local name=$1
    shift
    NEMESYST="$NEMESYST" timeout -k 5 300 sbatch --wait --oversubscribe --overcommit -o "$T/$name.out" "$@" \
        >"$T/$name.sbatch" 2>&1
    RC=$?
    echo "== $name: sbatch exit $RC"
    cat "$T/$name.sbatch" "$T/$name.out" 2>/dev/null | tail -n 40
}
count() { # DB COLLECTION [FILTER-JSON]
    "$PYTHON3" -c "import json, pymongo, sys; c = pymongo.MongoClient('127.0.0.1', $NEM_TEST_PORT)[sys.argv[1]][sys.argv[2]]; \
print(c.count_documents(json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}))" "$@"
}

# Long training through requeues, in the background too: two learners (an executable and a C plugin) of 200 steps
# of 0.2 s, a checkpoint every 25, in a job of one minute whose warning signal (sbatch --signal USR1@30) stops the
# run; with --requeue the learners checkpoint where they are, the job requeues itself, and the requeued job
# (SLURM_RESTART_COUNT 1) resumes the run by itself. Slurm makes a requeued job wait two minutes.
CK="$top_srcdir/tests/stage/fixtures/checkpoint"
PLUGIN="$top_builddir/tests/runner/.libs/plugin_fixture.so"
export NEM_T_STEPS=200 NEM_T_EVERY=25
learners=(--process-pool 2 --dl-learn --dl-learner "$CK/ckpt_exec" "$PLUGIN" --dl-learner-entry-point main checkpoint
          --dl-output-model-collection models)
NEM_T_SLEEP_MS=200 NEMESYST="$NEMESYST" sbatch --parsable --oversubscribe --overcommit --time=1 --signal=USR1@30 \
    --ntasks=2 -o "$T/requeue.out" "$top_srcdir/slurm/nemesyst-long.sbatch" "${srv[@]}" \
    --db-name slurmrq --checkpoint-grace 10 "${learners[@]}" >"$T/requeue.id" 2>&1 ||
    fail "sbatch of the requeue job: $(cat "$T/requeue.id")"
rq_job=$(tail -n 1 "$T/requeue.id")

# The time-limit job first, in the background: Slurm ends it between one and two minutes from now.
NEMESYST="$NEMESYST" timeout -k 5 300 sbatch --wait --oversubscribe --overcommit --time=1 --ntasks=2 \
    -o "$T/timelimit.out" "$top_srcdir/slurm/nemesyst.sbatch" "${srv[@]}" --db-name slurmtl \
    --data-clean --data-cleaner "$T/slow.sh" --data-collection tl >"$T/timelimit.sbatch" 2>&1 &
tl_pid=$!

sbatch_wait one --ntasks=2 "$top_srcdir/slurm/nemesyst.sbatch" "${srv[@]}" --db-name slurmtest \
    --data-clean --data-cleaner "$T/clean.sh" "$T/clean.sh" --data-collection c
[ $RC -eq 0 ] || fail "sbatch --wait exited $RC"
n=$(count slurmtest c '{"slurm_job": {"$ne": ""}, "_nemesyst.s": {"$exists": true}}')
[ "$n" = 8 ] || fail "want 8 documents written inside the Slurm job, found $n"
grep -q "2 script(s), 0 failed" "$T/one.out" || fail "no summary in the job output"

sbatch_wait array --array=0-1 --ntasks=2 "$top_srcdir/slurm/nemesyst-array.sbatch" "${srv[@]}" --db-name slurmarr \
    --data-clean --data-cleaner "$T/task-%a.sh" --data-collection "arr%a"
[ $RC -eq 0 ] || fail "the array job exited $RC"
for a in 0 1; do
    n=$(count slurmarr "arr$a" "{\"task\": $a}")
    [ "$n" = 1 ] || fail "array task $a: want its one document in arr$a, found $n"
done

sbatch_wait fails --ntasks=2 "$top_srcdir/slurm/nemesyst.sbatch" "${srv[@]}" --db-name slurmfail \
    --data-clean --data-cleaner "$T/fails.sh" --data-collection f
[ $RC -ne 0 ] || fail "a job whose script failed exited 0"
[ "$(count slurmfail f)" = 0 ] || fail "the failed script's document was not rolled back"

printf 'pw-slurm\n' >"$T/pw" && chmod 600 "$T/pw"
mport=$(nem_random_port)
NEMESYST_DB_INIT=1 NEMESYST_DB_PATH="$T/mdb" sbatch_wait multinode --nodes=1 --ntasks=2 \
    "$top_srcdir/slurm/nemesyst-multinode.sbatch" --db-engine ferretdb --db-port "$mport" --db-name slurmmn \
    --db-user-name alice --db-password-file "$T/pw" --data-clean --data-cleaner "$T/clean.sh" --data-collection m
[ $RC -eq 0 ] || fail "the multinode script on one node exited $RC"
grep -q "listening on $host port $mport" "$T/multinode.out" || fail "the server did not listen on the node's name $host"
grep -q "1 script(s), 0 failed" "$T/multinode.out" || fail "multinode: no successful summary"

data=/usr/share/datasets/fashion-mnist
if [ -r "$data/train-images-idx3-ubyte.gz" ] && [ -f "$(dirname "$NEMESYST")/examples/plugins/.libs/fashion_mnist_learner.so" ]; then
    (cd "$top_srcdir" && FASHION_MNIST_LIMIT=300 PORT=$(nem_random_port) sbatch_wait example --ntasks=3 \
        "$top_srcdir/slurm/nemesyst-example.sbatch") || true
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
for _ in $(seq 1 600); do # up to 10 minutes: a minute's job, Slurm's two-minute requeue delay, the rest
    state=$(scontrol show job "$rq_job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1)
    restarts=$(scontrol show job "$rq_job" 2>/dev/null | grep -o 'Restarts=[0-9]*' | head -n 1)
    case $state in *COMPLETED | *FAILED | *TIMEOUT | *CANCELLED | *NODE_FAIL | *OUT_OF_MEMORY) break ;; esac
    sleep 1
done
grep -v '^\s*$' "$T/requeue.out" | tail -n 40
[ "$state" = JobState=COMPLETED ] || fail "the requeued job ended $state ($restarts)"
[ "$restarts" = Restarts=1 ] || fail "the job was not requeued once: $restarts"
grep -q "asked to checkpoint and end" "$T/requeue.out" || fail "the learners were not asked to checkpoint"
grep -q "requeued: it resumes this run" "$T/requeue.out" || fail "the job did not requeue itself"
grep -q "Slurm job $rq_job, restart 1: resuming its run" "$T/requeue.out" || fail "the requeued job did not resume"
"$PYTHON3" - "$NEM_TEST_PORT" "$rq_job" <<'PY' || fail "the requeued training"
import sys, gridfs, pymongo
client = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]))
db, ref, job = client.slurmrq, client.slurmrq_ref, sys.argv[2]
runs = list(db.nemesyst_runs.find())
assert len(runs) == 1, "one run across both starts of the job, got %d" % len(runs)
run = runs[0]
attempts = [(a.get("job"), a.get("restart"), a.get("status")) for a in run["attempts"]]
assert run["status"] == "succeeded", run["status"]
assert attempts == [(job, None, "interrupted"), (job, 1, "succeeded")], attempts
for pos, key in ((0, "learn-0"), (1, "learn-1")):
    f = db["models.files"].find_one({"metadata._nemesyst.position": pos})
    g = ref["models.files"].find_one({"metadata._nemesyst.position": pos})
    got = gridfs.GridFS(db, collection="models").get(f["_id"]).read()
    want = gridfs.GridFS(ref, collection="models").get(g["_id"]).read()
    assert got == want, "%s: weights %s, uninterrupted %s" % (key, got.hex(), want.hex())
    assert 0 < f["metadata"]["started_at"] < 200, "%s went on from step %r" % (key, f["metadata"]["started_at"])
    steps = [m["step"] for m in db.nemesyst_metrics.find({"run": run["_id"], "script": key}).sort("step", 1)]
    assert steps == list(range(1, 201)), "%s: metric steps %s" % (key, steps[:5])
    mine = [m["value"] for m in db.nemesyst_metrics.find({"run": run["_id"], "script": key}).sort("step", 1)]
    theirs = [m["value"] for m in ref.nemesyst_metrics.find({"script": key}).sort("step", 1)]
    assert mine == theirs, key + ": metric values differ from the uninterrupted run's"
    print("%s: bit-identical after a requeue, went on from step %d" % (key, f["metadata"]["started_at"]))
assert db["nemesyst_checkpoints.files"].count_documents({}) == 0, "checkpoints left after success"
PY
echo "slurm: ok"
