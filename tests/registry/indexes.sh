#!/bin/bash
# The indexes nemesyst makes where it writes (provenance.h nem_provenance_index_*; README "Asking the store"), asked
# of the server itself (listIndexes through pymongo) after a real run: the stamp on the cleaner's and the predictor's
# collections (and _nemesyst.model on the predictor's), run/stage/position and parent.id on the model bucket's files,
# {run, script, name, step} and the stamp on nemesyst_metrics, and started, status, name, sweep, attempts.job, stamps
# and the prediction collection options on nemesyst_runs; the
# run record's stamps array holds its scripts' stamps, and lineage names a prediction's run with and without it. A second run into the same collections makes
# none again (no index twice, none renamed), and the registry's verbs answer what the database says before and after.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
REGISTRY="$top_builddir/nemesyst-registry"
[ -x "$REGISTRY" ] || fail "$REGISTRY not built"
CONN=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name idx)
NREG=0
reg() {
    NREG=$((NREG + 1))
    ROUT="$T/reg.$NREG.out"
    "$REGISTRY" "${CONN[@]}" "$@" >"$ROUT" 2>"$T/reg.$NREG.err"
    RRC=$?
    echo "== nemesyst-registry $* -> exit $RRC"
    head -c 2000 "$ROUT"
    sed 's/^/   stderr: /' "$T/reg.$NREG.err"
}

one_run() {
    NEM_T_COUNT=9 stage_run 0 idx --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point clean \
        --data-collection data --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn \
        --dl-data-collection data --dl-data-pipeline '[{"$match": {"i": {"$gte": 5}}}]' --dl-batch-size 3 \
        --dl-output-model-collection m0 --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict \
        --i-output-prediction-collection preds "$@"
    expect_rc 0
}

# indexes FILE: every index of the collections, {collection: [[key, name], ...]} as JSON, the _id index left out;
# each expected key there exactly once.
indexes() {
    check idx "$1" <<'PY'
import json
want = {
    "data": [[["_nemesyst.s", 1]]],
    "preds": [[["_nemesyst.s", 1]], [["_nemesyst.model", 1]]],
    "m0.files": [[["metadata._nemesyst.run", 1], ["metadata._nemesyst.stage", 1], ["metadata._nemesyst.position", 1]],
                 [["metadata._nemesyst.parent.id", 1]], [["filename", 1], ["uploadDate", 1]]],
    "m0.chunks": [[["files_id", 1], ["n", 1]]],
    "nemesyst_metrics": [[["run", 1], ["script", 1], ["name", 1], ["step", 1]], [["_nemesyst.s", 1]]],
    "nemesyst_runs": [[["started", -1]], [["status", 1], ["started", -1]], [["name", 1]],
                      [["sweep.name", 1], ["sweep.index", 1]], [["attempts.job", 1]], [["stamps", 1]],
                      [["options.i-output-prediction-collection", 1]],
                      [["resume_options.i-output-prediction-collection", 1]]],
}
got = {}
for coll in sorted(want):
    got[coll] = sorted([[[k, int(v)] for k, v in ix["key"].items()], ix["name"]]
                       for ix in db[coll].list_indexes() if ix["name"] != "_id_")
    keys = [k for k, _ in got[coll]]
    for w in want[coll]:
        eq(keys.count(w), 1, "index %s on %s, once" % (w, coll))
    eq(len(keys), len(want[coll]), "the indexes of %s: %s" % (coll, keys))
json.dump(got, open(argv[0], "w"), sort_keys=True)
PY
}

one_run --run-name first
RUN_A=$RUN
indexes "$T/indexes.1"
check idx <<'PY'
# the stamp index is the one nemesyst deletes and counts by: every document of the run carries the field
eq(count("data", {"_nemesyst.s": {"$exists": True}}), count("data", {}), "every cleaned document stamped")
PY
M0=$(check idx <<'PY' | tail -n 1
print(db["m0.files"].find_one()["_id"])
PY
)
reg --json lineage "$M0"
[ "$RRC" -eq 0 ] || fail "lineage: exit $RRC"
cp "$ROUT" "$T/lineage.1"
# the run record's stamps array (runrec.h "stamps", indexed) is its scripts' stamps, each once; lineage names the
# run and script of the predictions through it
check idx "$ROUT" "$RUN_A" <<'PY'
import json
run = db.nemesyst_runs.find_one({"_id": argv[1]})
want = sorted(str(e["stamp"]) for e in run["scripts"].values())
eq(sorted(str(s) for s in run["stamps"]), want, "stamps: the scripts' stamps, each once")
eq(len(want), 3, "stamps: a cleaner's, a learner's, a predictor's")
eq(str(stamp("predict-0", argv[1])) in want, True, "stamps: the predictor's")
preds = json.load(open(argv[0]))["predictions"]
eq([(p["collection"], p["run"], p["script"]) for p in preds], [("preds", argv[1], "predict-0")],
   "lineage: the predictions' run and script")
PY

one_run --run-name second
RUN_B=$RUN
indexes "$T/indexes.2"
cmp -s "$T/indexes.1" "$T/indexes.2" || fail "a second run changed the indexes: $(cat "$T/indexes.1") -> $(cat "$T/indexes.2")"

# the verbs answer as the database says, and lineage of the first model as before the second run
reg --json lineage "$M0"
[ "$RRC" -eq 0 ] || fail "lineage after the second run: exit $RRC"
check idx "$T/lineage.1" "$ROUT" <<'PY'
import json
a, b = (json.load(open(f)) for f in argv[:2])
for r in (a, b):
    r["run"].pop("heartbeat_age_ms", None)
    r["run"].pop("duration_ms", None)
eq(b, a, "lineage of the first run's model, before and after the second run")
eq(sum(p["count"] for p in b["predictions"]), count("preds", {"_nemesyst.model": ObjectId(b["model"]["id"])}),
   "lineage's predictions, counted here")
PY
reg --json runs
[ "$RRC" -eq 0 ] || fail "runs: exit $RRC"
check idx "$ROUT" "$RUN_A" "$RUN_B" <<'PY'
import json
rows = json.load(open(argv[0]))["runs"]
eq([r["id"] for r in rows], [r["_id"] for r in db.nemesyst_runs.find({}, {"_id": 1}).sort("started", -1)],
   "runs: every run, newest first")
eq([r["id"] for r in rows], [argv[2], argv[1]], "runs: the two runs")
eq([r["name"] for r in rows], ["second", "first"], "runs: their names")
PY
# a record of an earlier version has no stamps array: lineage still names the run, looking such records through
check idx "$RUN_A" <<'PY'
db.nemesyst_runs.update_one({"_id": argv[0]}, {"$unset": {"stamps": 1}})
PY
reg --json lineage "$M0"
[ "$RRC" -eq 0 ] || fail "lineage of a record without stamps: exit $RRC"
check idx "$T/lineage.1" "$ROUT" <<'PY'
import json
a, b = (json.load(open(f)) for f in argv[:2])
eq(b["predictions"], a["predictions"], "lineage through a record without the stamps array")
PY
reg runs --name first
[ "$RRC" -eq 0 ] && [ "$(grep -c "^$RUN_A " "$ROUT")" -eq 1 ] && ! grep -q "^$RUN_B " "$ROUT" ||
    fail "runs --name first: the first run alone"
# verify --all: the first run's model read [$match i >= 5] before the second cleaner added to it (changed), the
# second's after (unchanged): each verdict from the counts here, and exit 1 (a change)
reg --json verify --all
[ "$RRC" -eq 1 ] || fail "verify --all: exit $RRC, want 1"
check idx "$ROUT" <<'PY'
import json
rep = json.load(open(argv[0]))
now = count("data", {"i": {"$gte": 5}})
want = sorted((str(f["_id"]), "unchanged" if f["metadata"]["_nemesyst"]["consumed"][0]["count"] == now else "changed")
              for f in db["m0.files"].find())
eq(sorted((m["model"], m["verdict"]) for m in rep["models"]), want, "verify --all: every model's verdict")
eq((rep["unchanged"], rep["changed"]), (sum(v == "unchanged" for _, v in want), sum(v == "changed" for _, v in want)),
   "verify --all: the tally")
PY
reg verify --all
[ "$RRC" -eq 1 ] && [ "$(grep -c '^changed ' "$ROUT")" -eq 1 ] && [ "$(grep -c '^unchanged ' "$ROUT")" -eq 1 ] ||
    fail "verify --all's table: one changed, one unchanged"
ID7=$(check idx "$RUN_A" <<'PY' | tail -n 1
print(db.data.find_one({"i": 7, "_nemesyst.s": stamp("clean-0", argv[0])})["_id"])
PY
)
reg --json affected --collection data --id "$ID7"
[ "$RRC" -eq 1 ] || fail "affected: exit $RRC, want 1 (affected)"
check idx "$ROUT" "$RUN_A" "$ID7" <<'PY'
import json
rep = json.load(open(argv[0]))
# run A's document {i: 7}: each run's learner read [$match i >= 5] of everything cleaned by then, so both models
runs = {r["_id"]: r["started"] for r in db.nemesyst_runs.find()}
want = sorted(str(f["_id"]) for f in db["m0.files"].find()
              if runs[f["metadata"]["_nemesyst"]["run"]] >= runs[argv[1]]
              and count("data", {"_id": ObjectId(argv[2]), "i": {"$gte": 5}}) == 1)
eq(len(want), 2, "both models read it")
eq(sorted(m["id"] for m in rep["models"]), want, "affected: the models that read the document")
eq(sum(p["count"] for p in rep["predictions"]),
   count("preds", {"_nemesyst.model": {"$in": [ObjectId(m["id"]) for m in rep["models"]]}}),
   "affected: the predictions made with them, counted here")
PY
echo "indexes: ok"
