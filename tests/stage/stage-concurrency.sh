#!/bin/bash
# Scripts of one round really run at the same time: -n 1 --process-pool 3 with three cleaners that sleep 1 s;
# in the run record every script's start precedes every script's end (overlapping intervals, not wall-clock).
# The same across ranks: -n 4 --process-pool 1, three cleaners on three worker ranks. A pool of 100 on one rank
# runs and reports all 100 scripts (200 pipes) of its round.
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

# A large process pool: 100 scripts in one round on one rank all run and report.
many=()
for i in $(seq 100); do many+=("$FIX/clean.sh"); done
NEM_T_COUNT=1 stage_run 1 conc_many --process-pool 100 --data-clean --data-cleaner "${many[@]}" --data-collection m
expect_rc 0
check conc_many <<'PY'
eq(sum(1 for e in run["scripts"].values() if e["status"] == "succeeded"), 100, "scripts that succeeded")
eq(count("m"), 100, "documents")
iv = [interval("clean-%d" % p) for p in range(100)]
ok(max(s for s, e in iv) < max(e for s, e in iv), "one round")
PY
