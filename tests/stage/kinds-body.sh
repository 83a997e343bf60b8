# Body of stage-kinds-n*.sh (sourced with NP set): every stage with every script kind in one run on NP ranks:
# position 0 an executable, 1 an original-style Python script, 2 the C plugin. Documents, models and predictions
# are read back with exact counts and their provenance; predictions reference the model that made them.
. "$top_srcdir/tests/stage/lib.sh"
db=kinds_n$NP
stage_run "$NP" "$db" --process-pool 2 \
    --data-clean --data-cleaner "$FIX/clean.sh" "$FIX/original/mnist_cleaner.py" "$PLUGIN" \
    --data-cleaner-entry-point main main clean --data-collection c_exec c_py c_so \
    --dl-learn --dl-learner "$FIX/learn_exec" "$FIX/original/mnist_learner.py" "$PLUGIN" \
    --dl-learner-entry-point main main learn --dl-data-collection c_exec c_py c_so \
    --dl-data-pipeline '[{"$sort": {"i": 1}}]' --dl-batch-size 4 4 4 --dl-epochs 2 2 2 \
    --dl-output-model-collection m_exec m_py m_so \
    --i-predict --i-predictor "$FIX/predict_exec" "$FIX/original/mnist_predictor.py" "$PLUGIN" \
    --i-predictor-entry-point main main predict --i-output-prediction-collection p_exec p_py p_so \
    --summary-json "$T/summary.json"
expect_rc 0
check "$db" "$NP" "$FIX" "$PLUGIN" "$T/summary.json" <<'PY'
import json
np_, fix, plugin, summary = int(argv[0]), argv[1], argv[2], argv[3]
paths = {"clean": [fix + "/clean.sh", fix + "/original/mnist_cleaner.py", plugin],
         "learn": [fix + "/learn_exec", fix + "/original/mnist_learner.py", plugin],
         "predict": [fix + "/predict_exec", fix + "/original/mnist_predictor.py", plugin]}
eq(run["status"], "succeeded", "run status")
eq(run["ranks"], np_, "ranks in the run record")
eq(len(run["hosts"]), np_, "hosts in the run record")
eq((run["options"]["db-name"], run["options"]["process-pool"]), ("kinds_n%d" % np_, 2), "options in the run record")
ok(not [k for k in run["options"] if "password" in k], "no password option in the run record")
eq(sorted(run["scripts"]), sorted("%s-%d" % (s, p) for s in paths for p in range(3)), "scripts in the run record")
worker_ranks = {0} if np_ == 1 else set(range(1, np_))
for stage, ps in paths.items():
    for p, path in enumerate(ps):
        e = script("%s-%d" % (stage, p))
        eq((e["stage"], e["position"], e["path"], e["status"], e["error"]), (stage, p, path, "succeeded", None),
           "%s-%d entry" % (stage, p))
        ok(e["rank"] in worker_ranks, "%s-%d ran on a worker rank (%d)" % (stage, p, e["rank"]))
        ok(e["started"] <= e["ended"], "%s-%d started before it ended" % (stage, p))

# clean: exact counts, provenance on every document
for p, (coll, n) in enumerate([("c_exec", 7), ("c_py", 11), ("c_so", 13)]):
    eq(count(coll), n, coll + " documents")
    eq(count(coll, {"_nemesyst": {"s": stamp("clean-%d" % p)}}), n, coll + " documents with provenance, nothing else")
    eq(script("clean-%d" % p)["path"], paths["clean"][p], "clean-%d's script in the run record" % p)
    eq(script("clean-%d" % p)["documents"], n, "clean-%d documents in the run record" % p)
eq(sorted(d["i"] for d in docs("c_exec")), list(range(7)), "exec cleaner's i values")
e = script("clean-0")
eq({(d["env"]["run"], d["env"]["stage"], d["env"]["rank"], d["env"]["db"]) for d in docs("c_exec")},
   {(RUN, "clean", e["rank"], "kinds_n%d" % np_)}, "NEMESYST_RUN_ID, _STAGE, _RANK, _DB_NAME the executable got")
eq(sorted(d["img_num"] for d in docs("c_py")), list(range(11)), "python cleaner's img_num values")
eq(sorted(d["i"] for d in docs("c_so")), list(range(13)), "plugin cleaner's i values")

# learn: one model per learner, lineage metadata
seen = {"m_exec": 7, "m_py": 2 * 8, "m_so": 13}
for p, bucket in enumerate(["m_exec", "m_py", "m_so"]):
    ms = models(bucket)
    eq(len(ms), 1, bucket + " models")
    prov = ms[0]["metadata"]["_nemesyst"]
    eq((prov["run"], prov["stage"], prov["position"], prov["script"]), (RUN, "learn", p, paths["learn"][p]),
       bucket + " model provenance")
    ok(len(prov["script_sha256"]) == 64, bucket + " has the learner's sha256")
    eq(prov["data_collection"], ["c_exec", "c_py", "c_so"][p], bucket + " data collection")
    eq(prov["parent"], None, bucket + " parent")
    eq(ms[0]["metadata"]["seen"], seen[bucket], bucket + " documents the learner saw")
    eq(script("learn-%d" % p)["models"], 1, "learn-%d models in the run record" % p)
    ok(prov["consumed"] and prov["consumed"][0]["count"] > 0, bucket + " records the data consumed")
    ok("db-password" not in prov["options"], bucket + " options without secrets")

# predict: exact counts, each prediction references the model (its GridFS _id) it was made with
for p, (coll, bucket, n) in enumerate([("p_exec", "m_exec", 3), ("p_py", "m_py", 3), ("p_so", "m_so", 3)]):
    model_id = models(bucket)[0]["_id"]
    eq(count(coll), n, coll + " predictions")
    eq(count(coll, {"_nemesyst": {"s": stamp("predict-%d" % p), "model": model_id}}), n,
       coll + " predictions referencing model %s" % model_id)
eq(sorted(d["img_num"] for d in docs("p_py")), [8, 9, 10], "python predictor's examples")

s = json.load(open(summary))
eq((s["run"], s["status"], s["scripts_total"], s["scripts_failed"], s["documents"]),
   (RUN, "succeeded", 9, 0, 7 + 11 + 13 + 9), "summary json")
PY
