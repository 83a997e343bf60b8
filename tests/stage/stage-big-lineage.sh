#!/bin/bash
# Large lineage is stored once, by reference: a learner reading through a 3.5 MiB pipeline and yielding 9 MiB of its
# own metadata gets its model stored (the lineage would otherwise exceed 16 MiB after training): its data_pipeline
# and consumed pipeline are {"blob", "bytes"} references into nemesyst_blobs, whose text is the pipeline, and the
# script's own metadata is as it gave it.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
"$PYTHON3" - "$T/pipe.json" <<'PY'
import json, sys
json.dump([{"$match": {"pad": {"$ne": "x" * (3584 << 10)}}}], open(sys.argv[1], "w"))
PY
stage_run 0 biglin --data-clean --data-cleaner "$FIX/clean.sh" --data-collection src
expect_rc 0
NEM_T_PIPELINE="$T/pipe.json" stage_run 0 biglin --dl-learn --dl-learner "$FIX/big_lineage_learner.py" \
    --dl-data-collection src --dl-data-pipeline "$T/pipe.json" --dl-output-model-collection models
expect_rc 0
check biglin "$T/pipe.json" <<'PY'
import json
from bson import json_util
want = json.load(open(argv[0]))
m = db["models.files"].find_one()
ok(m is not None, "the model was stored")
eq((len(m["metadata"]["notes"]), m["metadata"]["seen"]), (9 << 20, 7), "the script's own metadata, as given")
p = m["metadata"]["_nemesyst"]
def text(ref):
    ok(isinstance(ref, dict) and set(ref) == {"blob", "bytes"}, "a reference, not %d bytes inline" % len(str(ref)))
    b = db.nemesyst_blobs.find_one({"_id": ref["blob"]})
    eq(len(b["text"]), ref["bytes"], "blob size")
    return b["text"]
ok(json_util.loads(text(p["data_pipeline"])) == want, "data_pipeline through its blob equals the pipeline")
ok(json_util.loads(text(p["consumed"][0]["pipeline"])) == want, "consumed pipeline through its blob equals the pipeline")
eq(db.nemesyst_blobs.count_documents({}), 1, "blobs: the same text stored once")
eq(p["consumed"][0]["count"], 7, "documents read")
PY
