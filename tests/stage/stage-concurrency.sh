#!/bin/bash
# Scripts of one round really run at the same time: -n 1 --process-pool 3 with three cleaners that sleep 1 s;
# in the run record every script's start precedes every script's end (overlapping intervals, not wall-clock).
# The same across ranks: -n 4 --process-pool 1, three cleaners on three worker ranks.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
for np in 1 4; do
    pool=$((np == 1 ? 3 : 1))
    NEM_T_SLEEP=1 NEM_T_COUNT=2 stage_run $np conc_n$np --process-pool $pool --data-clean \
        --data-cleaner "$FIX/clean.sh" "$FIX/clean.sh" "$FIX/clean.sh" --data-collection a b c
    expect_rc 0
    check conc_n$np $np <<'PY'
iv = [interval("clean-%d" % p) for p in range(3)]
ok(max(s for s, e in iv) < min(e for s, e in iv),
   "every start precedes every end: %s" % [(s.isoformat(), e.isoformat()) for s, e in iv])
eq(sorted(script("clean-%d" % p)["rank"] for p in range(3)), [0, 0, 0] if argv[0] == "1" else [1, 2, 3],
   "ranks that ran the three scripts")
for c in "abc":
    eq(count(c), 2, "documents in " + c)
PY
done
