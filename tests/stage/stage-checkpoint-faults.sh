#!/bin/bash
# Checkpoints under faults (issue 19's proof):
#   - rank 0 SIGKILLed while the learners run: the run is left "running" with its rank 0 gone, --resume at once
#     takes it over (this host saw its rank 0 end) and goes on from the checkpoints to the uninterrupted weights;
#   - a 200 MiB training state, saved from a file-like object and loaded back by a resumed attempt, byte for byte;
#     a --resume that changes a learner's option is refused, naming it;
#   - a save while the server is down raises an error the script can catch and act on, in bounded time.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
CK="$FIX/checkpoint"
export NEM_T_STEPS=100 NEM_T_EVERY=25
LEARN=(--process-pool 3 --dl-learn --dl-learner "$CK/ckpt_exec" "$CK/ckpt_learner.py" "$PLUGIN"
       --dl-learner-entry-point main main checkpoint --dl-output-model-collection models)

stage_run 0 cf_ref "${LEARN[@]}"
expect_rc 0

# --- rank 0 SIGKILLed ---
NEM_T_SLEEP_MS=40 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name cf_kill "${LEARN[@]}" \
    >"$T/kill.out" 2>"$T/kill.err" &
r0=$!
for _ in $(seq 1 600); do
    n=$(NEM_T_DB=cf_kill "$PYTHON3" -c 'import os, pymongo; print(pymongo.MongoClient("127.0.0.1", int(os.environ["NEM_TEST_PORT"]))[os.environ["NEM_T_DB"]]["nemesyst_checkpoints.files"].count_documents({}))' 2>/dev/null)
    [ "${n:-0}" -ge 3 ] && break
    sleep 0.05
done
[ "${n:-0}" -ge 3 ] || { cat "$T/kill.err"; fail "the learners never stored their first checkpoints"; }
# rank 0's processes below it (the learners and what runs them), taken before it goes: they are reparented then
below=()
descend() { local c; for c in $(ps -o pid= --ppid "$1"); do below+=("$c"); descend "$c"; done; }
descend "$r0"
[ "${#below[@]}" -ge 3 ] || fail "rank 0 runs ${#below[@]} processes, not its 3 learners: ${below[*]}"
kill -KILL "$r0"
RC=0; wait "$r0" || RC=$?
[ "$RC" -eq 137 ] || fail "rank 0 SIGKILLed: want 137, got $RC"
KILLED=$(sed -n 's/.* info: run \([^ ]*\)$/\1/p' "$T/kill.err" | head -n 1)
[ -n "$KILLED" ] || { cat "$T/kill.err"; fail "no run id in the log"; }
# the learners' guards end them once rank 0 is gone: wait until none of those processes is left (a zombie counts as
# gone), for at most 30 s
gone=
for _ in $(seq 1 300); do
    left=0
    for p in "${below[@]}"; do
        st=$(ps -o stat= -p "$p" 2>/dev/null)
        case $st in '' | Z*) ;; *) left=$((left + 1)) ;; esac
    done
    [ "$left" -eq 0 ] && { gone=1; break; }
    sleep 0.1
done
[ -n "$gone" ] || fail "$left of rank 0's ${#below[@]} processes still run 30 s after it was killed: ${below[*]}"
RUN=$KILLED check cf_kill <<'PY'
eq(run["status"], "running", "the record of a run whose rank 0 was killed still says running")
ok(db["nemesyst_checkpoints.files"].count_documents({"metadata.run": run["_id"]}) >= 3, "its checkpoints are kept")
PY
NEM_T_SLEEP_MS=0 stage_run 0 cf_kill --resume "$KILLED" "${LEARN[@]}"
expect_rc 0
grep -q "that run was lost" "$ERR" || fail "the resume did not say the run was lost"
RUN=$KILLED check cf_kill cf_ref <<'PY'
import gridfs
ref = db.client[argv[0]]
for k, pos in (("learn-0", 0), ("learn-1", 1), ("learn-2", 2)):
    f = db["models.files"].find_one({"metadata._nemesyst.position": pos})
    g = ref["models.files"].find_one({"metadata._nemesyst.position": pos})
    eq(gridfs.GridFS(db, collection="models").get(f["_id"]).read().hex(),
       gridfs.GridFS(ref, collection="models").get(g["_id"]).read().hex(), k + ": the reference weights after SIGKILL")
    ok(f["metadata"]["started_at"] >= 25, k + ": went on from a checkpoint, not from step 0")
    steps = [m["step"] for m in db["nemesyst_metrics"].find({"run": run["_id"], "script": k}).sort("step", 1)]
    eq(steps, list(range(1, 101)), k + ": every step once")
eq(run["status"], "succeeded", "the run finished")
eq(len(run["attempts"]), 2, "two attempts")
eq(run["attempts"][-1]["status"], "succeeded", "the second attempt succeeded")
PY

# --- a 200 MiB state ---
cat >"$T/big_state.py" <<'EOF_PY'
# First attempt: saves a 200 MiB state from a file object, then fails; the resumed attempt loads it back and stores
# its sha256 as the model.
import hashlib, os, tempfile

def main(**kwargs):
    db = kwargs["db"]
    got = db.load_checkpoint()
    if got is None:
        block = hashlib.sha256(b"nemesyst").digest() * (1 << 15)  # 1 MiB of a fixed pattern
        with tempfile.TemporaryFile() as f:
            for i in range(200):
                f.write(block[i % 32:] + block[:i % 32])
            f.seek(0)
            db.save_checkpoint(f, 7, {"mib": 200})
        raise RuntimeError("stopped after the checkpoint (test)")
    data, step, meta = got
    if not isinstance(data, (bytes, bytearray)):
        data = data.read()
    yield {"model": "big", "step": step, "meta": meta, "bytes": len(data)}, hashlib.sha256(data).hexdigest().encode()
EOF_PY
stage_run 0 cf_big --dl-learn --dl-learner "$T/big_state.py" --dl-output-model-collection models
[ "$RC" -eq 4 ] || fail "the big learner's first attempt: want exit 4, got $RC"
BIG=$RUN
WANT=$("$PYTHON3" -c '
import hashlib
block = hashlib.sha256(b"nemesyst").digest() * (1 << 15)
h = hashlib.sha256()
for i in range(200):
    h.update(block[i % 32:] + block[:i % 32])
print(h.hexdigest())')
RUN=$BIG WANT=$WANT check cf_big <<'PY'
import os
f = db["nemesyst_checkpoints.files"].find_one({"metadata.run": run["_id"]})
eq(f["length"], 200 << 20, "the stored state is 200 MiB")
eq(f["metadata"]["sha256"], os.environ["WANT"], "its recorded sha256")
PY
# A learner goes on from its checkpoint only with the options it was trained with: a changed one is named.
stage_run 0 cf_big --resume "$BIG" --dl-learn --dl-learner "$T/big_state.py" --dl-output-model-collection models \
    --dl-batch-size 64
expect_rc 2
grep -q -- "--resume $BIG: --dl-batch-size was \[ 32 \] in that run, now \[ 64 \]" "$ERR" ||
    fail "a changed learner option was not named"
stage_run 0 cf_big --resume "$BIG" --dl-learn --dl-learner "$T/big_state.py" --dl-output-model-collection models
expect_rc 0
RUN=$BIG WANT=$WANT check cf_big <<'PY'
import os, gridfs
f = db["models.files"].find_one({})
eq(gridfs.GridFS(db, collection="models").get(f["_id"]).read().decode(), os.environ["WANT"],
   "the resumed attempt loaded the 200 MiB state byte for byte")
eq(f["metadata"]["step"], 7, "at its step")
eq(f["metadata"]["meta"], {"mib": 200}, "with its metadata")
eq(db["nemesyst_checkpoints.files"].count_documents({}), 0, "the checkpoint removed once the model is stored")
PY

# --- a save while the server is down ---
# a server of this test's own, which it kills (the shared test server must live on)
export NEMESYST_FERRETDB=$("$top_srcdir/build-aux/build-ferretdb.sh" --print-path)
PORT=$(nem_random_port)
printf 'pa55word\n' >"$T/pw" && chmod 600 "$T/pw"
trap '[ -f "$T/sdb/nemesyst.pid" ] && kill -KILL "$(head -n1 "$T/sdb/nemesyst.pid")" 2>/dev/null; rm -rf "$T"' EXIT
cat >"$T/save_down.py" <<EOF_PY
# Saves one checkpoint, waits until the test has stopped the server, then tries another and reports what it got.
import os, time

def main(**kwargs):
    db = kwargs["db"]
    db.save_checkpoint(b"one", 1)
    open("$T/saved", "w").close()
    for _ in range(1200):
        if os.path.exists("$T/down"):
            break
        time.sleep(0.05)
    t = time.monotonic()
    try:
        db.save_checkpoint(b"two", 2)
        outcome = "stored"
    except Exception as e:  # what a script does with it: report, and end cleanly
        outcome = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
    with open("$T/outcome", "w") as f:
        f.write("%.1f %s\n" % (time.monotonic() - t, outcome))
    raise SystemExit("the server is down (test)")
EOF_PY
args=(--db-engine ferretdb --db-path "$T/sdb" --db-log-path "$T/sdb/log" --db-ip 127.0.0.1 --db-port "$PORT"
      --db-name sd --db-user-name alice --db-password-file "$T/pw")
"$NEMESYST" "${args[@]}" --db-init --db-start 2>"$T/sd0" || { cat "$T/sd0"; fail "init and start"; }
"$NEMESYST" "${args[@]}" --dl-learn --dl-learner "$T/save_down.py" --dl-output-model-collection models \
    >"$T/sd.out" 2>"$T/sd.err" &
job=$!
for _ in $(seq 1 1200); do [ -e "$T/saved" ] && break; sleep 0.05; done
[ -e "$T/saved" ] || { cat "$T/sd.err"; fail "the learner never saved its first checkpoint"; }
# and until the host has committed it: its commit, after the script's save returned, needs the server too
for _ in $(seq 1 600); do
    c=$("$PYTHON3" -c 'import sys, pymongo
d = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), username="alice", password="pa55word", authSource="sd",
                        serverSelectionTimeoutMS=2000).sd
print(d["nemesyst_checkpoints.files"].count_documents({"metadata.pending": {"$ne": True}}))' "$PORT" 2>/dev/null)
    [ "${c:-0}" -ge 1 ] && break
    sleep 0.1
done
[ "${c:-0}" -ge 1 ] || { cat "$T/sd.err"; fail "the host never committed the learner's first checkpoint"; }
kill -KILL "$(head -n1 "$T/sdb/nemesyst.pid")"
touch "$T/down"
RC=0; wait "$job" || RC=$?
[ -s "$T/outcome" ] || { cat "$T/sd.err"; fail "the script got no answer from save_checkpoint"; }
cat "$T/outcome"
read -r secs what <"$T/outcome"
case $what in stored*) fail "a save while the server is down was reported stored" ;; esac
[ -n "$what" ] || fail "the error has no message"
awk -v s="$secs" 'BEGIN { exit !(s < 60) }' || fail "the failed save took ${secs} s"
[ "$RC" -ne 0 ] || fail "the run succeeded with its server down"
echo "stage-checkpoint-faults: ok"
