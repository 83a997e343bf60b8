#!/bin/bash
# A C plugin that fails (returns false with its own bson_error_t) after using the database: the script's error in
# the run record carries the plugin's message, not a library warning printed at exit.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
stage_run 1 plugerr --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point refuse --data-collection c
expect_rc 4
check plugerr <<'PY'
e = script("clean-0")
ok("#0" in e["error"] and "plugin says no" in e["error"], "the plugin's error in the run record: %r" % e["error"])
PY
