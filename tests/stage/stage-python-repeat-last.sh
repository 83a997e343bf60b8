#!/bin/bash
# Per-script options shorter than the script list repeat their last value (README "Usage") for original-style
# Python scripts too: the args the adapter gets (NEMESYST_ARGS_FILE) are padded to the script count, so an
# original-style learner at position 1 reading args["dl_batch_size"][1] with a single --dl-batch-size gets that
# value, not the IndexError the original raised.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
L="$FIX/original/mnist_learner.py"
stage_run 1 repeat --data-clean --data-cleaner "$FIX/original/mnist_cleaner.py" --data-collection mnist \
    --dl-learn --dl-learner "$L" "$L" --dl-batch-size 3 --dl-epochs 1 --dl-output-model-collection models
expect_rc 0
check repeat <<'PY'
eq(sorted(m["metadata"]["seen"] for m in models("models")), [8, 8], "both learners trained")
PY
