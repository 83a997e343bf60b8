#!/bin/bash
# Nothing lost behind a success: scripts that emit documents and then end their own process with status 0
# (a C plugin through exit(0) and _exit(0), a Python script through os._exit(0)) fail with a message saying so,
# are rolled back, and the run exits 4; a well-behaved script beside them still succeeds with all its documents.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
stage_run 2 early --process-pool 4 --data-clean \
    --data-cleaner "$PLUGIN" "$PLUGIN" "$FIX/os_exit.py" "$PLUGIN" \
    --data-cleaner-entry-point exit_early quit_early main clean \
    --data-collection e0 e1 e2 ok3
expect_rc 4
check early <<'PY'
eq(run["status"], "failed", "run status")
for p in range(3):
    e = script("clean-%d" % p)
    eq(e["status"], "failed", "clean-%d status" % p)
    ok("before its output was complete" in (e["error"] or ""), "clean-%d error: %r" % (p, e["error"]))
    eq((e["documents"], count("e%d" % p)), (0, 0), "clean-%d documents (rolled back)" % p)
e = script("clean-3")
eq((e["status"], e["documents"], count("ok3")), ("succeeded", 13, 13), "the well-behaved plugin")
PY
