#!/bin/bash
# Exactly-once resume: of three cleaners, position 1 fails the first time (after writing 2 documents) because a
# marker file exists; the run exits 4; `--resume RUN_ID` (marker gone) reruns only that script, in the same run,
# and afterwards each document exists exactly once and the run record says succeeded. Twice: once with the
# failed script's partial documents rolled back, once with them kept (--keep-partial), which resume must purge.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
export NEM_T_RUNLOG="$T/runs.log" NEM_T_MARKER="$T/marker"
: >"$NEM_T_RUNLOG"
# Only position 1 sees the marker: the others get a path that never exists (per-script environment by wrapper).
cat >"$T/flaky_other.sh" <<EOS
#!/bin/sh
NEM_T_MARKER=$T/never exec "$FIX/flaky.sh"
EOS
chmod +x "$T/flaky_other.sh"
for mode in rollback keep; do
db=resume_$mode
extra=()
[ $mode = keep ] && extra=(--keep-partial)
: >"$NEM_T_RUNLOG"
touch "$NEM_T_MARKER"
args=(--process-pool 2 --data-clean --data-cleaner "$T/flaky_other.sh" "$FIX/flaky.sh" "$T/flaky_other.sh"
      --data-collection c)
stage_run 2 $db "${args[@]}" "${extra[@]}"
expect_rc 4
first=$RUN
grep -q "clean script #1 .*flaky.sh.*status 1: marker .* present: failing" "$ERR" || fail "no error for clean[1]"
check $db $mode <<'PY'
eq(run["status"], "failed", "first try's status")
eq([script("clean-%d" % p)["status"] for p in range(3)], ["succeeded", "failed", "succeeded"], "first try")
eq(count("c"), 4 if argv[0] == "rollback" else 6, "documents after the first try (%s)" % argv[0])
PY
rm -f "$NEM_T_MARKER"
stage_run 2 $db "${args[@]}" --resume "$first"
expect_rc 0
[ "$RUN" = "$first" ] || fail "resume reported run '$RUN', want '$first'"
eq_runs=$(sort "$NEM_T_RUNLOG" | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')
[ "$eq_runs" = "clean-0=1 clean-1=2 clean-2=1 " ] || fail "scripts ran: $eq_runs (want clean-1 twice, others once)"
check $db $mode <<'PY'
eq(run["status"], "succeeded", "status after resume")
eq(run.get("error"), None, "error after resume")
eq([script("clean-%d" % p)["status"] for p in range(3)], ["succeeded"] * 3, "scripts after resume")
eq(count("c"), 6, "documents after resume")
for p in range(3):
    for n in (1, 2):
        eq(count("c", {"pos": p, "n": n}), 1, "copies of document n=%d of clean-%d" % (n, p))
eq(count("c", of_run()), 6, "documents of the run")
eq(db.nemesyst_runs.count_documents({}), 1, "run records (resume reuses the run)")
PY
done

# A run recorded in the first stamp format (before stamp_format 2: {run, stage, script, position} on every document)
# resumes exactly once too: the first try's documents are turned into that format, as an older nemesyst wrote them,
# with --keep-partial so the failed script's two documents are there for the resume to remove.
: >"$NEM_T_RUNLOG"
touch "$NEM_T_MARKER"
stage_run 2 resume_legacy "${args[@]}" --keep-partial
expect_rc 4
first=$RUN
check resume_legacy "$FIX/flaky.sh" "$T/flaky_other.sh" <<'PY'
flaky, other = argv
eq(count("c"), 6, "documents after the first try")
for p in range(3):
    path = flaky if p == 1 else other
    db.c.update_many({"_nemesyst": {"s": stamp("clean-%d" % p)}},
                     {"$set": {"_nemesyst": {"run": RUN, "stage": "clean", "script": path, "position": p}}})
    db.nemesyst_runs.update_one({"_id": RUN}, {"$unset": {"scripts.clean-%d.stamp" % p: ""}})
db.nemesyst_runs.update_one({"_id": RUN}, {"$unset": {"stamp_format": ""}})
eq(count("c", {"_nemesyst.run": RUN}), 6, "documents in the first format")
PY
rm -f "$NEM_T_MARKER"
stage_run 2 resume_legacy "${args[@]}" --resume "$first"
expect_rc 0
check resume_legacy <<'PY'
eq(run["status"], "succeeded", "status after resuming a first-format run")
eq(run.get("stamp_format"), None, "the run keeps its format")
eq(count("c"), 6, "documents after resume")
for p in range(3):
    for n in (1, 2):
        eq(count("c", {"pos": p, "n": n, "_nemesyst.run": RUN, "_nemesyst.position": p}), 1,
           "first-format copies of document n=%d of clean-%d" % (n, p))
PY

# Resuming a run that does not exist is a usage error naming the database, and starts nothing.
stage_run 1 resume_none --data-clean --data-cleaner "$FIX/clean.sh" --data-collection c --resume 20990101T000000Z-nope
expect_rc 2
grep -q "no run '20990101T000000Z-nope' in resume_none.nemesyst_runs" "$ERR" || fail "unclear error for an unknown run"
check resume_none <<'PY'
eq(count("c"), 0, "documents after a refused resume")
PY
