#!/bin/bash
# Checkpoints, one learner of each kind (an executable, a Python script in 2.0.6's form, a C plugin), each the same
# deterministic training of 100 steps with a checkpoint every 25:
#   - uninterrupted: the reference weights and metric history;
#   - stopped at step 60 in its first attempt: the run fails, the 2 newest checkpoints (25, 50) are kept
#     (--dl-checkpoint-keep 2), then --resume goes on from step 50: the weights are bit-identical to the
#     reference, every step's metric appears once with the reference value, the record has two attempts and the
#     checkpoints are gone once the models are stored;
#   - a corrupt newest checkpoint: the previous one is loaded, with a warning naming the bad one, and the result is
#     still the reference; every checkpoint corrupt: the learner fails naming each one tried.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
CK="$FIX/checkpoint"
REGISTRY="$top_builddir/nemesyst-registry"
export NEM_T_STEPS=100 NEM_T_EVERY=25
learn() {
    local db=$1
    shift
    stage_run 0 "$db" --process-pool 3 --dl-learn --dl-learner "$CK/ckpt_exec" "$CK/ckpt_learner.py" "$PLUGIN" \
        --dl-learner-entry-point main main checkpoint --dl-output-model-collection models "$@"
}

learn ck_ref
expect_rc 0
NEM_T_DIE_AT=60 learn ck_stop
[ "$RC" -eq 4 ] || fail "a learner stopped at step 60: want exit 4, got $RC"
STOPPED=$RUN
check ck_stop <<'PY'
files = list(db["nemesyst_checkpoints.files"].find({"metadata.run": run["_id"]}))
for k in ("learn-0", "learn-1", "learn-2"):
    steps = sorted(f["metadata"]["step"] for f in files if f["metadata"]["script"] == k)
    eq(steps, [25, 50], k + ": the 2 newest checkpoints kept")
eq(sorted({f["metadata"]["attempt"] for f in files}), [1], "checkpoints of attempt 1")
eq([a["status"] for a in run["attempts"]], ["failed"], "one failed attempt")
for k in ("learn-0", "learn-1", "learn-2"):
    got = sorted(m["step"] for m in db["nemesyst_metrics"].find({"run": run["_id"], "script": k}))
    eq(got, list(range(1, 51)), k + ": metrics up to the newest checkpoint kept, the rest rolled back")
eq(db["models.files"].count_documents({}), 0, "no model of the failed learners")
# the listing's index (provenance.h nem_provenance_index_checkpoints), made by the host where checkpoints are stored
keys = [list(ix["key"].items()) for ix in db["nemesyst_checkpoints.files"].list_indexes()]
eq(keys.count([("metadata.run", 1), ("metadata.script", 1), ("metadata.step", -1)]), 1,
   "the checkpoints' listing index, once: %s" % keys)
PY

stage_run 0 ck_stop --resume "$STOPPED" --process-pool 3 --dl-learn --dl-learner "$CK/ckpt_exec" \
    "$CK/ckpt_learner.py" "$PLUGIN" --dl-learner-entry-point main main checkpoint --dl-output-model-collection models
expect_rc 0
grep -q "learn\[0\]: goes on from its checkpoint at step 50 (attempt 1)" "$ERR" ||
    fail "the executable did not go on from step 50"

# Compare with the uninterrupted run, byte for byte and step for step.
check ck_stop ck_ref <<'PY'
import struct, gridfs
ref = db.client[argv[0]]
for k, pos in (("learn-0", 0), ("learn-1", 1), ("learn-2", 2)):
    def model_of(d):
        f = d["models.files"].find_one({"metadata._nemesyst.position": pos})
        return gridfs.GridFS(d, collection="models").get(f["_id"]).read(), f["metadata"]
    got, meta = model_of(db)
    want, _ = model_of(ref)
    eq(got.hex(), want.hex(), k + ": weights bit-identical to the uninterrupted run's")
    eq(meta["started_at"], 50, k + ": went on from step 50")
    mine = [(m["step"], m["value"]) for m in db["nemesyst_metrics"].find({"run": run["_id"], "script": k}).sort("step", 1)]
    theirs = [(m["step"], m["value"]) for m in ref["nemesyst_metrics"].find({"script": k}).sort("step", 1)]
    eq(len(mine), 100, k + ": 100 metrics")
    eq(mine, theirs, k + ": every step once, with the uninterrupted run's value")
eq([a["status"] for a in run["attempts"]], ["failed", "succeeded"], "two attempts")
eq([a["n"] for a in run["attempts"]], [1, 2], "attempts numbered")
eq(db["nemesyst_checkpoints.files"].count_documents({"metadata.run": run["_id"]}), 0,
   "checkpoints removed once the models are stored")
eq(db["nemesyst_checkpoints.chunks"].count_documents({}), 0, "no chunk left behind")
PY

# The registry shows the attempts: the run's table and JSON, and the lineage of each model.
"$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name ck_stop run "$STOPPED" >"$T/run.txt" ||
    fail "registry run"
grep -A3 '^attempts:' "$T/run.txt"
grep -Eq '^ +1 +- +0 .* failed$' "$T/run.txt" && grep -Eq '^ +2 +- +0 .* succeeded$' "$T/run.txt" ||
    fail "registry run does not list both attempts: $(cat "$T/run.txt")"
"$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name ck_stop --json run "$STOPPED" >"$T/run.json"
"$PYTHON3" -c 'import json, sys; a = json.load(open(sys.argv[1]))["attempts"]; assert [(x["n"], x["status"]) for x in a] == [(1, "failed"), (2, "succeeded")], a' "$T/run.json" ||
    fail "registry run --json attempts"
model=$(NEM_T_DB=ck_stop "$PYTHON3" -c 'import os, pymongo; print(pymongo.MongoClient("127.0.0.1", int(os.environ["NEM_TEST_PORT"]))["ck_stop"]["models.files"].find_one({"metadata._nemesyst.position": 2})["_id"])')
"$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name ck_stop lineage "$model" >"$T/lineage.txt" ||
    fail "registry lineage"
grep -q "^attempts     2: 1 (on .*, failed), 2 (on .*, succeeded)$" "$T/lineage.txt" ||
    fail "the model's lineage does not show its two attempts: $(head -5 "$T/lineage.txt")"

# A corrupt newest checkpoint (its sha256 no longer matches; a missing chunk for the plugin's): the previous one.
NEM_T_DIE_AT=60 learn ck_bad
[ "$RC" -eq 4 ] || fail "ck_bad: want exit 4, got $RC"
BAD=$RUN
check ck_bad <<'PY'
files = db["nemesyst_checkpoints.files"]
for k in ("learn-0", "learn-1"):
    f = files.find_one({"metadata.run": run["_id"], "metadata.script": k, "metadata.step": 50})
    files.update_one({"_id": f["_id"]}, {"$set": {"metadata.sha256": "0" * 64}})
f = files.find_one({"metadata.run": run["_id"], "metadata.script": "learn-2", "metadata.step": 50})
eq(db["nemesyst_checkpoints.chunks"].delete_many({"files_id": f["_id"]}).deleted_count, 1, "a chunk removed")
PY
stage_run 0 ck_bad --resume "$BAD" --process-pool 3 --dl-learn --dl-learner "$CK/ckpt_exec" "$CK/ckpt_learner.py" \
    "$PLUGIN" --dl-learner-entry-point main main checkpoint --dl-output-model-collection models
expect_rc 0
for k in 0 1 2; do
    grep -q "passed over '$BAD/learn-$k/step-50'" "$ERR" || fail "learn-$k: no warning naming the bad checkpoint"
done
check ck_bad ck_ref <<'PY'
import gridfs
ref = db.client[argv[0]]
for k, pos in (("learn-0", 0), ("learn-1", 1), ("learn-2", 2)):
    f = db["models.files"].find_one({"metadata._nemesyst.position": pos})
    g = ref["models.files"].find_one({"metadata._nemesyst.position": pos})
    eq(gridfs.GridFS(db, collection="models").get(f["_id"]).read().hex(),
       gridfs.GridFS(ref, collection="models").get(g["_id"]).read().hex(), k + ": the reference weights from step 25")
    eq(f["metadata"]["started_at"], 25, k + ": went on from step 25")
    steps = [m["step"] for m in db["nemesyst_metrics"].find({"run": run["_id"], "script": k}).sort("step", 1)]
    eq(steps, list(range(1, 101)), k + ": every step once")
PY

# Every checkpoint unusable: the learner fails, naming each one tried.
NEM_T_DIE_AT=60 learn ck_none
NONE=$RUN
check ck_none <<'PY'
db["nemesyst_checkpoints.files"].update_many({}, {"$set": {"metadata.sha256": "0" * 64}})
PY
stage_run 0 ck_none --resume "$NONE" --process-pool 3 --dl-learn --dl-learner "$CK/ckpt_exec" \
    "$CK/ckpt_learner.py" "$PLUGIN" --dl-learner-entry-point main main checkpoint --dl-output-model-collection models
[ "$RC" -eq 4 ] || fail "no usable checkpoint: want exit 4, got $RC"
check ck_none <<'PY'
for k in ("learn-0", "learn-1", "learn-2"):
    err = script(k)["error"] or ""
    ok("no usable checkpoint of %s in run %s" % (k, run["_id"]) in err, k + ": the record says why: " + err[:300])
PY
for k in 0 1 2; do
    grep -q "no usable checkpoint of learn-$k in run $NONE: tried '$NONE/learn-$k/step-50' (its sha256 does not match what was saved); '$NONE/learn-$k/step-25' (its sha256" "$ERR" ||
        fail "learn-$k: the error does not name each checkpoint tried"
done
# Stopped another way: SIGTERM through nemesyst-mpirun while the learners run (2 ranks, the learners on rank 1).
# Each is asked to checkpoint (its stop file), saves at the step it is at and ends within --checkpoint-grace; the
# run is interrupted (143); --resume goes on from those steps to the reference weights.
WRAP="$top_srcdir/src/app/nemesyst-mpirun"
NEM_T_SLEEP_MS=40 "$PYTHON3" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$WRAP" -n 2 --oversubscribe "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name ck_term \
    --process-pool 3 --dl-learn --dl-learner "$CK/ckpt_exec" "$CK/ckpt_learner.py" "$PLUGIN" \
    --dl-learner-entry-point main main checkpoint --dl-output-model-collection models >"$T/term.out" 2>"$T/term.err" &
w=$!
# wait until every learner has stored its first checkpoint (step 25), then stop the job
for _ in $(seq 1 600); do
    n=$(NEM_T_DB=ck_term "$PYTHON3" -c 'import os, pymongo; print(pymongo.MongoClient("127.0.0.1", int(os.environ["NEM_TEST_PORT"]))[os.environ["NEM_T_DB"]]["nemesyst_checkpoints.files"].count_documents({}))' 2>/dev/null)
    [ "${n:-0}" -ge 3 ] && break
    sleep 0.05
done
[ "${n:-0}" -ge 3 ] || { cat "$T/term.err"; fail "the learners never stored their first checkpoints"; }
kill -TERM "$w"
RC=0; wait "$w" || RC=$?
sed 's/^/   stderr: /' "$T/term.err" | tail -n 20
[ "$RC" -eq 143 ] || fail "SIGTERM: want exit 143, got $RC"
TERMED=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$T/term.out" | tail -n 1)
grep -q "asked to checkpoint and end" "$T/term.err" || fail "the learners were not asked to checkpoint"
RUN=$TERMED check ck_term <<'PY'
eq(run["status"], "interrupted", "the run is interrupted")
files = list(db["nemesyst_checkpoints.files"].find({"metadata.run": run["_id"]}))
for k in ("learn-0", "learn-1", "learn-2"):
    steps = sorted(f["metadata"]["step"] for f in files if f["metadata"]["script"] == k)
    ok(steps and steps[-1] > 25 and steps[-1] < 100, k + ": checkpointed when asked, at step %s" % steps)
PY
NEM_T_SLEEP_MS=0 stage_run 0 ck_term --resume "$TERMED" --process-pool 3 --dl-learn --dl-learner "$CK/ckpt_exec" \
    "$CK/ckpt_learner.py" "$PLUGIN" --dl-learner-entry-point main main checkpoint --dl-output-model-collection models
expect_rc 0
check ck_term ck_ref <<'PY'
import gridfs
ref = db.client[argv[0]]
for k, pos in (("learn-0", 0), ("learn-1", 1), ("learn-2", 2)):
    f = db["models.files"].find_one({"metadata._nemesyst.position": pos})
    g = ref["models.files"].find_one({"metadata._nemesyst.position": pos})
    eq(gridfs.GridFS(db, collection="models").get(f["_id"]).read().hex(),
       gridfs.GridFS(ref, collection="models").get(g["_id"]).read().hex(), k + ": the reference weights after SIGTERM")
    ok(f["metadata"]["started_at"] > 25, k + ": went on from where it was stopped")
    steps = [m["step"] for m in db["nemesyst_metrics"].find({"run": run["_id"], "script": k}).sort("step", 1)]
    eq(steps, list(range(1, 101)), k + ": every step once")
eq([a["status"] for a in run["attempts"]], ["interrupted", "succeeded"], "two attempts")
PY
echo "stage-checkpoint: ok"
