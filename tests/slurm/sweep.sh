#!/bin/bash
# Slurm: a sweep over a job array (slurm/nemesyst-sweep.sbatch), recorded as one, on a private single-node cluster
# (tests/slurm/cluster.sh).
#   1. A store job (slurm/nemesyst-store.sbatch's usage line as written) serves the store and writes ~/store.addr.
#   2. nemesyst-sweep.sbatch's usage line as written (submitted with --dependency=after:STOREJOB): an array of 4
#      learners (a 2.0.6-form Python learner whose metric, score, depends on the set's --dl-batch-size) that find the
#      store by its address file. The set of index 2 fails on its first attempt (a marker file): the task runs
#      again and resumes its own run (--sweep-resume), its index unchanged.
#   3. nemesyst-registry runs --sweep NAME: the 4 runs, one per index, all succeeded; index 2's is one run of two
#      attempts, whose record keeps sweep {name, index, overrides}.
#   4. models --best score --max --sweep NAME picks index 2's model; diff of two runs of the sweep shows their
#      sweep index and overrides.
#   5. scancel of the store job: it stops the server in order.
. ./tests/env.sh
. "$top_srcdir/tests/fixtures/ferretdb.sh" # nem_ferretdb_bin
set -u
SLURM_TEST_NAME=slurm-sweep
. "$top_srcdir/tests/slurm/cluster.sh"
cd "$T"
U="$T/u-store" S="$T/u-sweep"
mkdir -p "$U" "$S"
REGISTRY="$top_builddir/nemesyst-registry"
port=$(nem_random_port)
ADDR="$T/home/store.addr"
store_job() { timeout 5 squeue -h -n nemesyst-store -o %A 2>/dev/null | head -n 1; }

# 1. The store job.
N_DB_PORT=$port run_usage nemesyst-store "$U" "$T/store.out" &
usage_pid=$!
job=
for _ in $(seq 1 300); do job=$(store_job); [ -n "$job" ] && break; sleep 0.2; done
[ -n "$job" ] || { wait "$usage_pid"; fail "no store job in the queue"; }
echo "store job $job"

# 2. The sweep: 4 sets (a comment and a blank line between them), a learner whose score is best at batch size 48.
cat >"$S/sweep.jsonl" <<'EOF'
# batch sizes to try; score = -|batch size - 48|
{"dl-batch-size": 16}
{"dl-batch-size": 32, "dl-epochs": [2]}

{"dl-batch-size": 48, "run-name": "the-best"}
{"dl-batch-size": 64}
EOF
cat >"$S/learn.py" <<'EOF'
import os


def main(**kwargs):
    args = kwargs["args"]
    i = args["process"]
    bs = args["dl_batch_size"][i]
    marker = os.environ["SWEEP_TEST_MARKER"]
    if bs == 48 and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("batch size 48 fails on its first attempt")
    yield ({"score": float(-abs(bs - 48)), "batch_size": bs, "epochs": args["dl_epochs"][i]}, b"model %d" % bs)
EOF
export SWEEP_TEST_MARKER="$T/failed-once"
NO_PORT=1 run_usage nemesyst-sweep "$S" "$T/sweep-%a.out" --dependency="after:$job"
[ "$RC" -eq 0 ] || { cat "$T/store.out"; fail "the sweep's array exited $RC"; }
[ -e "$SWEEP_TEST_MARKER" ] || fail "index 2's learner never failed"
for a in 0 1 2 3; do
    grep -q "the server is at $(hostname -s) port $port" "$T/sweep-$a.out" ||
        fail "sweep task $a did not find the store by its address file"
    grep -q "1 script(s), 0 failed" "$T/sweep-$a.out" || fail "sweep task $a: no successful summary"
done
grep -q "running the task again (1 of 1)" "$T/sweep-2.out" || fail "task 2 was not run again after its failure"
grep -q "sweep sweep, index 2: resuming its unfinished run" "$T/sweep-2.out" ||
    fail "task 2's second run did not resume its first"
grep -q "running the task again" "$T/sweep-0.out" && fail "task 0 ran again though it succeeded"

# 3-4. The registry, on the store's address.
reg() {
    "$REGISTRY" --db-ip "$(hostname -s)" --db-port "$port" --db-user-name me \
        --db-password-file "$T/home/.nemesyst-pw" "$@"
}
reg runs --sweep sweep || fail "runs --sweep sweep"
reg --json runs --sweep sweep >"$T/runs.json" || fail "runs --sweep sweep --json"
reg --json runs --sweep nosuch >"$T/none.json" || fail "runs --sweep nosuch --json"
reg --json models --sweep sweep --best score --max >"$T/best.json" || fail "models --best score --max --sweep sweep"
reg models --sweep sweep --best score --max | tee "$T/best.txt"
grep -q "best by score (greatest): .* (sweep sweep, index 2)" "$T/best.txt" || fail "models --best: not index 2"
expect_fail 2 "no run of a sweep of that name" reg models --sweep nosuch
"$PYTHON3" - "$T/runs.json" "$T/none.json" "$T/best.json" "$ADDR" "$T/home/.nemesyst-pw" <<'PY' ||
import json, sys, pymongo
runs = json.load(open(sys.argv[1]))["runs"]
assert json.load(open(sys.argv[2]))["runs"] == [], "runs --sweep nosuch lists runs"
got = sorted((r["sweep"]["index"], r["status"], r["attempts"]) for r in runs)
assert got == [(0, "succeeded", 1), (1, "succeeded", 1), (2, "succeeded", 2), (3, "succeeded", 1)], got
assert all(r["sweep"]["name"] == "sweep" for r in runs), runs
best = json.load(open(sys.argv[3]))
m = best["models"]
assert len(m) == 1 and m[0]["sweep_index"] == 2 and m[0]["metrics"]["score"] == 0, best
a = json.load(open(sys.argv[4]))
pw = open(sys.argv[5]).read().rstrip("\n")
db = pymongo.MongoClient(a["host"], a["port"], username="me", password=pw, authSource="nemesyst",
                         serverSelectionTimeoutMS=10000).nemesyst
recs = {r["sweep"]["index"]: r for r in db.nemesyst_runs.find({"sweep.name": "sweep"})}
assert sorted(recs) == [0, 1, 2, 3], sorted(recs)
assert recs[2]["sweep"]["overrides"] == {"dl-batch-size": [48], "run-name": "the-best"}, recs[2]["sweep"]
assert recs[2]["name"] == "the-best" and recs[2].get("resumed"), recs[2]
assert recs[1]["sweep"]["overrides"] == {"dl-batch-size": [32], "dl-epochs": [2]}, recs[1]["sweep"]
assert recs[0]["options"]["dl-batch-size"] == [16] and recs[0]["options"]["sweep-index"] == 0, recs[0]["options"]
models = list(db["debug_models.files"].find({"metadata._nemesyst.run": recs[2]["_id"]}))
assert len(models) == 1 and models[0]["metadata"]["batch_size"] == 48, models
print("sweep: 4 runs, one per index; index 2 resumed in 2 attempts; best model of index 2")
with open(sys.argv[1] + ".ids", "w") as f:
    f.write("%s %s\n" % (recs[1]["_id"], recs[3]["_id"]))
PY
    fail "the sweep's runs, records or best model are wrong (above)"
read -r r1 r3 <"$T/runs.json.ids"
reg diff "$r1" "$r3" | tee "$T/diff.txt" || fail "diff of two runs of the sweep"
grep -Eq "^sweep\.index +1 +3" "$T/diff.txt" || fail "diff does not show the sweep index"
grep -q "sweep.overrides.dl-batch-size" "$T/diff.txt" || fail "diff does not show the sweep overrides"
grep -q "sweep.overrides.dl-epochs" "$T/diff.txt" || fail "diff does not show an override only one run has"

# 5. The store job ends: the server stops in order.
scancel "$job" || fail "scancel $job"
wait "$usage_pid"
cat "$T/store.out"
grep -q "the server stopped in order" "$T/store.out" || fail "the store job did not stop its server in order"
[ ! -e "$ADDR" ] || fail "the store job left its address file"
echo "slurm-sweep: ok"
