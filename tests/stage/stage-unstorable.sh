#!/bin/bash
# Documents the embedded FerretDB (1.x) cannot store fail their script with one clear line naming the script, the
# document's number and the field, and the way out; not with the dropped connection ("Failed to read 4 bytes") the
# server answers NaN with. A 2.0.6-style pandas CSV cleaner on a CSV with one missing value (NaN to pandas), after
# two batches of good rows were already sent: exit 4, nothing of it left; the same CSV with missing values stored as
# null is stored whole. An executable and the C plugin with a nested array or a key with '.', a learner's model
# metadata and metric holding NaN, and 2.0.6's direct db.dump() get the same kind of message; the other scripts of
# the run are not touched.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
U="$FIX/unstorable"
"$PYTHON3" -c 'import pandas' 2>/dev/null || fail "pandas is not installed for $PYTHON3 (Debian: python3-pandas)"

# 2500 rows; the price of row 2345 is missing
"$PYTHON3" - "$T/prices.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("Date,Price,Volume\n")
    for i in range(1, 2501):
        f.write("2020-01-01 %02d:%02d,%s,%d\n" % (i // 60 % 24, i % 60, "" if i == 2345 else "%.2f" % (i / 4), i))
PY

stage_run 2 unstor_csv --data-clean --data-cleaner "$U/csv_cleaner.py" --data "$T/prices.csv" --data-collection prices
expect_rc 4
want="clean script #0 '$U/csv_cleaner.py': document 2345: field 'price' holds NaN, which the FerretDB server"
want+=" cannot store: store missing values as null, or use MongoDB (--db-engine mongod), which stores NaN"
grep -qF "$want" "$ERR" || fail "no log line: $want"
! grep -q "Failed to read" "$ERR" || fail "the connection was dropped"
check unstor_csv "$want" <<'PY'
e = script("clean-0")
eq((e["status"], e["error"]), ("failed", argv[0]), "clean-0: failed with the clear error")
eq(count("prices"), 0, "nothing of the failed cleaner left (two batches of 1000 had been sent)")
eq(e["documents"], 0, "documents in the run record")
PY
# With --keep-partial the rows before the bad one stay: they were sent, and the connection is still good.
stage_run 2 unstor_csv --keep-partial --data-clean --data-cleaner "$U/csv_cleaner.py" --data "$T/prices.csv" \
    --data-collection prices_kept
expect_rc 4
check unstor_csv <<'PY'
eq(count("prices_kept"), 2344, "the rows before the bad one, kept")
eq(count("prices_kept", {"volume": {"$gte": 2345}}), 0, "nothing from the bad row on")
PY

stage_run 2 unstor_csv --data-clean --data-cleaner "$U/csv_cleaner_null.py" --data "$T/prices.csv" \
    --data-collection prices
expect_rc 0
check unstor_csv <<'PY'
eq(count("prices"), 2500, "every row stored")
eq([(d["volume"], d["price"]) for d in docs("prices", {"volume": {"$in": [2344, 2345, 2346]}}, sort=[("volume", 1)])],
   [(2344, 586.0), (2345, None), (2346, 586.5)], "the missing price is null, its neighbours numbers")
PY

# Executables: two good documents, the bad one, one more. The learners: a model whose metadata holds NaN, a metric
# that is NaN.
mkexec() { # NAME LINE...
    local f="$T/$1"
    shift
    { echo '#!/bin/sh'; for line in "$@"; do printf "echo '%s'\n" "$line"; done; } >"$f"
    chmod +x "$f"
}
mkexec nested.sh '{"i": 1}' '{"i": 2}' '{"i": 3, "rows": [{"x": 1}, {"x": 2}, {"grid": [[1, 2], [3, 4]]}]}' '{"i": 4}'
mkexec dotkey.sh '{"i": 1}' '{"i": 2}' '{"i": 3, "meta": {"a.b": 1}}' '{"i": 4}'
echo weights >"$T/model.bin"
mkexec model_nan.sh "{\"\$nemesyst_model\": {\"path\": \"$T/model.bin\","\
" \"metadata\": {\"scores\": [0.5, {\"\$numberDouble\": \"NaN\"}]}}}"
mkexec metric_nan.sh '{"$nemesyst_metric": {"name": "loss", "step": 2, "value": 0.5}}' \
    '{"$nemesyst_metric": {"name": "loss", "step": 3, "value": {"$numberDouble": "NaN"}}}'
cleaners=("$T/nested.sh" "$T/dotkey.sh" "$PLUGIN" "$PLUGIN" "$U/dump_nan.py" "$FIX/clean.sh")
stage_run 3 unstor_kinds --process-pool 4 \
    --data-clean --data-cleaner "${cleaners[@]}" --data-collection c_nested c_dot p_array p_key c_dump c_ok \
    --data-cleaner-entry-point main main unstorable_array unstorable_key main main \
    --dl-learn --dl-learner "$T/model_nan.sh" "$T/metric_nan.sh" --dl-data-collection none \
    --dl-output-model-collection m_nan m_metric
expect_rc 4
! grep -q "Failed to read" "$ERR" || fail "a connection was dropped"
check unstor_kinds "$T" "$PLUGIN" "$U" <<'PY'
t, plugin, u = argv
tail = ", which the FerretDB server cannot store: "
want = {
    "clean-0": "clean script #0 '%s/nested.sh': document 3: field 'rows.2.grid.0' is an array inside an array "
               "(a nested array)%sstore the inner arrays as documents or flatten them, or use MongoDB "
               "(--db-engine mongod), which stores it" % (t, tail),
    "clean-1": "clean script #1 '%s/dotkey.sh': document 3: field 'meta.a.b' has a key that contains '.'%srename "
               "the key, or use MongoDB 5.0 or later (--db-engine mongod), which stores it" % (t, tail),
    "clean-2": "clean script #2 '%s': document 3: field 'rows.1.grid.0' is an array inside an array" % plugin,
    "clean-3": "clean script #3 '%s': document 3: field 'meta.a.b' has a key that contains '.'" % plugin,
    "clean-4": "dump 2 into dumped: field 'rows.1.price' holds NaN%sstore missing values as null (None), or use "
               "MongoDB (--db-engine mongod), which stores NaN" % tail,
    "learn-0": "learn script #0 '%s/model_nan.sh': model 1: field 'metadata.scores.1' holds NaN%s" % (t, tail),
    "learn-1": "learn script #1 '%s/metric_nan.sh': metric 'loss' at step 3 is NaN%slog a finite value, or use "
               "MongoDB (--db-engine mongod), which stores it" % (t, tail),
}
for key, msg in want.items():
    e = script(key)
    eq(e["status"], "failed", key + " status")
    ok(msg in (e["error"] or ""), "%s's error %r holds %r" % (key, e["error"], msg))
    ok("\n" not in e["error"], key + "'s error is one line")
ok(script("clean-4")["error"].startswith("clean script #4 '%s/dump_nan.py'" % u), "the dump's error names the script")
for coll in ("c_nested", "c_dot", "p_array", "p_key", "m_nan.files", "m_nan.chunks", "m_metric.files"):
    eq(count(coll), 0, coll + ": nothing of its failed script left")
eq(count("nemesyst_metrics", {"script": "learn-1"}), 0, "the failed learner's metrics are gone")
eq(count("dumped"), 1, "db.dump wrote the good row directly, and not the bad one")
eq((script("clean-5")["status"], count("c_ok")), ("succeeded", 7), "the good cleaner's documents")
PY
