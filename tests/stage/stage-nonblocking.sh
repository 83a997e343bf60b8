#!/bin/bash
# The worker's loop never waits on one script: while one script of a round is stopped and rolled back (40,000
# documents, after bad output) the other script's pipe is still read. The steady writer times its own writes (each
# fills the pipe, so a write blocks while the host does not read) and goes on for 6 s after the failing script's
# mark (written just before its bad line); while that script is stopped and rolled back, up to its end in the run
# record, no write of the steady writer may stall for long.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
NEM_T_STEADY_S=6 NEM_T_COUNT=40000 NEM_T_MARK="$T/mark" stage_run 1 nonblock --process-pool 2 --data-clean \
    --data-cleaner "$FIX/steady_writer.sh" "$FIX/fail_after_many.sh" --data-collection steady many
expect_rc 4
check nonblock "$(cat "$T/mark")" <<'PY'
import datetime
mark = float(argv[0])
bad = script("clean-1")
eq(bad["status"], "failed", "the failing script")
eq(count("many"), 0, "its documents after the rollback")
rollback_s = bad["ended"].replace(tzinfo=datetime.timezone.utc).timestamp() - mark
last = db.steady.find_one({"stalls": {"$exists": True}})
ok(last is not None, "the steady writer finished")
eq(script("clean-0")["status"], "succeeded", "the steady writer")
end = mark + rollback_s
ok(rollback_s > 0.8, "the rollback took long enough to tell (%.2f s)" % rollback_s)
during = [x["s"] for x in last["stalls"] if x["t"] + x["s"] > mark and x["t"] < end]
ok(last["after_mark"] > 50, "the steady writer wrote on after the mark (%d writes)" % last["after_mark"])
ok(max(during, default=0) < min(0.5 * rollback_s, 1.0),
   "longest stall of the steady writer during the %.2f s rollback: %.3f s" % (rollback_s, max(during, default=0)))
PY
