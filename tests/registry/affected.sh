#!/bin/bash
# nemesyst-registry affected: from data to everything made from it, on a private FerretDB (tests/registry.mk).
# The world, made by real runs of nemesyst with the shared test plugin:
#   A  cleans 9 documents {i: 0..8} into `data`; learns m0 through [$match i >= 5] (4 documents: the leading $match
#      excludes the rest) and m1 through [$sort, $limit 6] (i 0..5: traced by _id); predicts 3 with m0 (preds)
#   B  retrains m0 (--dl-input-model-pipeline) into `retrained` through [$match i < 2]; predicts 3 with it (preds2)
# Then the documents as a filter, as ids (--id, --ids-file, with and without --collection) and as a run (--run,
# --script), each answer's table and --json checked against counts computed here with pymongo; a filter that hits
# nothing (exit 0); and after run C (m2 through [$project without _id]: exact, the documents go first; m3 through
# [$project without _id, $sort, $limit 3]: cannot be traced, exit 5 naming it; mb through a pipeline kept in
# nemesyst_blobs) and run D (a learner group of 2 over
# `data`: every member's shard counted) and run E (me, retrained from m3 on the predictions: as unknown as m3), the
# same filter again; bad arguments: exit 2 with one line.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
REG_DB=aff REG_HEAD=4000
. "$top_srcdir/tests/registry/lib.sh" # reg, want_rc, bad
# answer FILE WANT_MODELS WANT_PREDICTIONS WANT_UNVERIFIABLE: the --json report against what is expected, each as
# Python literals: models [(bucket, affected, documents, how)], predictions [(collection, bucket of the model, run
# key, script, count)], unverifiable [bucket]; the run keys A and B stand for the runs' ids.
answer() {
    check aff "$1" "$RUN_A" "$RUN_B" "$2" "$3" "$4" <<'PY'
import ast, json
rep = json.load(open(argv[0]))
runs = {"A": argv[1], "B": argv[2]}
by_id = {}
for b in ["m0", "m1", "m2", "m3", "mb", "me", "mg", "retrained"]:
    for m in db[b + ".files"].find():
        by_id[str(m["_id"])] = b
eq([(by_id[m["id"]], m["affected"], m["documents"], m["how"]) for m in rep["models"]], ast.literal_eval(argv[3]),
   "the affected models: (bucket, affected, documents, how)")
for m in rep["models"]:
    if "retrained" in m["how"]:
        eq(m["from"], m["parent"], "a retrained model comes from its parent")
eq([(p["collection"], by_id[p["model"]], {v: k for k, v in runs.items()}.get(p["run"]), p["script"], p["count"])
    for p in rep["predictions"]], ast.literal_eval(argv[4]), "the predictions made with them")
for p in rep["predictions"]:
    eq(p["count"], db[p["collection"]].count_documents({"_nemesyst.model": ObjectId(p["model"])}),
       "predictions in %s made with %s, counted here" % (p["collection"], p["model"]))
eq([by_id[m["id"]] for m in rep["unverifiable"]], ast.literal_eval(argv[5]), "the models that cannot be checked")
PY
}

NEM_T_COUNT=9 stage_run 0 aff --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point clean \
    --data-collection data --dl-learn --dl-learner "$PLUGIN" "$PLUGIN" --dl-learner-entry-point learn \
    --dl-data-collection data --dl-data-pipeline '[{"$match": {"i": {"$gte": 5}}}]' \
    '[{"$sort": {"i": 1}}, {"$limit": 6}]' --dl-batch-size 3 --dl-output-model-collection m0 m1 \
    --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict --i-output-prediction-collection preds
expect_rc 0
RUN_A=$RUN
stage_run 0 aff --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection data \
    --dl-data-pipeline '[{"$match": {"i": {"$lt": 2}}}]' --dl-batch-size 4 --dl-input-model-collection m0 \
    --dl-input-model-pipeline '[{"$sort": {"uploadDate": -1}}]' --dl-output-model-collection retrained \
    --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict --i-output-prediction-collection preds2
expect_rc 0
RUN_B=$RUN
check aff <<'PY'
from bson import json_util
m0, m1, r = (db[b + ".files"].find_one() for b in ("m0", "m1", "retrained"))
eq([c["count"] for c in m0["metadata"]["_nemesyst"]["consumed"]], [4], "m0 read 4 documents")
eq([c["count"] for c in m1["metadata"]["_nemesyst"]["consumed"]], [6], "m1 read 6 documents")
eq(r["metadata"]["_nemesyst"]["parent"]["id"], m0["_id"], "the retrained model's parent")
eq(count("preds", {"_nemesyst.model": m0["_id"]}), 3, "predictions made with m0")
eq(count("preds2", {"_nemesyst.model": r["_id"]}), 3, "predictions made with the retrained model")
PY
ID3=$(check aff <<'PY' | tail -n 1
print(db.data.find_one({"i": 3})["_id"])
PY
)
ID8=$(check aff <<'PY' | tail -n 1
print(db.data.find_one({"i": 8})["_id"])
PY
)

# ---- a filter that hits only documents m0's pipeline kept: m0, the model retrained from it, their predictions ----
reg affected --collection data --filter '{"i": {"$gte": 7}}' --json
want_rc 1
answer "$ROUT" '[("m0", 2, 4, ["data"]), ("retrained", 0, 2, ["retrained"])]' \
    '[("preds", "m0", "A", "predict-0", 3), ("preds2", "retrained", "B", "predict-0", 3)]' '[]'
check aff "$ROUT" <<'PY'
import json
rep = json.load(open(argv[0]))
eq(rep["documents"], {"collection": "data", "filter": {"i": {"$gte": 7}}, "count": 2}, "the documents")
eq(rep["verdict"], "affected", "the verdict")
d = rep["models"][0]["data"]
eq([(x["collection"], x["count"], x["affected"], x["method"]) for x in d], [("data", 4, 2, "documents first")],
   "m0's data, the documents put first")
eq(count("data", {"$and": [{"i": {"$gte": 5}}, {"i": {"$gte": 7}}]}), 2, "m0's affected documents, counted here")
PY
reg affected --collection data --filter '{"i": {"$gte": 7}}'
want_rc 1
M0=$(check aff <<'PY' | tail -n 1
print(db["m0.files"].find_one()["_id"])
PY
)
grep -Eq "^  $M0 +m0 +$RUN_A +learn-0 +2 of 4 +trained on them$" "$ROUT" || fail "the table's line for m0"
grep -Eq " retrained +$RUN_B +learn-0 +0 of 2 +retrained from $M0$" "$ROUT" || fail "the table's retrained line"
grep -Eq "^  preds2 +3 " "$ROUT" || fail "the table's predictions"
grep -q "^affected: 2 models (1 trained on the documents, 1 retrained from an affected one), 6 predictions in 2 collections$" \
    "$ROUT" || fail "the table's last line"
[ ! -s "$RERR" ] || fail "affected printed on stderr"

# ---- one that only m1's [$sort, $limit] kept: traced by _id, through the outputs' _ids ----
reg affected --collection data --filter '{"i": 3}' --json
want_rc 1
answer "$ROUT" '[("m1", 1, 6, ["data"])]' '[]' '[]'
check aff "$ROUT" <<'PY'
import json
eq(json.load(open(argv[0]))["models"][0]["data"][0]["method"], "traced by _id", "m1's method")
PY
# the same documents by id: in data, in any collection, from a file
reg affected --id "$ID3" --id "$ID8" --json
want_rc 1
answer "$ROUT" '[("m0", 1, 4, ["data"]), ("m1", 1, 6, ["data"]), ("retrained", 0, 2, ["retrained"])]' \
    '[("preds", "m0", "A", "predict-0", 3), ("preds2", "retrained", "B", "predict-0", 3)]' '[]'
check aff "$ROUT" <<'PY'
import json
eq(json.load(open(argv[0]))["documents"], {"collection": None, "ids": 2, "count": None}, "ids in any collection")
PY
printf '# two documents\n\n  %s  \n{"$oid": "%s"}\n' "$ID3" "$ID8" >"$T/ids"
reg affected --collection data --ids-file "$T/ids" --json
want_rc 1
answer "$ROUT" '[("m0", 1, 4, ["data"]), ("m1", 1, 6, ["data"]), ("retrained", 0, 2, ["retrained"])]' \
    '[("preds", "m0", "A", "predict-0", 3), ("preds2", "retrained", "B", "predict-0", 3)]' '[]'
check aff "$ROUT" <<'PY'
import json
eq(json.load(open(argv[0]))["documents"], {"collection": "data", "ids": 2, "count": 2}, "ids in data")
PY
reg affected --collection preds --id "$ID8"
want_rc 0

# ---- a filter that hits nothing ----
reg affected --collection data --filter '{"i": 100}'
want_rc 0
[ "$(tail -n 1 "$ROUT")" = "nothing affected: no model's training data includes the documents" ] ||
    fail "a filter that hits nothing: $(tail -n 1 "$ROUT")"
reg affected --collection data --filter '{"i": 100}' --json
want_rc 0
answer "$ROUT" '[]' '[]' '[]'

# ---- what a run wrote: the cleaner's documents reach every model; run B stored the retrained model ----
reg affected --run "$RUN_A" --script clean-0 --json
want_rc 1
answer "$ROUT" '[("m0", 4, 4, ["data"]), ("m1", 6, 6, ["data"]), ("retrained", 2, 2, ["data", "retrained"])]' \
    '[("preds", "m0", "A", "predict-0", 3), ("preds2", "retrained", "B", "predict-0", 3)]' '[]'
check aff "$ROUT" "$RUN_A" <<'PY'
import json
eq(json.load(open(argv[0]))["documents"], {"collection": None, "run": argv[1], "script": "clean-0",
                                           "count": count("data", of_run(argv[1], ["clean-0"]))}, "the run's documents")
PY
reg affected --run "$RUN_A" --script clean-0
want_rc 1
grep -q "^documents   what clean-0 of run $RUN_A wrote: 9 documents$" "$ROUT" || fail "the table's documents line"
reg affected --run "$RUN_B" --json
want_rc 1
answer "$ROUT" '[("retrained", 0, 2, ["stored"])]' '[("preds2", "retrained", "B", "predict-0", 3)]' '[]'

# ---- run C: m2 through [$project without _id] (exact), m3 through [$project without _id, $sort, $limit 3], mb
# through a pipeline over 16 KiB (i >= 6), which the lineage keeps in nemesyst_blobs ----
PAD=$(head -c 20000 /dev/zero | tr '\0' x)
stage_run 0 aff --dl-learn --dl-learner "$PLUGIN" "$PLUGIN" "$PLUGIN" --dl-learner-entry-point learn \
    --dl-data-collection data --dl-data-pipeline '[{"$project": {"_id": 0, "i": 1}}]' \
    '[{"$project": {"_id": 0, "i": 1}}, {"$sort": {"i": 1}}, {"$limit": 3}]' \
    "[{\"\$match\": {\"i\": {\"\$gte\": 6}, \"pad\": {\"\$ne\": \"$PAD\"}}}]" --dl-batch-size 4 \
    --dl-output-model-collection m2 m3 mb
expect_rc 0
check aff <<'PY'
c = db["mb.files"].find_one()["metadata"]["_nemesyst"]["consumed"][0]
eq((c["count"], sorted(c["pipeline"])), (3, ["blob", "bytes"]), "mb's pipeline, kept in nemesyst_blobs")
PY
# ---- run D: a learner group of 2 over data (i >= 1): each member's shard ----
stage_run 0 aff --process-pool 2 --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn \
    --dl-data-collection data --dl-data-pipeline '[{"$match": {"i": {"$gte": 1}}}]' --dl-data-parallel 2 \
    --dl-batch-size 2 --dl-output-model-collection mg
expect_rc 0
# ---- run E: a model retrained from m3, from the predictions: whether it is affected is as unknown as m3's ----
stage_run 0 aff --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection preds \
    --dl-data-pipeline '[{"$sort": {"k": 1}}]' --dl-batch-size 4 --dl-input-model-collection m3 \
    --dl-input-model-pipeline '[{"$sort": {"uploadDate": -1}}]' --dl-output-model-collection me
expect_rc 0
M3=$(check aff <<'PY' | tail -n 1
g = db["mg.files"].find_one()["metadata"]["_nemesyst"]["group"]
eq((g["size"], g["count"], len(g["members"])), (2, 8, 2), "the group's lineage")
print(db["m3.files"].find_one()["_id"])
PY
)
reg affected --collection data --filter '{"i": {"$gte": 7}}' --json
want_rc 5
answer "$ROUT" '[("m0", 2, 4, ["data"]), ("retrained", 0, 2, ["retrained"]), ("m2", 2, 9, ["data"]), ("mb", 2, 3, ["data"]),
                ("mg", 2, 8, ["data"])]' \
    '[("preds", "m0", "A", "predict-0", 3), ("preds2", "retrained", "B", "predict-0", 3)]' '["m3", "me"]'
check aff "$ROUT" <<'PY'
import json
from bson import json_util
rep = json.load(open(argv[0]))
eq(rep["verdict"], "unverifiable", "the verdict")
u = rep["unverifiable"][0]
ok(u["problem"].startswith("stage 0 $project changes or drops _id and stage 2 $limit selects across documents"),
   "m3's problem: %r" % u["problem"])
eq(rep["unverifiable"][1]["problem"], "retrained from %s, which cannot be checked" % u["id"], "its child's problem")
g = [m for m in rep["models"] if m["bucket"] == "mg"][0]
eq(sorted(d.get("member") for d in g["data"]), [0, 1], "both members' shards")
want = [db.data.count_documents({"$and": [{"i": {"$gte": 1}}, {"i": {"$gte": 7}}, json_util.loads(m["shard"])]})
        for m in db["mg.files"].find_one()["metadata"]["_nemesyst"]["group"]["members"]]
eq(sorted(d["affected"] for d in g["data"]), sorted(want), "each member's affected documents, counted here")
PY
[ "$(wc -l <"$RERR")" -eq 1 ] && grep -q "^nemesyst-registry: error: affected: 2 models cannot be checked: $M3 in m3 (stage 0 \$project changes or drops _id and stage 2 \$limit.*); [0-9a-f]* in me (retrained from $M3, which cannot be checked)$" "$RERR" ||
    fail "exit 5 does not name m3 in one line"
reg affected --collection data --filter '{"i": {"$gte": 7}}'
want_rc 5
grep -Eq "^  $M3 +m3 .* \? of 3 +cannot be checked: stage 0 " "$ROUT" || fail "the table's line for m3"
# the predictions m0 made: read by me only, through a per-document pipeline
reg affected --collection preds --filter '{}' --json
want_rc 1
answer "$ROUT" '[("me", 3, 3, ["data"])]' '[]' '[]'
# a collection no model reads: m3 is not in question
reg affected --collection preds2 --filter '{}'
want_rc 0

# ---- bad arguments: exit 2, one line ----
bad "affected needs the documents" affected
bad "affected --filter needs --collection" affected --filter '{"i": 1}'
bad "--filter 'nope': not a JSON document" affected --collection data --filter nope
bad "--filter '\{\"i\": ': not a JSON document" affected --collection data --filter '{"i": '
bad "--collection 'nosuch': no such collection in aff" affected --collection nosuch
bad "--collection 'a\\\$b': not a collection name" affected --collection 'a$b'
bad "--filter and --id/--ids-file together" affected --collection data --filter '{}' --id "$ID3"
bad "names the documents itself" affected --run "$RUN_A" --collection data
bad "--script clean-0 needs --run" affected --script clean-0
bad "malformed run id 'nope'" affected --run nope
bad "no run '20200101T000000Z-00000000'" affected --run 20200101T000000Z-00000000
bad "--script learn-9: run $RUN_A has no such script \(its scripts: clean-0, learn-0, learn-1, predict-0\)" \
    affected --run "$RUN_A" --script learn-9
bad "--ids-file $T/none: cannot be read" affected --ids-file "$T/none"
: >"$T/empty"
bad "--ids-file $T/empty: no ids in it" affected --ids-file "$T/empty"
bad "--id: id '\{\"\\\$oid\": 1' is not valid extended JSON" affected --id '{"$oid": 1'
bad "unexpected argument 'extra' after affected" affected --collection data extra
bad "--collection, --filter, --id, --ids-file and --run are for .affected., not .runs." runs --collection data
bad "option --filter needs a value" affected --collection data --filter
echo "affected: all checks passed"
