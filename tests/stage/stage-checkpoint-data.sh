#!/bin/bash
# Checkpoints of learners that read data (issue 19's proof: "its consumed-data count and digest are those of the whole
# training, equal to an uninterrupted run's"). Two deterministic learners, a C plugin (the fixture's "gd") and a
# Python script in 2.0.6's form (fixtures/checkpoint/gd_learner.py), each full-batch gradient descent for 400 steps
# with a checkpoint every 50, on every document of a collection read through a pipeline ($sort by i, $project):
#   - uninterrupted, and stopped at step 230 in its first attempt then resumed (--resume) from its checkpoint at
#     step 200, both in the same database on the same data;
#   - the resumed model's weights are bit-identical to the uninterrupted one's; its metric history has each of the
#     400 steps exactly once with the uninterrupted run's value; the run has two attempts, and its lineage
#     (nemesyst-registry lineage) says so;
#   - its consumed records (collection, pipeline, count, sha256, complete) are exactly the uninterrupted model's: the
#     whole data, 300 documents, and nemesyst-registry verify says unchanged for both.
# (The issue's 2,000 steps with a checkpoint every 100 are tests/slurm/slurm.sh's: here each metric's model reference,
# one FerretDB update a document when the model is stored, would cost minutes on a loaded machine.)
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
CK="$FIX/checkpoint"
REGISTRY="$top_builddir/nemesyst-registry"
DB=ck_data
export NEM_T_STEPS=400 NEM_T_EVERY=50
PIPE='[{"$sort": {"i": 1}}, {"$project": {"i": 1, "x": 1, "y": 1}}]'
learn() {
    stage_run 0 "$DB" --process-pool 2 --dl-learn --dl-learner "$PLUGIN" "$CK/gd_learner.py" \
        --dl-learner-entry-point gd main --dl-data-collection points --dl-data-pipeline "$PIPE" \
        --dl-output-model-collection models "$@"
}

# 300 points of y = 1.5 x0 - 2 x1 + 0.5 x2 + 0.25 plus a little fixed noise, inserted out of order
check "$DB" <<'PY'
rows = []
for i in range(300):
    x = [((i * 37 + j * 11) % 101) / 50.0 - 1.0 for j in range(3)]
    y = 1.5 * x[0] - 2.0 * x[1] + 0.5 * x[2] + 0.25 + ((i * 7) % 13 - 6) / 100.0
    rows.append({"i": i, "x": x, "y": y})
rows.sort(key=lambda r: (r["i"] * 53) % 300)
db.points.insert_many(rows)
eq(db.points.count_documents({}), 300, "the data")
PY

learn
expect_rc 0
REF=$RUN
NEM_T_DIE_AT=230 learn
[ "$RC" -eq 4 ] || fail "learners stopped at step 230: want exit 4, got $RC"
STOPPED=$RUN
RUN=$STOPPED check "$DB" <<'PY'
for k in ("learn-0", "learn-1"):
    steps = sorted(f["metadata"]["step"] for f in db["nemesyst_checkpoints.files"].find(
        {"metadata.run": run["_id"], "metadata.script": k, "metadata.pending": {"$ne": True}}))
    eq(steps, [150, 200], k + ": the 2 newest checkpoints kept")
eq(count("models.files", {"metadata._nemesyst.run": run["_id"]}), 0, "no model of the stopped learners")
PY
learn --resume "$STOPPED"
expect_rc 0

RUN=$STOPPED check "$DB" "$REF" <<'PY'
import gridfs
fs = gridfs.GridFS(db, collection="models")
ref = db.nemesyst_runs.find_one({"_id": argv[0]})
weights = {}
for k, pos in (("learn-0", 0), ("learn-1", 1)):
    def model_of(run_id):
        f = db["models.files"].find_one({"metadata._nemesyst.run": run_id, "metadata._nemesyst.position": pos})
        return fs.get(f["_id"]).read(), f["metadata"]
    got, meta = model_of(run["_id"])
    want, ref_meta = model_of(ref["_id"])
    eq(got.hex(), want.hex(), k + ": weights bit-identical to the uninterrupted run's")
    weights[k] = got
    eq((meta["started_at"], ref_meta["started_at"]), (200, 0), k + ": went on from step 200 (the reference from 0)")
    eq(meta["_nemesyst"]["attempt"], 2, k + ": stored by the second attempt")

    def consumed(m):
        return [{f: c.get(f) for f in ("collection", "pipeline", "count", "digest", "complete")}
                for c in m["_nemesyst"]["consumed"]]
    mine, theirs = consumed(meta), consumed(ref_meta)
    eq(mine, theirs, k + ": consumed records equal to the uninterrupted run's")
    eq([(c["collection"], c["count"], c["complete"]) for c in mine], [("points", 300, True)],
       k + ": the whole data, once")
    ok(len(mine[0]["digest"]) == 64, k + ": consumed sha256 " + mine[0]["digest"])
    print("%s: consumed %d documents, sha256 %s (uninterrupted: %d, %s)" % (
        k, mine[0]["count"], mine[0]["digest"], theirs[0]["count"], theirs[0]["digest"]))

    history = lambda run_id: [(m["step"], m["value"]) for m in db["nemesyst_metrics"].find(
        {"run": run_id, "script": k, "name": "loss"}).sort("step", 1)]
    mine, theirs = history(run["_id"]), history(ref["_id"])
    eq([s for s, _ in mine], list(range(1, 401)), k + ": every step 1..400 exactly once")
    eq(mine, theirs, k + ": every step's loss equal to the uninterrupted run's")
    print("%s: loss %.6g at step 1, %.6g at step 400" % (k, mine[0][1], mine[-1][1]))
eq([a["status"] for a in run["attempts"]], ["failed", "succeeded"], "two attempts")
eq(count("nemesyst_checkpoints.files", {"metadata.run": run["_id"]}), 0, "checkpoints removed with the models stored")
print("C and Python weights %s" % ("identical" if weights["learn-0"] == weights["learn-1"] else "differ"))
PY

# The lineage of each resumed model: two attempts; verify reads the data again: the same count and sha256.
model_of() { # RUN POSITION
    "$PYTHON3" -c 'import sys, pymongo; print(pymongo.MongoClient("127.0.0.1", int(sys.argv[1]))[sys.argv[2]]["models.files"].find_one({"metadata._nemesyst.run": sys.argv[3], "metadata._nemesyst.position": int(sys.argv[4])})["_id"])' \
        "$NEM_TEST_PORT" "$DB" "$1" "$2"
}
for pos in 0 1; do
    for r in "$REF" "$STOPPED"; do
        model=$(model_of "$r" "$pos")
        "$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$DB" verify "$model" >"$T/verify.txt" 2>&1 ||
            { cat "$T/verify.txt"; fail "verify of learn-$pos's model of run $r"; }
        grep -q "unchanged" "$T/verify.txt" || { cat "$T/verify.txt"; fail "verify of $model: not unchanged"; }
    done
    "$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$DB" lineage "$model" >"$T/lineage.txt" ||
        fail "registry lineage of $model"
    grep -E "^(attempts|consumed)" "$T/lineage.txt" | sed "s/^/learn-$pos: /"
    grep -q "^attempts     2: 1 (on .*, failed), 2 (on .*, succeeded)$" "$T/lineage.txt" ||
        fail "learn-$pos's lineage does not show its two attempts: $(cat "$T/lineage.txt")"
done
echo "stage-checkpoint-data: ok"
