#!/bin/bash
# --provenance=false: stored documents carry no _nemesyst field; a failed script's documents cannot be told apart,
# so they stay and its run-record error says that the rollback failed.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
stage_run 2 provoff --provenance=false --data-clean --data-cleaner "$FIX/clean.sh" "$FIX/exit3.sh" \
    --data-collection a b
expect_rc 4
check provoff <<'PY'
eq(count("a"), 7, "documents of the successful script")
eq(count("a", {"_nemesyst": {"$exists": True}}), 0, "documents with a provenance field")
eq(count("b"), 2, "documents of the failed script")
e = script("clean-1")
ok("status 3" in e["error"] and "rollback failed" in e["error"] and "--provenance=false" in e["error"],
   "clean-1's error says its documents stay: %r" % e["error"])
eq(e["documents"], 2, "clean-1 documents in the run record")
PY
