#!/bin/bash
# Round and stage order from the run record: -n 3 --process-pool 1 (rounds of 2) with 5 cleaners: round r+1
# starts only after every script of round r ended; no learner starts before every cleaner ended, no predictor
# before every learner ended; the 2 scripts of a round overlap (they run on the 2 worker ranks at once).
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
c="$FIX/clean.sh"
NEM_T_SLEEP=0.5 NEM_T_COUNT=3 stage_run 3 order --process-pool 1 \
    --data-clean --data-cleaner "$c" "$c" "$c" "$c" "$c" --data-collection d \
    --dl-learn --dl-learner "$FIX/learn_exec" "$FIX/learn_exec" --dl-data-collection d \
    --dl-output-model-collection m \
    --i-predict --i-predictor "$FIX/predict_exec" "$FIX/predict_exec" --i-output-prediction-collection p
expect_rc 0
check order <<'PY'
rounds = [[0, 1], [2, 3], [4]]
for r in range(len(rounds) - 1):
    ended = max(interval("clean-%d" % p)[1] for p in rounds[r])
    started = min(interval("clean-%d" % p)[0] for p in rounds[r + 1])
    ok(ended <= started, "round %d (%s) starts after round %d ended (%s)" % (r + 1, started, r, ended))
for r in rounds[:2]:
    (s0, e0), (s1, e1) = interval("clean-%d" % r[0]), interval("clean-%d" % r[1])
    ok(max(s0, s1) < min(e0, e1), "the two scripts of round %s overlap" % r)
    eq({script("clean-%d" % p)["rank"] for p in r}, {1, 2}, "ranks of round %s" % r)
for prev, nxt, n_prev, n_next in [("clean", "learn", 5, 2), ("learn", "predict", 2, 2)]:
    ended = max(interval("%s-%d" % (prev, p))[1] for p in range(n_prev))
    started = min(interval("%s-%d" % (nxt, p))[0] for p in range(n_next))
    ok(ended <= started, "no %s script starts (%s) before every %s script ended (%s)" % (nxt, started, prev, ended))
eq(count("d"), 15, "cleaned documents")
eq([m["metadata"]["seen"] for m in models("m")], [15, 15], "each learner saw every cleaned document")
eq(count("p"), 6, "predictions")
PY
