#!/bin/bash
# Lineage and retraining, read back from the database.
# 1. From a model's GridFS metadata, the lineage query (below) finds the run in nemesyst_runs, the data collection
#    and pipeline, and the consumed count and digest; rerunning that pipeline gives the same count, and a sha256
#    recomputed here over the documents' raw BSON in pipeline order equals the stored digest. For a C plugin learner
#    (batches through libnemesyst) and an original-style Python learner (cursor through the adapter, 2 epochs).
# 2. A second learn run with --dl-input-model-collection/--dl-input-model-pipeline gets the first model as
#    NEMESYST_INPUT_MODEL (its bytes start the new model's) and records it as metadata._nemesyst.parent.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
NEM_T_COUNT=9 stage_run 2 lineage --process-pool 2 \
    --data-clean --data-cleaner "$FIX/clean.sh" "$FIX/original/mnist_cleaner.py" --data-collection data mnist \
    --dl-learn --dl-learner "$PLUGIN" "$FIX/original/mnist_learner.py" --dl-learner-entry-point learn main \
    --dl-data-collection data mnist --dl-data-pipeline '[{"$match": {"i": {"$gte": 2}}}, {"$sort": {"i": -1}}]' \
    --dl-batch-size 3 3 --dl-epochs 1 2 --dl-output-model-collection models
expect_rc 0
first=$RUN
check lineage "$PLUGIN" <<'PY'
from bson import json_util
ms = models("models")
eq(len(ms), 2, "models")
by_pos = {m["metadata"]["_nemesyst"]["position"]: m for m in ms}
want = {0: ("data", [{"$match": {"i": {"$gte": 2}}}, {"$sort": {"i": -1}}], 7),
        1: ("mnist", [{"$match": {"img_num": {"$lt": 8}}}, {"$sort": {"img_num": 1}}], 8)}
for pos, (coll, pipeline, n) in want.items():
    # The lineage query: model -> run record, data collection + pipeline, consumed count + digest.
    meta = db["models.files"].find_one({"_id": by_pos[pos]["_id"]})["metadata"]["_nemesyst"]
    record = db.nemesyst_runs.find_one({"_id": meta["run"]})
    ok(record is not None, "model %d's run %s is in nemesyst_runs" % (pos, meta["run"]))
    eq(record["scripts"]["learn-%d" % pos]["status"], "succeeded", "the run record's entry for the learner")
    eq(record["scripts"]["learn-%d" % pos]["path"], meta["script"], "the run record names the model's learner")
    eq(meta["data_collection"], ["data", "mnist"][pos], "model %d's data collection" % pos)
    eq(json_util.loads(meta["data_pipeline"]), want[0][1], "model %d's --dl-data-pipeline" % pos)
    eq(len(meta["consumed"]), 1, "model %d's consumed records (epochs over the same data: one)" % pos)
    c = meta["consumed"][0]
    eq((c["collection"], json_util.loads(c["pipeline"]), c["count"], c["complete"]), (coll, pipeline, n, True),
       "model %d's consumed data" % pos)
    got_n, got_digest = digest_of(c["collection"], json_util.loads(c["pipeline"]))
    eq((got_n, got_digest), (n, c["digest"]), "count and digest recomputed over the raw BSON in pipeline order")
eq(by_pos[0]["metadata"]["seen"], 7, "documents the plugin learner saw")
eq(by_pos[1]["metadata"]["seen"], 16, "documents the Python learner saw over 2 epochs")
eq(by_pos[0]["metadata"]["_nemesyst"]["script"], argv[0], "model 0's learner")
PY
# Retrain from the plugin's model: a C plugin and an executable learner, both picking it by pipeline.
NEM_T_COUNT=9 stage_run 3 lineage \
    --dl-learn --dl-learner "$PLUGIN" "$FIX/learn_exec" --dl-learner-entry-point learn main \
    --dl-data-collection data --dl-data-pipeline '[{"$sort": {"i": 1}}]' --dl-batch-size 4 \
    --dl-input-model-collection models \
    --dl-input-model-pipeline '[{"$match": {"metadata.kind": "plugin"}}, {"$sort": {"uploadDate": -1}}]' \
    --dl-output-model-collection retrained
expect_rc 0
[ "$RUN" != "$first" ] || fail "the retraining run has the first run's id"
check lineage "$first" <<'PY'
import gridfs
first = argv[0]
parent = db["models.files"].find_one({"metadata.kind": "plugin"})
parent_bytes = gridfs.GridFS(db, collection="models").get(parent["_id"]).read()
eq(parent["metadata"]["_nemesyst"]["run"], first, "the parent's run")
ms = models("retrained")
eq(len(ms), 2, "retrained models")
for m in ms:
    p = m["metadata"]["_nemesyst"]
    eq((p["run"], p["parent"]), (RUN, {"bucket": "models", "id": parent["_id"]}),
       "retrained model %d's run and parent" % p["position"])
    data = gridfs.GridFS(db, collection="retrained").get(m["_id"]).read()
    ok(data.startswith(parent_bytes) and len(data) > len(parent_bytes),
       "model %d was trained from NEMESYST_INPUT_MODEL (%r starts with %r)" % (p["position"], data, parent_bytes))
eq(ms[0]["metadata"].get("retrained", True), True, "the plugin saw an input model")
PY
