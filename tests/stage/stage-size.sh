#!/bin/bash
# Rollback and resume at a size past any single-statement limit of the server (FerretDB's SQL backends fail a
# delete over about 32,000 ids): a cleaner that writes 40,000 documents and then fails is rolled back exactly,
# leaving another run's 40,000 documents in the same collection untouched; kept with --keep-partial, the same
# failure is purged by --resume, which then leaves exactly one copy of each document.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
N=40000
export NEM_T_COUNT=$N NEM_T_MARKER="$T/marker"
args=(--data-clean --data-cleaner "$FIX/many.sh" --data-collection big)

# Another run's documents, which no rollback may touch.
stage_run 1 size "${args[@]}"
expect_rc 0
first=$RUN

touch "$NEM_T_MARKER"
stage_run 1 size "${args[@]}"
expect_rc 4
grep -q "rollback failed" "$ERR" && fail "the rollback failed"
check size "$first" <<'PY'
eq(run["status"], "failed", "status of the failed run")
e = script("clean-0")
eq((e["status"], e["documents"]), ("failed", 0), "failed script: rolled back")
ok("rollback" not in (e["error"] or ""), "no rollback error: %r" % e["error"])
eq(count("big"), 40000, "documents left: exactly the other run's")
eq(count("big", of_run(argv[0])), 40000, "the other run's documents")
PY

stage_run 1 size "${args[@]}" --keep-partial
expect_rc 4
kept=$RUN
check size <<'PY'
eq(count("big", of_run()), 40000, "partial documents kept")
PY
rm -f "$NEM_T_MARKER"
stage_run 1 size "${args[@]}" --resume "$kept"
expect_rc 0
check size "$first" <<'PY'
eq(run["status"], "succeeded", "status after resume")
eq(count("big", of_run()), 40000, "documents of the resumed run: one copy each")
dups = list(db.big.aggregate([{"$match": of_run()}, {"$group": {"_id": "$i", "n": {"$sum": 1}}},
                              {"$match": {"n": {"$gt": 1}}}]))
eq(len(dups), 0, "documents stored twice")
eq(count("big"), 80000, "documents in the collection: both runs")
PY

# _id values of every type bracket (numbers, strings, ObjectIds, documents, ...) are all rolled back, and the same
# values stored by another run in another collection stay.
NEM_T_MARKER= stage_run 1 size --data-clean --data-cleaner "$FIX/mixed_ids.sh" --data-collection mixed
expect_rc 4
check size <<'PY'
eq(count("mixed"), 0, "documents of every _id type rolled back")
eq(script("clean-0")["documents"], 0, "documents in the run record")
PY
