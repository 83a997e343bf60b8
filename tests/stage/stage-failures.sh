#!/bin/bash
# Failure containment: a crash (signal), a non-zero exit, a timeout, malformed output, a document over 16 MiB and a
# crashing C plugin each fail only that script, with an error naming the script and its position (and the line of
# bad output), in the run record and the summary; exit status 4; the failed scripts' partial documents are removed
# while the other scripts' documents are all there. With --keep-partial the partial documents stay.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
scripts=("$FIX/clean.sh" "$FIX/crash.sh" "$FIX/exit3.sh" "$FIX/hang.sh" "$FIX/malformed.sh" "$FIX/too_big"
         "$PLUGIN" "$FIX/clean.sh")
colls=(ok0 crash exit3 hang malformed too_big plugin_crash ok7)
for mode in rollback keep; do
    extra=()
    [ $mode = keep ] && extra=(--keep-partial)
    NEM_T_COUNT=5 stage_run 3 "fail_$mode" --process-pool 4 --script-timeout 2 "${extra[@]}" \
        --data-clean --data-cleaner "${scripts[@]}" --data-collection "${colls[@]}" \
        --data-cleaner-entry-point main main main main main main crash main --summary-json "$T/summary-$mode.json"
    expect_rc 4
    for pat in "clean script #1 .*crash.sh.*(SIGSEGV|signal)" "clean script #2 .*exit3.sh.*status 3" \
               "clean script #3 .*hang.sh.*time" "clean script #4 .*malformed.sh.*line 3" \
               "clean script #5 .*too_big.*line 3.*16 MiB" "clean script #6 .*plugin_fixture.so.*(SIGSEGV|signal)"; do
        grep -Eq "$pat" "$ERR" || fail "no log line matching '$pat'"
    done
    check "fail_$mode" "$mode" "$T/summary-$mode.json" "${scripts[@]}" <<'PY'
import json, re
mode, summary, scripts = argv[0], argv[1], argv[2:]
eq(run["status"], "failed", "run status")
ok("6 script(s) failed" in (run.get("error") or ""), "the run record says why: %r" % run.get("error"))
why = {1: r"(SIGSEGV|signal)", 2: r"status 3.*giving up", 3: r"tim", 4: r"line 3", 5: r"line 3.*16 MiB",
       6: r"(SIGSEGV|signal)"}
for p in range(8):
    e = script("clean-%d" % p)
    if p in (0, 7):
        eq((e["status"], e["error"], e["documents"]), ("succeeded", None, 5), "clean-%d entry" % p)
        continue
    eq(e["status"], "failed", "clean-%d status" % p)
    msg = e["error"] or ""
    ok(("#%d" % p) in msg and scripts[p] in msg and re.search(why[p], msg),
       "clean-%d error names the script, its position and why: %r" % (p, msg))
    # partial documents: all gone, or all kept with --keep-partial
    # (the plugin library buffers items, so what a crashing plugin emitted may never have reached the host)
    want = 0 if mode != "keep" else e["documents"] if p == 6 else 2
    ok(want <= 2, "clean-%d kept at most what it emitted" % p)
    eq(count(["ok0", "crash", "exit3", "hang", "malformed", "too_big", "plugin_crash", "ok7"][p]), want,
       "documents of failed clean-%d (%s)" % (p, mode))
    eq(e["documents"], want, "clean-%d documents in the run record" % p)
eq((count("ok0"), count("ok7")), (5, 5), "the other scripts' documents")
eq(count("ok0", of_run()), 5, "ok0 documents carry the run")
s = json.load(open(summary))
eq((s["status"], s["scripts_total"], s["scripts_failed"]), ("failed", 8, 6), "summary json")
PY
done

# A failed learner's models (files and chunks) and a failed predictor's predictions are rolled back too; the
# successful learner's model and predictor's predictions stay; a later stage still runs after a failure.
stage_run 2 fail_stages --process-pool 2 \
    --dl-learn --dl-learner "$FIX/learn_fail.sh" "$PLUGIN" --dl-learner-entry-point main learn \
    --dl-data-collection none --dl-output-model-collection doomed kept \
    --i-predict --i-predictor "$FIX/predict_fail.sh" "$PLUGIN" --i-predictor-entry-point main predict \
    --dl-output-model-collection doomed kept --i-output-prediction-collection p_doomed p_kept
expect_rc 4
check fail_stages <<'PY'
eq([script(k)["status"] for k in ("learn-0", "learn-1", "predict-0", "predict-1")],
   ["failed", "succeeded", "failed", "succeeded"], "scripts")
ok("status 1: diverged" in script("learn-0")["error"], "learn-0's error: %r" % script("learn-0")["error"])
eq((count("doomed.files"), count("doomed.chunks")), (0, 0), "the failed learner's model files and chunks")
eq(count("kept.files"), 1, "the other learner's model")
eq((count("p_doomed"), count("p_kept")), (0, 3), "predictions of the failed and the successful predictor")
PY
