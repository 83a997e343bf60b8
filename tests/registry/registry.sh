#!/bin/bash
# nemesyst-registry against a real pipeline on a private FerretDB (tests/registry.mk). Three runs of nemesyst with
# the shared test plugin: A cleans 9 documents, learns from 7 of them (a learner copied to a file of the test's own,
# so its sha256 can be broken later) and predicts 3; B retrains A's model and predicts with the new one; C crashes
# its cleaner (exit 4). Then every verb, its --json parsed by python3 and compared with what the database holds
# (run ids, script counts, the consumed count and digest recomputed here, parents, predictions), verify before and
# after the data and the script change, and each bad input with its documented exit status.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
REG_DB=reg REG_HEAD=3000
. "$top_srcdir/tests/registry/lib.sh" # reg, want_rc, bad, bad_rc

LEARNER="$T/learner.so"
cp "$PLUGIN" "$LEARNER"
NEM_T_COUNT=9 stage_run 0 reg --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point clean \
    --data-collection data --dl-learn --dl-learner "$LEARNER" --dl-learner-entry-point learn \
    --dl-data-collection data --dl-data-pipeline '[{"$match": {"i": {"$gte": 2}}}, {"$sort": {"i": -1}}]' \
    --dl-batch-size 3 --dl-output-model-collection models \
    --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict --i-output-prediction-collection preds
expect_rc 0
RUN_A=$RUN
stage_run 0 reg --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection data \
    --dl-data-pipeline '[{"$sort": {"i": 1}}]' --dl-batch-size 4 --dl-input-model-collection models \
    --dl-input-model-pipeline '[{"$sort": {"uploadDate": -1}}]' --dl-output-model-collection retrained \
    --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict --i-output-prediction-collection preds2
expect_rc 0
RUN_B=$RUN
stage_run 0 reg --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point crash --data-collection junk
expect_rc 4
RUN_C=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$OUT" | tail -n 1)
[ -n "$RUN_C" ] || fail "no run id for the failed run"
# D: 2.0.6-style Python scripts through the adapter (its own cursor and digest), 2 epochs over the same data.
stage_run 0 reg --data-clean --data-cleaner "$FIX/original/mnist_cleaner.py" --data-collection mnist \
    --dl-learn --dl-learner "$FIX/original/mnist_learner.py" --dl-epochs 2 --dl-output-model-collection pymodels
expect_rc 0
RUN_D=$RUN
# A run whose rank 0 died long ago (still "running", heartbeat expired), with secrets a foreign or old record
# might hold: the registry must call it lost and print none of them.
LOST=20200101T000000Z-0badcafe
check reg "$LOST" <<'PY'
import datetime
t = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
db.nemesyst_runs.insert_one({"_id": argv[0], "stamp_format": 2, "status": "running", "started": t, "heartbeat": t,
                             "heartbeat_s": 30, "ranks": 2, "hosts": ["h1", "h1"], "scripts": {},
                             "options": {"db-name": "reg", "db-password": "hunter2-secret",
                                         "db-tls-certificate-key-file-password": "tls-secret",
                                         "my_password": "other-secret"}})
PY

# ---- runs ----
reg runs --json
want_rc 0
check reg "$ROUT" "$RUN_A" "$RUN_B" "$RUN_C" "$RUN_D" "$LOST" <<'PY'
import json
rows = json.load(open(argv[0]))["runs"]
a, b, c, d, lost = argv[1:]
eq([r["id"] for r in rows], [d, c, b, a, lost], "runs, newest first")
by = {r["id"]: r for r in rows}
eq((by[a]["status"], by[a]["scripts_ok"], by[a]["scripts_failed"]), ("succeeded", 3, 0), "run A")
eq((by[b]["status"], by[b]["scripts_ok"], by[b]["scripts_failed"]), ("succeeded", 2, 0), "run B")
eq((by[c]["status"], by[c]["scripts_ok"], by[c]["scripts_failed"]), ("failed", 0, 1), "run C")
eq((by[lost]["status"], by[lost]["recorded_status"], by[lost]["hosts"]), ("lost", "running", ["h1"]), "the lost run")
rec = db.nemesyst_runs.find_one({"_id": a})
eq(by[a]["hosts"], sorted(set(rec["hosts"])), "run A's hosts")
iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)
eq((by[a]["started"], by[a]["ended"]), (iso(rec["started"]), iso(rec["ended"])), "run A's start and end")
eq(by[a]["duration_ms"], round((rec["ended"] - rec["started"]).total_seconds() * 1000), "run A's duration")
PY
reg runs
want_rc 0
grep -Eq "^$LOST .* lost " "$ROUT" || fail "the table does not mark $LOST lost"
# the one run listing (--list-runs prints it too): run, name, status, started, duration, heartbeat, attempts, ok, failed,
# hosts, tags (these runs have no name and no tags: "-")
head -n 1 "$ROUT" | grep -Eq "^run +name +status +started +duration +heartbeat +attempts +ok +failed +hosts +tags$" ||
    fail "the runs header"
grep -Eq "^$RUN_C +- +failed .* 0 +1 +[^ ]+ +-$" "$ROUT" || fail "the table does not show run C failed with 0 ok, 1 failed"

# ---- run ID ----
reg run "$RUN_A" --json
want_rc 0
check reg "$ROUT" "$RUN_A" <<'PY'
import json
rep = json.load(open(argv[0]))
run_id = argv[1]
eq(rep["run"]["id"], run_id, "the run")
eq([(s["script"], s["status"], s["documents"], s["models"]) for s in rep["scripts"]],
   [("clean-0", "succeeded", 9, 0), ("learn-0", "succeeded", 0, 1), ("predict-0", "succeeded", 3, 0)],
   "the per-script table")
eq(rep["scripts"][0]["stamp"], str(stamp("clean-0", run_id)), "clean-0's stamp")
eq(rep["errors"], [], "no errors")
model = db["models.files"].find_one()
eq([(m["id"], m["bucket"], m["script"]) for m in rep["models"]], [(str(model["_id"]), "models", "learn-0")],
   "the models it made")
eq(rep["models"][0]["metrics"]["seen"], 7, "the model's metric 'seen'")
eq(rep["predictions"], [{"script": "predict-0", "collection": "preds", "model": str(model["_id"]), "count": 3}],
   "its predictions, by the model they were made with")
eq(rep["options"]["dl-data-collection"], ["data"], "its options")
ok(not any("password" in k for k in rep["options"]), "no password option")
PY
reg run "$RUN_A"
want_rc 0
grep -q "^  predict-0  succeeded" "$ROUT" || fail "the table has no predict-0 line"
# the per-script table is the end-of-run summary's (the same columns and status words)
grep -Eq "^  script +status +rank +host +seconds +documents +models +file +error$" "$ROUT" || fail "the scripts header"
grep -Eq "^  predict-0 +preds +3 +[0-9a-f]{24}$" "$ROUT" || fail "the table lists no predictions"
reg run "$RUN_C" --json
want_rc 0
check reg "$ROUT" <<'PY'
import json
rep = json.load(open(argv[0]))
eq(rep["run"]["status"], "failed", "run C's status")
eq([e["script"] for e in rep["errors"]], [None, "clean-0"], "run C's errors: the run's and the script's")
ok("signal" in rep["errors"][1]["error"], "the crash is named: %r" % rep["errors"][1]["error"])
PY
for form in "--json" ""; do
    reg run "$LOST" $form
    want_rc 0
    ! grep -Eq "hunter2|tls-secret|other-secret" "$ROUT" "$RERR" || fail "a secret of the lost run's options was printed"
    grep -q "db-name" "$ROUT" || fail "the lost run's options are missing"
done

# ---- models ----
reg models --json
want_rc 0
check reg "$ROUT" "$RUN_A" "$RUN_B" "$RUN_D" <<'PY'
import json
rows = json.load(open(argv[0]))["models"]
a = db["models.files"].find_one()
b = db["retrained.files"].find_one()
d = db["pymodels.files"].find_one()
eq([(m["id"], m["bucket"], m["run"]) for m in rows],
   [(str(a["_id"]), "models", argv[1]), (str(d["_id"]), "pymodels", argv[3]), (str(b["_id"]), "retrained", argv[2])],
   "every model, by bucket")
eq([m["metrics"]["seen"] for m in rows], [7, 16, 9], "their metrics")
eq(rows[0]["metrics"]["batch_sizes"], 1, "a list's final value")
ok("kind" not in rows[0]["metrics"], "strings are no metrics")
eq(sorted(rows[1]["metrics"]), ["accuracy", "loss", "seen"], "the Python model's metrics (not its copy of the args)")
eq(rows[1]["metrics"]["loss"], d["metadata"]["loss"], "its loss")
eq(rows[2]["parent"], str(a["_id"]), "B's parent")
PY
MODEL_D=$(check reg <<'PY' | tail -n 1
print(db["pymodels.files"].find_one()["_id"])
PY
)
# The adapter's digest of its cursor is the one the registry recomputes.
reg verify "$MODEL_D" --json
want_rc 0
check reg "$ROUT" <<'PY'
import json
rep = json.load(open(argv[0]))
d = rep["data"][0]
eq((rep["verdict"], d["collection"], d["count_then"], d["count_now"], d["digest_now"]),
   ("unchanged", "mnist", 8, 8, digest_of("mnist", [{"$match": {"img_num": {"$lt": 8}}}, {"$sort": {"img_num": 1}}])[1]),
   "verify of the Python learner's model")
eq(rep["script"]["unchanged"], True, "the Python learner's sha256")
PY
MODEL_A=$(check reg <<'PY' | tail -n 1
print(db["models.files"].find_one()["_id"])
PY
)
MODEL_B=$(check reg <<'PY' | tail -n 1
print(db["retrained.files"].find_one()["_id"])
PY
)
reg models --best seen --max --json
want_rc 0
check reg "$ROUT" "$MODEL_D" <<'PY'
import json
rep = json.load(open(argv[0]))
eq(([m["id"] for m in rep["models"]], rep["best"]), ([argv[1]], {"metric": "seen", "order": "max", "value": 16}),
   "--best seen --max")
PY
reg models --bucket retrained --best seen --min
want_rc 0
grep -q "$MODEL_B" "$ROUT" && ! grep -q "$MODEL_A" "$ROUT" || fail "--bucket retrained shows other buckets' models"
reg models --best seen --min
want_rc 0
grep -q "^best by seen (least): $MODEL_A" "$ROUT" || fail "--best seen --min is not model A"

# ---- lineage ----
reg lineage "$MODEL_A" --json
want_rc 0
check reg "$ROUT" "$RUN_A" "$LEARNER" "$MODEL_A" <<'PY'
import hashlib, json
from bson import json_util
rep = json.load(open(argv[0]))
run_id, learner, model = argv[1:]
eq((rep["model"]["id"], rep["run"]["id"], rep["run"]["status"]), (model, run_id, "succeeded"), "model and run")
eq((rep["stage"], rep["position"], rep["host"], rep["rank"]), ("learn", 0, script("learn-0", db.nemesyst_runs.find_one(
    {"_id": run_id}))["host"], 0), "where it was trained")
eq(rep["script"], {"path": learner, "sha256": hashlib.sha256(open(learner, "rb").read()).hexdigest()},
   "the script and its sha256")
eq(rep["options"]["dl-batch-size"], [3], "the options")
pipeline = [{"$match": {"i": {"$gte": 2}}}, {"$sort": {"i": -1}}]
eq((rep["data"]["collection"], json_util.loads(rep["data"]["pipeline"]), rep["data"]["exists"]),
   ("data", pipeline, True), "the data collection and pipeline")
c = rep["consumed"]
eq(len(c), 1, "consumed records")
n, digest = digest_of("data", pipeline)
eq((c[0]["collection"], c[0]["count"], c[0]["digest"], c[0]["complete"]), ("data", 7, digest, True),
   "the count and digest consumed (recomputed here)")
eq(rep["parents"], [], "a first model has no parents")
eq(rep["predictions"], [{"collection": "preds", "run": run_id, "script": "predict-0", "count": 3}],
   "the predictions made with it")
PY
reg lineage "$MODEL_B" --json
want_rc 0
check reg "$ROUT" "$RUN_A" "$RUN_B" "$MODEL_A" <<'PY'
import json
rep = json.load(open(argv[0]))
run_a, run_b, model_a = argv[1:]
eq(rep["run"]["id"], run_b, "B's run")
eq([(p["id"], p["bucket"], p["found"], p["run"], p["script"]) for p in rep["parents"]],
   [(model_a, "models", True, run_a, "learn-0")], "B's parents, to the first")
eq((rep["consumed"][0]["count"], rep["consumed"][0]["digest"]), (9, digest_of("data", [{"$sort": {"i": 1}}])[1]),
   "B's consumed data")
eq(rep["predictions"], [{"collection": "preds2", "run": run_b, "script": "predict-0", "count": 3}],
   "the predictions made with B")
PY
reg lineage "$MODEL_B"
want_rc 0
grep -q "^parent 1 .*$MODEL_A in models: run $RUN_A" "$ROUT" || fail "the table does not name B's parent"
grep -q "^consumed     data: 9 documents" "$ROUT" || fail "the table does not show B's consumed data"

# ---- export ----
reg export "$RUN_A"
want_rc 0
check reg "$ROUT" "$RUN_A" "$MODEL_A" <<'PY'
import json
rep = json.load(open(argv[0]))
eq((rep["format"], rep["database"], rep["run"]["id"]), ("nemesyst-registry-export/1", "reg", argv[1]), "the export")
eq([s["script"] for s in rep["scripts"]], ["clean-0", "learn-0", "predict-0"], "its scripts")
eq([m["id"] for m in rep["models"]], [argv[2]], "its models")
eq([(l["model"]["id"], l["consumed"][0]["count"]) for l in rep["lineage"]], [(argv[2], 7)], "their lineage")
eq(rep["predictions"][0]["count"], 3, "its predictions")
PY

# ---- verify ----
reg verify "$MODEL_A"
want_rc 0
[ "$(tail -n 1 "$ROUT")" = "unchanged" ] || fail "verify of an untouched model does not say unchanged"
cat "$PLUGIN" /dev/null >"$LEARNER.new" && printf 'x' >>"$LEARNER.new" && mv "$LEARNER.new" "$LEARNER"
reg verify "$MODEL_A" --json
want_rc 1
check reg "$ROUT" <<'PY'
import json
rep = json.load(open(argv[0]))
eq((rep["verdict"], rep["data"][0]["verdict"], rep["script"]["unchanged"]), ("changed", "unchanged", False),
   "a changed learner file")
ok(rep["message"].startswith("changed: script "), "the message names the script: %r" % rep["message"])
PY
cp "$PLUGIN" "$LEARNER"
check reg <<'PY'
db.data.insert_one({"i": 100, "kind": "late"})
PY
reg verify "$MODEL_A"
want_rc 1
[ "$(tail -n 1 "$ROUT")" = "changed: 7 documents then, 8 now" ] || fail "verify does not say 7 then, 8 now"
reg verify "$MODEL_A" --json
want_rc 1
check reg "$ROUT" <<'PY'
import json
rep = json.load(open(argv[0]))
d = rep["data"][0]
n, digest = digest_of("data", [{"$match": {"i": {"$gte": 2}}}, {"$sort": {"i": -1}}])
eq((rep["verdict"], d["count_then"], d["count_now"], d["digest_now"]), ("changed", 7, 8, digest),
   "the recount and digest of the changed data")
ok(d["digest_then"] != d["digest_now"], "the digests differ")
PY
# the late document gone again: unchanged; then one document of the training data changed in place (same count,
# another digest), then one removed
check reg <<'PY'
db.data.delete_one({"kind": "late"})
PY
reg verify "$MODEL_A"
want_rc 0
[ "$(tail -n 1 "$ROUT")" = "unchanged" ] || fail "verify after the late document went: $(tail -n 1 "$ROUT")"
check reg <<'PY'
eq(db.data.update_one({"i": 5}, {"$set": {"kind": "edited"}}).modified_count, 1, "one document changed")
PY
reg verify "$MODEL_A"
want_rc 1
[ "$(tail -n 1 "$ROUT")" = "changed: 7 documents then, 7 now" ] || fail "verify after one document changed: $(tail -n 1 "$ROUT")"
check reg <<'PY'
eq(db.data.delete_one({"i": 3}).deleted_count, 1, "one document removed")
PY
reg verify "$MODEL_A"
want_rc 1
[ "$(tail -n 1 "$ROUT")" = "changed: 7 documents then, 6 now" ] || fail "verify after one document removed: $(tail -n 1 "$ROUT")"

# ---- bad input: one line, a documented exit status ----
bad "malformed run id 'not-a-run'" run not-a-run
bad "no run '20200101T000000Z-00000000' in reg.nemesyst_runs" run 20200101T000000Z-00000000
bad "no run '20200101T000000Z-00000000'" export 20200101T000000Z-00000000
bad "malformed model id 'xyz'" lineage xyz
bad "no model '000000000000000000000000' in any GridFS bucket of reg" lineage 000000000000000000000000
bad "no model '000000000000000000000000'" verify 000000000000000000000000
bad "unknown verb 'lineages'" lineages "$MODEL_A"
bad "unknown or ambiguous option '--jsn'" --jsn runs
bad "--bucket 'nosuch': no GridFS bucket" models --bucket nosuch
bad "--best nosuch: no model has a number 'nosuch'" models --best nosuch --max
bad "--best seen needs --min or --max" models --best seen
bad "unexpected argument 'extra'" run "$RUN_A" extra
port=$(nem_random_port)
while ! nem_port_free "$port"; do port=$(nem_random_port); done
bad_rc 3 "cannot reach MongoDB at 127.0.0.1:$port" runs --db-port "$port"
# The connection comes from the same places as nemesyst's: a config file and N_* variables.
printf 'db-ip = 127.0.0.1\ndb-port = %s\n' "$NEM_TEST_PORT" >"$T/reg.conf"
N_DB_NAME=reg "$REGISTRY" -c "$T/reg.conf" runs --json >"$T/conf.json" || fail "registry with -c and N_DB_NAME failed"
grep -q "$RUN_A" "$T/conf.json" || fail "-c and N_DB_NAME did not reach the test database"
printf 'pw\n' >"$T/pw" && chmod 644 "$T/pw"
bad "db-password-file" runs --db-user-name u --db-password-file "$T/pw"

# The data collection dropped: verify cannot re-read it (5), lineage still shows what was recorded.
check reg <<'PY'
db.data.drop()
PY
reg verify "$MODEL_A"
want_rc 5
[ "$(wc -l <"$RERR")" -eq 1 ] && grep -q "verify $MODEL_A: the data collection reg.data no longer exists" "$RERR" ||
    fail "verify of a model whose data was dropped does not say so in one line"
reg verify "$MODEL_A" --json
want_rc 5
check reg "$ROUT" <<'PY'
import json
rep = json.load(open(argv[0]))
eq((rep["verdict"], rep["data"][0]["count_then"], rep["data"][0]["count_now"]), ("unverifiable", 7, None),
   "verify of dropped data")
PY
reg lineage "$MODEL_A" --json
want_rc 0
grep -q "no longer exists" "$RERR" || fail "lineage does not warn of the dropped data collection"
check reg "$ROUT" <<'PY'
import json
eq(json.load(open(argv[0]))["data"]["exists"], False, "lineage: the data collection is gone")
PY
echo "registry: all checks passed"
