#!/bin/bash
# Learner groups (--dl-data-parallel K) with real mpirun against the test server: a linear model trained by
# full-batch gradient descent gives the same weights at K = 1, 2 and 3, through nemesyst_allreduce (C plugin) and
# through torch.distributed's gloo (PyTorch); the members' shards are disjoint and together exactly the pipeline's
# result, as the lineage on member 0's model records; only member 0 stores the model; a member that crashes ends
# the whole group within seconds (exit 4, nothing kept) and --resume retrains it; a group that fits no round and a
# pipeline that sharding would change are refused before anything starts.
. tests/stage/lib.sh 2>/dev/null || . "$(dirname "$0")/../stage/lib.sh"
LIN="$top_builddir/tests/groups/.libs/linear_plugin.so"
TORCH="$top_srcdir/tests/groups/linear_torch.py"
[ -f "$LIN" ] || fail "$LIN not built (make check builds it)"
DB=groups_$$
PIPE='[{"$match": {"use": true}}, {"$project": {"x": 1, "y": 1}}]'

# 1000 documents, 900 of them used: y = 2 x0 - x1 + 0.5 x2 + 1 + noise
check "$DB" <<'PY'
import random
rnd = random.Random(7)
rows = []
for i in range(1000):
    x = [rnd.uniform(-1, 1) for _ in range(3)]
    rows.append({"x": x, "y": 2 * x[0] - x[1] + 0.5 * x[2] + 1 + rnd.gauss(0, 0.01), "use": i % 10 != 0})
db.points.insert_many(rows)
eq(count("points", {"use": True}), 900, "documents the pipeline selects")
PY

# learn NP K [ARGS...]: the linear learner (C plugin unless LEARNER is set) as a group of K on NP ranks
learn() {
    local np=$1 k=$2
    shift 2
    stage_run "$np" "$DB" --dl-learn --dl-learner "${LEARNER:-$LIN}" --dl-learner-entry-point "${ENTRY:-linear}" \
        --dl-data-collection points --dl-data-pipeline "$PIPE" --dl-epochs 40 --dl-data-parallel "$k" \
        --dl-output-model-collection "${BUCKET:-lin}" --summary-json "$T/summary.json" "$@"
}

# weights RUN KEY: the run's one stored model's weights, saved to $T/KEY.w
weights() {
    check "$DB" "$1" "$2" "$T" <<'PY'
import json
run_id, key, out = argv
ms = [m for b in ("lin", "lin_torch") for m in models(b, {"metadata._nemesyst.run": run_id})]
eq(len(ms), 1, "models stored by run %s (only member 0 stores)" % run_id)
w = ms[0]["metadata"]["w"]
ok(len(w) == 4 and abs(w[0] - 2) < 0.3, "weights near the truth: %r" % w)
json.dump(w, open("%s/%s.w" % (out, key), "w"))
PY
}

# same KEY1 KEY2: the weights agree to 1e-5 relative
same() {
    check "$DB" "$T" "$1" "$2" <<'PY'
import json
out, a, b = argv
wa, wb = (json.load(open("%s/%s.w" % (out, k))) for k in (a, b))
err = max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(wa, wb))
print("exactness %s vs %s: largest relative error %.3g" % (a, b, err))
ok(err <= 1e-5, "%s and %s weights agree to 1e-5 relative (%.3g)" % (a, b, err))
PY
}

echo "== C plugin through nemesyst_allreduce"
learn 0 1; expect_rc 0; weights "$RUN" c1
learn 3 2; expect_rc 0; weights "$RUN" c2; same c1 c2
learn 2 3 --process-pool 3; expect_rc 0; weights "$RUN" c3local; same c1 c3local
learn 3 3 --process-pool 2; expect_rc 0; weights "$RUN" c3; same c1 c3
C3=$RUN

echo "== lineage: the members' shards are disjoint and together exactly the pipeline's result"
check "$DB" "$PIPE" <<'PY'
import hashlib, json
from bson import json_util
pipe = json_util.loads(argv[0])
e = script("learn-0")
eq(e["status"], "succeeded", "the group's status")
g = e["group"]
eq(g["size"], 3, "group size in the run record")
eq(sorted(m["member"] for m in g["members"]), [0, 1, 2], "members recorded")
eq(len(set(m["rank"] for m in g["members"])), 2, "the group ran on both worker ranks")
m = models("lin", {"metadata._nemesyst.run": RUN})[0]
lin = m["metadata"]["_nemesyst"]["group"]
eq(lin["size"], 3, "group size on the model")
eq(lin["count"], 900, "the group's total on the model")
eq(sum(x["count"] for x in lin["members"]), 900, "members' counts add up")
ids = []
for x in lin["members"]:
    shard = json_util.loads(x["shard"])
    n, dig = digest_of("points", [{"$match": shard}] + pipe)
    eq(n, x["count"], "member %d: its recorded count is its shard's" % x["member"])
    eq(dig, x["digest"], "member %d: its recorded digest is its shard's" % x["member"])
    ids += [d["_id"] for d in db.points.aggregate([{"$match": shard}] + pipe)]
whole = [d["_id"] for d in db.points.aggregate(pipe)]
eq(len(ids), len(set(ids)), "no document in two shards")
ok(set(ids) == set(whole) and len(ids) == len(whole), "the shards together are the pipeline's result (%d)" % len(ids))
mine = m["metadata"]["_nemesyst"]["consumed"]
ok(len(mine) >= 1 and "$match" in mine[0]["pipeline"] and "_id" in mine[0]["pipeline"],
   "member 0's own consumed record names its shard's $match: %s" % mine[0]["pipeline"][:120])
PY

echo "== an executable member gets the group's environment"
stage_run 3 "$DB" --dl-learn --dl-learner "$top_srcdir/tests/groups/env_learner.sh" --dl-data-collection points \
    --dl-data-parallel 2 --dl-output-model-collection envs
expect_rc 0
check "$DB" <<'PY'
ms = models("envs", {"metadata._nemesyst.run": RUN})
eq(len(ms), 1, "one model: member 0's")
m = ms[0]["metadata"]
eq((m["rank"], m["world_size"], m["group_rank"], m["group_size"]), ("0", "2", "0", "2"), "RANK, WORLD_SIZE, group")
ok(m["master_addr"] == "127.0.0.1" and 0 < int(m["master_port"]) < 65536, "rendezvous on one host: %s:%s"
   % (m["master_addr"], m["master_port"]))
eq(m["local_rank"], "0", "LOCAL_RANK")
eq(m["shard_collection"], "points", "NEMESYST_SHARD_COLLECTION")
ok("_id" in m["shard"], "NEMESYST_SHARD is a filter on _id: %r" % m["shard"])
PY

echo "== the README's examples, alone and as groups of 2"
MEAN="$top_builddir/tests/groups/.libs/mean_group.so"
[ -f "$MEAN" ] || fail "$MEAN not built"
for k in 1 2; do
    PATH="$(dirname "$PYTHON3"):$PATH" stage_run 3 "$DB" --dl-learn --dl-learner "$MEAN" \
        "$top_srcdir/examples/groups/count_shard" --dl-data-collection points --dl-data-parallel $k \
        --dl-output-model-collection "readme_mean$k" "readme_count$k"
    expect_rc 0
done
check "$DB" <<'PY'
m1, m2 = (models("readme_mean%d" % k)[0]["metadata"] for k in (1, 2))
ys = [d["y"] for d in db.points.find()]
ok(abs(m1["mean"] - sum(ys) / len(ys)) < 1e-9, "the C example alone: the mean of y, %r" % m1["mean"])
eq(m2["members"], 2, "the C example ran as a group of 2")
ok(abs(m1["mean"] - m2["mean"]) <= 1e-12 * max(1, abs(m1["mean"])), "the C example's mean, alone and in a group: %r %r"
   % (m1["mean"], m2["mean"]))
c1, c2 = (models("readme_count%d" % k)[0]["metadata"] for k in (1, 2))
eq(c1["documents"], 1000, "the executable alone counts the whole collection")
ok(400 <= c2["documents"] <= 600, "member 0 of 2 counts its shard: %d" % c2["documents"])
eq(len(models("readme_count2")), 1, "one model of the executable group")
PY

if ! "$PYTHON3" -c 'import torch.distributed' 2>/dev/null; then
    echo "SKIP: $PYTHON3 cannot import torch (python3-torch): the PyTorch half of the learner-group tests"
    exit 77
fi
echo "== PyTorch through torch.distributed (gloo)"
LEARNER=$TORCH ENTRY=main BUCKET=lin_torch
export LEARNER ENTRY BUCKET
learn 0 1; expect_rc 0; weights "$RUN" t1
same c1 t1
learn 3 2; expect_rc 0; weights "$RUN" t2; same t1 t2
learn 2 3 --process-pool 3; expect_rc 0; weights "$RUN" t3; same t1 t3
LEARNER=$TORCH ENTRY=main BUCKET=lin_torch
check "$DB" <<'PY'
g = script("learn-0")["group"]
eq(g["count"], 900, "the PyTorch group's total")
eq(len(models("lin_torch", {"metadata._nemesyst.run": RUN})), 1, "one model stored, by member 0")
PY
for k in 1 2; do
    stage_run 3 "$DB" --dl-learn --dl-learner "$top_srcdir/examples/groups/linear_group.py" \
        --dl-data-collection points --dl-data-parallel $k --dl-output-model-collection "readme_linear$k"
    expect_rc 0
done
check "$DB" <<'PY'
w1, w2 = (models("readme_linear%d" % k)[0]["metadata"]["w"] for k in (1, 2))
ok(max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(w1, w2)) <= 1e-5, "the README's PyTorch example: %r %r" % (w1, w2))
PY
unset LEARNER ENTRY BUCKET

# fails_fast KIND: member 1 crashes at step 3 while the others wait for it in a collective; the whole group ends
# within seconds, exit 4, nothing of it kept; the run record names member 1 and why; --resume retrains the group.
fails_fast() {
    local kind=$1 t0 t1
    : >"$T/crash"
    t0=$(date +%s)
    NEM_T_CRASH_MEMBER=1 NEM_T_CRASH_FILE="$T/crash" learn 3 3 --process-pool 2 --dl-epochs 400
    t1=$(date +%s)
    expect_rc 4
    [ $((t1 - t0)) -le 30 ] || fail "$kind: the failed group took $((t1 - t0)) s to end"
    echo "ok: $kind: the group with a crashed member ended in $((t1 - t0)) s"
    FAILED=$RUN
    check "$DB" "$kind" <<'PY'
e = script("learn-0")
eq(e["status"], "failed", "the group's status")
st = {m["member"]: m for m in e["group"]["members"]}
eq(sorted(st), [0, 1, 2], "every member reported")
# member 1's entry says why; under gloo a peer may see the closed connection and fail first, and member 1 may then
# be stopped for it before its own end is read (the log keeps its traceback)
ok("crash" in st[1]["error"] or "SIGABRT" in st[1]["error"] or (argv[0] != "C plugin" and "stopped" in st[1]["error"]),
   "member 1's own entry says why: %s" % st[1]["error"])
if argv[0] == "C plugin":
    ok("member 1" in e["error"] and "SIGABRT" in e["error"], "the error names the member that failed: %s" % e["error"])
else:
    # gloo may abort a peer of the dead member before the dead member's own process has exited: the group's error
    # names the first failure its ranks saw, and member 1's entry keeps its own
    ok("member 1" in e["error"] or "signal" in e["error"] or "gloo" in e["error"] or "Connection closed" in e["error"],
       "the error names member 1 or a peer that gloo ended for it: %s" % e["error"])
ok(all(m["status"] == "failed" for m in st.values()), "every member failed with the group")
if argv[0] == "C plugin":  # (gloo may see the dead peer first and fail a member on its own)
    ok(all("stopped" in st[m]["error"] for m in (0, 2)), "the others were stopped: %r" % [st[m]["error"] for m in (0, 2)])
eq(len([m for b in ("lin", "lin_torch") for m in models(b, {"metadata._nemesyst.run": RUN})]), 0, "no model kept")
eq(count("nemesyst_metrics", {"run": RUN}), 0, "no metric kept")
PY
    rm -f "$T/crash"
    stage_run 3 "$DB" --resume "$FAILED" --dl-learn --dl-learner "${LEARNER:-$LIN}" \
        --dl-learner-entry-point "${ENTRY:-linear}" --dl-data-collection points --dl-data-pipeline "$PIPE" \
        --dl-epochs 400 --dl-data-parallel 3 --process-pool 2 --dl-output-model-collection "${BUCKET:-lin}"
    expect_rc 0
    RUN=$FAILED
    check "$DB" <<'PY'
e = script("learn-0")
eq(e["status"], "succeeded", "the resumed group's status")
eq(e["group"]["count"], 900, "the resumed group's total")
eq(len([m for b in ("lin", "lin_torch") for m in models(b, {"metadata._nemesyst.run": RUN})]), 1,
   "one model, stored once, after the resume")
PY
}

echo "== a member that crashes ends its group"
fails_fast "C plugin"
LEARNER=$TORCH ENTRY=main BUCKET=lin_torch fails_fast "PyTorch"

echo "== a member busy outside any collective is stopped when another fails (rank 0 tells its rank)"
t0=$(date +%s)
NEM_T_HANG_MEMBER=0 NEM_T_FAIL_MEMBER=1 LEARNER=$TORCH ENTRY=main BUCKET=lin_torch learn 3 2
t1=$(date +%s)
expect_rc 4
[ $((t1 - t0)) -le 30 ] || fail "the sleeping member was not stopped: the run took $((t1 - t0)) s"
echo "ok: the sleeping member was stopped; the run ended in $((t1 - t0)) s"
check "$DB" <<'PY'
st = {m["member"]: m for m in script("learn-0")["group"]["members"]}
ok("fails at once" in script("learn-0")["error"], "the cause is member 1's: %s" % script("learn-0")["error"])
ok("stopped" in st[0]["error"] and "member 1" in st[0]["error"], "member 0 was stopped for member 1: %s" % st[0]["error"])
PY

echo "== refused before anything starts"
expect_fail 2 "needs 3 worker slots in one round, and there are 2" \
    "$MPIRUN" --oversubscribe -n 3 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$DB" \
    --dl-learn --dl-learner "$LIN" --dl-data-parallel 3
expect_fail 2 'stage 2 \(\$group\) works across documents' \
    "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$DB" --process-pool 2 \
    --dl-learn --dl-learner "$LIN" --dl-data-parallel 2 --dl-data-pipeline '[{"$match": {}}, {"$group": {"_id": 1}}]'
expect_fail 2 'stage 1 \(\$limit\)' \
    "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$DB" --process-pool 2 \
    --dl-learn --dl-learner "$LIN" --dl-data-parallel 2 --dl-data-pipeline '{"$limit": 5}'
check "$DB" <<'PY'
db.mixed.insert_many([{"_id": i, "x": [1.0, 2.0, 3.0], "y": 1.0} for i in range(5)] +
                     [{"_id": "s%d" % i, "x": [1.0, 2.0, 3.0], "y": 1.0} for i in range(5)])
PY
stage_run 3 "$DB" --dl-learn --dl-learner "$LIN" --dl-learner-entry-point linear --dl-data-collection mixed \
    --dl-data-parallel 2 --dl-output-model-collection mixed_models
expect_rc 4
check "$DB" <<'PY'
e = script("learn-0")
ok("not all of one type" in e["error"] and "mixed" in e["error"], "mixed _id types are refused: %s" % e["error"])
eq(len(models("mixed_models")), 0, "nothing stored")
PY
check "$DB" <<'PY'
eq(count("nemesyst_runs", {"status": "running"}), 0, "no run left running")
PY
echo "== nemesyst-registry verify re-reads every member's shard"
REGISTRY="$top_builddir/nemesyst-registry"
M3=$(check "$DB" "$C3" <<'PY' | tail -n 1
print(models("lin", {"metadata._nemesyst.run": argv[0]})[0]["_id"])
PY
)
reg() { "$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$DB" "$@" >"$T/reg.out" 2>"$T/reg.err"; }
reg verify "$M3"; rc=$?
cat "$T/reg.out"
[ $rc -eq 0 ] && [ "$(tail -n 1 "$T/reg.out")" = "unchanged" ] || fail "verify of the group's model: exit $rc"
[ "$(grep -c 'group member' "$T/reg.out")" -eq 2 ] || fail "verify did not re-read members 1 and 2"
check "$DB" "$C3" <<'PY'
from bson import json_util
m = models("lin", {"metadata._nemesyst.run": argv[0]})[0]
shard = json_util.loads(m["metadata"]["_nemesyst"]["group"]["members"][2]["shard"])
d = db.points.find_one({"$and": [shard, {"use": True}]})
db.points.update_one({"_id": d["_id"]}, {"$set": {"y": d["y"] + 1}})
print("changed one document of member 2's shard")
PY
reg verify "$M3"; rc=$?
cat "$T/reg.out"
[ $rc -eq 1 ] || fail "verify after a change in member 2's shard: exit $rc, want 1"
grep -q "group member 2.*changed\|group member 2.*digest" "$T/reg.out" || grep -q "group member 2" "$T/reg.out" ||
    fail "verify does not say which member's data changed"
reg lineage "$M3" || fail "lineage of the group's model"
cat "$T/reg.out"
grep -Eq '^group +3 members, 900 documents in all' "$T/reg.out" || fail "lineage does not show the group"
[ "$(grep -Ec '^member [0-2] +rank [12] on ' "$T/reg.out")" -eq 3 ] || fail "lineage does not list the 3 members"
[ "$(grep -c '^             shard {' "$T/reg.out")" -eq 3 ] || fail "lineage does not show each member's shard"
echo "PASS: learner groups"
