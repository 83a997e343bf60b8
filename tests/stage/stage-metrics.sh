#!/bin/bash
# Metrics while scripts run, from all three script kinds (the JSON line of an executable, db.log_metric of a
# 2.0.6-style Python learner, nemesyst_log_metric of a C plugin): stored in nemesyst_metrics with the run, the
# script and its stamp (a predictor's with the model it measured; a learner's model is its run record's, and
# `nemesyst-registry metrics` shows it with each metric); gone with a failed script's rollback; a bad metric
# fails its script with a clear error; `nemesyst-registry metrics` shows the history as a table, JSON and a plot.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
REGISTRY="$top_builddir/nemesyst-registry"
cat >"$T/exec_learn.sh" <<'EOS'
#!/bin/sh
# three epochs of a loss, then a model file
for e in 0 1 2; do echo "{\"\$nemesyst_metric\": {\"name\": \"loss\", \"step\": $e, \"value\": 1.$e}}"; done
printf 'exec-model' >"$NEMESYST_WORKDIR/m.bin"
echo "{\"\$nemesyst_model\": {\"path\": \"$NEMESYST_WORKDIR/m.bin\", \"metadata\": {\"kind\": \"exec\"}, \"temp\": true}}"
EOS
cat >"$T/py_learn.py" <<'EOS'
def main(**kwargs):
    db = kwargs["db"]
    db.connect()
    for epoch in range(4):
        db.log_metric("accuracy", epoch, 0.5 + epoch / 10)
    yield ({"kind": "python"}, b"python-model")
EOS
cat >"$T/py_predict.py" <<'EOS'
# evaluates every model of the bucket, oldest first: a "test accuracy" a model (its length / 100)
def main(**kwargs):
    db, args = kwargs["db"], kwargs["args"]
    db.connect()
    cursor = db.getCursor(db_collection_name="models.files", db_pipeline=[{"$sort": {"uploadDate": 1}}])
    for batch in db.getFiles(db_batch_size=1, db_data_cursor=cursor, db_collection_name="models"):
        for f in batch:
            n = len(f["gridout"].read())
            db.log_metric("test_accuracy", 0, n / 100.0)
            yield {"model_len": n}
EOS
cat >"$T/fails.sh" <<'EOS'
#!/bin/sh
echo '{"$nemesyst_metric": {"name": "loss", "step": 0, "value": 3}}'
exit 1
EOS
cat >"$T/bad_metric.sh" <<'EOS'
#!/bin/sh
echo '{"$nemesyst_metric": {"name": "loss", "step": -1, "value": 3}}'
EOS
chmod +x "$T"/*.sh
args=(--data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point clean --data-collection d
      --dl-learn --dl-learner "$T/exec_learn.sh" "$T/py_learn.py" "$PLUGIN" --dl-learner-entry-point main main learn
      --dl-data-collection d d d --dl-epochs 2 --dl-output-model-collection models
      --i-predict --i-predictor "$T/py_predict.py" --i-output-prediction-collection p)
stage_run 2 metrics "${args[@]}"
expect_rc 0
check metrics <<'PY'
m = db.nemesyst_metrics
eq(m.count_documents({"run": RUN}), 3 + 4 + 2 + 3, "metrics of the run")
for key, name, steps in (("learn-0", "loss", [0, 1, 2]), ("learn-1", "accuracy", [0, 1, 2, 3]), ("learn-2", "seen", [0, 1])):
    docs = list(m.find({"run": RUN, "script": key}, sort=[("step", 1)]))
    eq([d["step"] for d in docs], steps, key + " steps")
    eq({d["name"] for d in docs}, {name}, key + " names")
    eq({d["stage"] for d in docs} | {d["position"] for d in docs}, {"learn", int(key[-1])}, key + " stage and position")
    eq({d["_nemesyst"]["s"] for d in docs}, {stamp(key)}, key + " stamps")
    model = db["models.files"].find_one({"metadata._nemesyst.run": RUN, "metadata._nemesyst.position": int(key[-1])})
    eq({d.get("model") for d in docs}, {None}, key + " metrics are never rewritten once its model is stored")
    eq(script(key)["model"], model["_id"], key + " the run record names its model")
    eq(all(d["t"] is not None for d in docs), True, key + " times")
eq([d["value"] for d in m.find({"run": RUN, "script": "learn-0"}, sort=[("step", 1)])], [1.0, 1.1, 1.2], "exec values")
eq(m.find_one({"run": RUN, "script": "learn-2", "step": 1})["value"], 13.0, "plugin: documents seen in epoch 1")
# the predictor's evaluation: each test_accuracy references the model it measured, the model's metadata keeps it,
# and the run record holds every script's last values
files = list(db["models.files"].find({"metadata._nemesyst.run": RUN}, sort=[("uploadDate", 1)]))
evals = list(m.find({"run": RUN, "script": "predict-0"}))
eq(sorted((e["model"], e["value"]) for e in evals), sorted((f["_id"], f["length"] / 100.0) for f in files),
   "the predictor's metrics reference the models they measured")
for f in files:
    ev = f["metadata"]["evaluation"]["test_accuracy"]
    eq((ev["value"], ev["run"], ev["script"]), (f["length"] / 100.0, RUN, "predict-0"), "evaluation in the metadata")
eq([(x["name"], x["value"], x["step"]) for x in script("learn-0")["metrics"]], [("loss", 1.2, 2)],
   "the run record's last metric of learn-0")
eq(sorted((x["model"], x["value"]) for x in script("predict-0")["metrics"]),
   sorted((f["_id"], f["length"] / 100.0) for f in files), "the run record's evaluations of predict-0")
PY
# the registry: table, JSON, one script, a plot; each metric of a learner references the model it stored, each of the
# predictor the model it measured
"$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name metrics --json metrics "$RUN" >"$T/all.json" ||
    fail "registry metrics --json exited $?"
check metrics "$T/all.json" <<'PY'
import json
rows = json.load(open(argv[0]))["metrics"]
for key in ("learn-0", "learn-1", "learn-2"):
    model = db["models.files"].find_one({"metadata._nemesyst.run": RUN, "metadata._nemesyst.position": int(key[-1])})
    eq({r["model"]["$oid"] if isinstance(r.get("model"), dict) else r.get("model") for r in rows if r["script"] == key},
       {str(model["_id"])}, key + ": every metric references its model")
evals = {str(e["_id"]): e["length"] / 100.0 for e in db["models.files"].find({"metadata._nemesyst.run": RUN})}
got = sorted((r["model"]["$oid"] if isinstance(r["model"], dict) else r["model"], r["value"]) for r in rows
             if r["script"] == "predict-0")
eq(got, sorted(evals.items()), "predict-0: each metric references the model it measured")
PY
"$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name metrics metrics "$RUN" >"$T/table" ||
    fail "registry metrics exited $?"
grep -Eq '^learn-1 +accuracy +3 +0\.8 ' "$T/table" || fail "the metrics table: $(cat "$T/table")"
"$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name metrics --json metrics "$RUN" --script learn-0 \
    >"$T/json" || fail "registry metrics --json exited $?"
"$PYTHON3" - "$T/json" <<'PY' || fail "registry metrics --json"
import json, sys
r = json.load(open(sys.argv[1]))
assert [(m["script"], m["name"], m["step"], m["value"]) for m in r["metrics"]] == \
    [("learn-0", "loss", 0, 1.0), ("learn-0", "loss", 1, 1.1), ("learn-0", "loss", 2, 1.2)], r
PY
# the best model by what the predictor measured on it
"$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name metrics --json models --bucket models \
    --best evaluation.test_accuracy --max >"$T/best" || fail "registry models --best evaluation.test_accuracy exited $?"
check metrics "$T/best" <<'PY'
import json
best = json.load(open(argv[0]))
want = db["models.files"].find_one({"metadata._nemesyst.run": RUN}, sort=[("length", -1)])
got = best["models"][0]
eq(str(got["id"]), str(want["_id"]), "the best model by evaluation.test_accuracy")
PY
if command -v gnuplot >/dev/null; then
    "$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name metrics metrics "$RUN" --plot "$T/m.png" ||
        fail "registry metrics --plot exited $?"
    [ "$(head -c 4 "$T/m.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "--plot wrote no PNG"
    [ "$(stat -c %s "$T/m.png")" -gt 4000 ] || fail "--plot wrote a trivial PNG ($(stat -c %s "$T/m.png") bytes)"
    [ -z "${NEM_T_KEEP_PLOT:-}" ] || cp "$T/m.png" "$NEM_T_KEEP_PLOT"
fi
mkdir "$T/nobin" && ln -s "$(command -v sh)" "$T/nobin/sh"
expect_fail 2 "gnuplot-nox" env PATH="$T/nobin" "$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" \
    --db-name metrics metrics "$RUN" --plot "$T/x.png"
expect_fail 2 "unknown run|no run" "$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name metrics \
    metrics 20200101T000000Z-00000000

# a failed script's metrics go with its rollback; a bad metric fails its script, naming the rule
stage_run 2 metrics_fail --data-clean --data-cleaner "$T/fails.sh" "$T/bad_metric.sh" --data-collection f f
expect_rc 4
check metrics_fail <<'PY'
eq(db.nemesyst_metrics.count_documents({"run": RUN}), 0, "metrics left after the rollback")
e = script("clean-1")
eq("step: a whole number >= 0" in e["error"], True, "the bad metric's error: %r" % e["error"])
PY
echo "stage-metrics: ok"
