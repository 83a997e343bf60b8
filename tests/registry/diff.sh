#!/bin/bash
# nemesyst-registry diff, on a private FerretDB (tests/registry.mk). Real runs of nemesyst with the shared test plugin:
#   P  cleans 9 documents {i: 0..8} into `data`
#   A  learns from data through [$sort i] in batches of 3 (model MA)
#   then one document more goes into data ({i: 9}), and
#   B  learns the same way in batches of 4 (model MB): an option and a data document apart from A
#   C  retrains MA as B learned (model MC): B's data and batches, a parent
# diff A B names exactly the fields that differ (the option, the learner's consumed count and digest, its metric, its
# model's length, consumed record and metrics, and the durations where the records differ) and no other, its table
# and --json alike, with the values the database holds; diff MA MB likewise for the models; diff MB MC the parent and
# nothing of the data; a run or a model with itself is the same (exit 0); bad arguments: exit 2 with one line.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
REG_DB=dif
. "$top_srcdir/tests/registry/lib.sh" # reg, want_rc, bad, vg

NEM_T_COUNT=9 stage_run 0 dif --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point clean \
    --data-collection data
expect_rc 0
learn() {
    stage_run 0 dif --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection data \
        --dl-data-pipeline '[{"$sort": {"i": 1}}]' --dl-output-model-collection models "$@"
    expect_rc 0
}
learn --dl-batch-size 3
RUN_A=$RUN
check dif <<'PY'
db.data.insert_one({"i": 9, "kind": "extra"})
PY
learn --dl-batch-size 4
RUN_B=$RUN
learn --dl-batch-size 4 --dl-input-model-collection models --dl-input-model-pipeline '[{"$sort": {"uploadDate": 1}}]'
RUN_C=$RUN
read -r MA MB MC < <(check dif "$RUN_A" "$RUN_B" "$RUN_C" <<'PY' | tail -n 1
ids = [str(db["models.files"].find_one({"metadata._nemesyst.run": r})["_id"]) for r in argv]
print(" ".join(ids))
PY
)
[ -n "$MC" ] || fail "the three models"

# fields RUN_OR_MODEL_A B FILE EXPECTED: the differences in the --json report FILE are exactly the EXPECTED fields
# (a Python list) plus the durations that differ in the records; each value as the database holds it.
fields() {
    check dif "$@" <<'PY'
import ast, json
a, b, rep = argv[0], argv[1], json.load(open(argv[2]))
want = set(ast.literal_eval(argv[3]))
runs = "T" in a
def span(d):
    return int((d["ended"] - d["started"]).total_seconds() * 1000) if d.get("started") and d.get("ended") else None
if runs:
    ra, rb = (db.nemesyst_runs.find_one({"_id": x}) for x in (a, b))
    if span(ra) != span(rb):
        want.add("duration_ms")
    for k in set(ra["scripts"]) | set(rb["scripts"]):
        if span(ra["scripts"][k]) != span(rb["scripts"][k]):
            want.add(k + ".duration_ms")
else:
    def entry(m):
        p = db["models.files"].find_one({"_id": ObjectId(m)})["metadata"]["_nemesyst"]
        return db.nemesyst_runs.find_one({"_id": p["run"]})["scripts"]["%s-%d" % (p["stage"], p["position"])]
    if span(entry(a)) != span(entry(b)):
        want.add("script.duration_ms")
eq((rep["kind"], rep["a"], rep["b"]), ("run" if runs else "model", a, b), "what was compared")
got = [d["field"] for d in rep["differences"]]
eq(len(got), len(set(got)), "each field once")
eq(sorted(got), sorted(want), "the fields that differ")
eq((rep["same"], rep["differences_count"]), (not want, len(want)), "same and the count")
ok(rep["compared"] >= len(want) and rep["compared"] > 20, "%d fields compared" % rep["compared"])
PY
}

# ---- two runs: an option and a data document apart ----
reg diff "$RUN_A" "$RUN_B" --json
want_rc 1
fields "$RUN_A" "$RUN_B" "$ROUT" '["options.dl-batch-size", "learn-0.consumed.count", "learn-0.consumed.digest",
    "learn-0.metrics.seen", "learn-0.model.length", "learn-0.model.consumed[0].count",
    "learn-0.model.consumed[0].digest", "learn-0.model.metrics.seen", "learn-0.model.metrics.batch_sizes"]'
check dif "$ROUT" "$RUN_A" "$RUN_B" <<'PY'
import json
d = {x["field"]: (x["a"], x["b"]) for x in json.load(open(argv[0]))["differences"]}
ra, rb = (db.nemesyst_runs.find_one({"_id": x}) for x in argv[1:])
eq(d["options.dl-batch-size"], ([3], [4]), "the option (a list: one a learner)")
eq(d["learn-0.consumed.count"], (9, 10), "the documents the learner read")
eq(d["learn-0.consumed.digest"], (ra["scripts"]["learn-0"]["consumed"]["digest"],
                                  rb["scripts"]["learn-0"]["consumed"]["digest"]), "the digests, as recorded")
ma, mb = (db["models.files"].find_one({"metadata._nemesyst.run": x}) for x in argv[1:])
eq(d["learn-0.model.consumed[0].digest"], (ma["metadata"]["_nemesyst"]["consumed"][0]["digest"],
                                           mb["metadata"]["_nemesyst"]["consumed"][0]["digest"]), "the models' digests")
eq(d["learn-0.model.length"], (ma["length"], mb["length"]), "the models' lengths")
eq(d["learn-0.metrics.seen"], (9, 10), "the final value of the metric")
eq(d["learn-0.model.metrics.batch_sizes"], (3, 2), "the last batch")
PY
J="$ROUT"
reg diff "$RUN_A" "$RUN_B"
want_rc 1
grep -q "^A  run $RUN_A$" "$ROUT" || fail "the table names A"
grep -q "^B  run $RUN_B$" "$ROUT" || fail "the table names B"
grep -Eq '^field +A +B$' "$ROUT" || fail "the table's header"
grep -Eq '^options\.dl-batch-size +\[ 3 \] +\[ 4 \]$' "$ROUT" || fail "the table's option line"
grep -Eq '^learn-0\.consumed\.count +9 +10$' "$ROUT" || fail "the table's count line"
check dif "$ROUT" "$J" <<'PY'
import json
lines = open(argv[0]).read().split("\n")
head = lines.index(next(l for l in lines if l.startswith("field ")))
rows = [l.split()[0] for l in lines[head + 1:] if l.strip() and not l.startswith("different:")]
eq(rows, [d["field"] for d in json.load(open(argv[1]))["differences"]], "the table's fields, as --json's")
ok(lines[-2].startswith("different: %d of " % len(rows)), "the last line counts them: %r" % lines[-2])
PY

# ---- a run with itself ----
reg diff "$RUN_A" "$RUN_A"
want_rc 0
grep -Eq "^the same: run $RUN_A and run $RUN_A differ in none of the [0-9]+ fields compared$" "$ROUT" ||
    fail "diff of a run with itself"
reg diff "$RUN_B" "$RUN_B" --json
want_rc 0
check dif "$ROUT" <<'PY'
import json
rep = json.load(open(argv[0]))
eq((rep["same"], rep["differences"], rep["differences_count"]), (True, [], 0), "a run with itself")
PY

# ---- two models ----
reg diff "$MA" "$MB" --json
want_rc 1
fields "$MA" "$MB" "$ROUT" '["options.dl-batch-size", "length", "consumed[0].count", "consumed[0].digest",
    "metrics.seen", "metrics.batch_sizes", "script.consumed.count", "script.consumed.digest", "script.metrics.seen"]'
reg diff "$MA" "$MA"
want_rc 0
grep -Eq "^the same: model $MA and model $MA differ in none of the [0-9]+ fields compared$" "$ROUT" ||
    fail "diff of a model with itself"
# the retrained one: its parent and what retraining sets, not its data
reg diff "$MB" "$MC" --json
want_rc 1
fields "$MB" "$MC" "$ROUT" '["options.dl-input-model-collection", "options.dl-input-model-pipeline", "parent.id",
    "parent.bucket", "length"]'
check dif "$ROUT" "$MA" <<'PY'
import json
d = {x["field"]: (x["a"], x["b"]) for x in json.load(open(argv[0]))["differences"]}
eq(d["parent.id"], (None, argv[1]), "MC's parent is MA, MB has none")
PY
reg diff "$RUN_B" "$RUN_C" --json
want_rc 1
check dif "$ROUT" "$MA" <<'PY'
import json
d = {x["field"]: (x["a"], x["b"]) for x in json.load(open(argv[0]))["differences"]}
eq(d["learn-0.model.parent.id"], (None, argv[1]), "run C's model's parent")
ok(not [f for f in d if "consumed" in f or "metrics" in f], "the same data and metrics: %r" % sorted(d))
PY

vg diff "$RUN_A" "$RUN_B"
vg diff "$MB" "$MC" --json
vg diff "$RUN_A" "$RUN_A"

# ---- bad arguments ----
bad "diff needs two ids: two run ids .* or two model ids .*, not one" diff "$RUN_A"
bad "diff needs two ids" diff
bad "diff compares two runs or two models, not a run \('$RUN_A'\) with a model \('$MA'\)" diff "$RUN_A" "$MA"
bad "diff compares two runs or two models, not a model \('$MA'\) with a run \('$RUN_A'\)" diff "$MA" "$RUN_A"
bad "diff: malformed run or model id 'nothex'" diff "$RUN_A" nothex
bad "no run '20200101T000000Z-00000000'" diff "$RUN_A" 20200101T000000Z-00000000
bad "no model '000000000000000000000000' in any GridFS bucket of dif" diff 000000000000000000000000 "$MA"
bad "unexpected argument 'x' after diff" diff "$RUN_A" "$RUN_B" x
bad "--dot is for \`lineage\`, not \`diff\`" diff "$RUN_A" "$RUN_B" --dot
bad "--format is for \`export\`, not \`diff\`" diff "$RUN_A" "$RUN_B" --format prov-json
bad "no model '$MA' in bucket nobucket of dif" --bucket nobucket diff "$MA" "$MB"
echo "diff: ok"
