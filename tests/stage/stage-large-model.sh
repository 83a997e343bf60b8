#!/bin/bash
# Models of any size, from every kind of script: a learner stores a model of 200 MiB of random bytes (its sha256 in
# the metadata), which is then read back by each way a script can read a stored model, in bounded memory and in
# replies far below every server's limit (a 255 KiB chunk times a server's default batch can be over pymongo's and
# libmongoc's message limits): Python predictors through the adapter's getFiles (the gridout read 1 MiB at a time,
# and with one read() as 2.0.6 documents), a C plugin through nemesyst_model_fetch, and an executable retraining
# from it (the host downloads it to NEMESYST_INPUT_MODEL). Every read-back has the model's sha256; peak memory is
# checked against the model's size. With one chunk deleted, each reader fails and says why, naming model and bucket.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
MB=200
export NEM_T_MODEL_MB=$MB NEM_T_COPY="$T/plugin-copy"
# Peak memory, KiB: a reader in pieces holds about one reply; a whole read or the plugin's buffer the model once.
export NEM_T_PIECES_KB=$((96 << 10)) NEM_T_WHOLE_KB=$(((MB + 96) << 10))
# AddressSanitizer keeps up to 256 MiB of freed memory in quarantine and pads every allocation: an instrumented C
# process's peak there is its own plus that (the Python readers are not instrumented). The C bounds then allow it.
NEM_T_ASAN_KB=0
grep -q -- '-fsanitize' Makefile 2>/dev/null && NEM_T_ASAN_KB=$(((256 + 64) << 10))
export NEM_T_ASAN_KB
learner="$FIX/large_model_learner" predictor="$FIX/large_model_predictor.py"

# The host's peak memory while it downloads the input model for the executable (its own reader, src/store/gridfs.c),
# measured by /usr/bin/time around plain nemesyst (one process, no mpirun) where there is one.
timed=$NEMESYST
if [ -x /usr/bin/time ]; then
    timed="$T/nemesyst"
    printf '#!/bin/sh\nexec /usr/bin/time -f %%M -o %q %q "$@"\n' "$T/host-rss" "$NEMESYST" >"$timed"
    chmod +x "$timed"
fi

SECONDS=0
stage_run 0 large --dl-learn --dl-learner "$learner" --dl-data-collection none --dl-output-model-collection big
expect_rc 0
echo "stored in ${SECONDS}s"

# predict COLLECTION: the three predictors at once, predictions into COLLECTION.
predict() {
    stage_run 1 large --i-predict --i-predictor "$predictor" "$PLUGIN" "$predictor" --process-pool 3 \
        --i-predictor-entry-point pieces fetch_copy whole --dl-output-model-collection big \
        --i-output-prediction-collection "$1"
}
# retrain BUCKET: the executable learner retraining from the newest model, its document into BUCKET.
retrain() {
    NEMESYST=$timed stage_run 0 large --dl-learn --dl-learner "$learner" --dl-data-collection none \
        --dl-output-model-collection "$1" --dl-input-model-collection big \
        --dl-input-model-pipeline '[{"$sort": {"uploadDate": -1}}]'
}

predict p
expect_rc 0
echo "read back by the predictors after ${SECONDS}s"
plugin_sha=$(sha256sum <"$NEM_T_COPY" | cut -d' ' -f1)
rm -f "$NEM_T_COPY"

retrain r
expect_rc 0
echo "read back by the executable after ${SECONDS}s"
host_rss=$(tail -n 1 "$T/host-rss" 2>/dev/null || echo 0)

check large "$plugin_sha" "$host_rss" <<'PY'
import os
plugin_sha, host_rss = argv[0], int(argv[1])
size = int(os.environ["NEM_T_MODEL_MB"]) << 20
pieces_kb, whole_kb = int(os.environ["NEM_T_PIECES_KB"]), int(os.environ["NEM_T_WHOLE_KB"])
(m,) = models("big")
want = m["metadata"]["sha256"]
eq((m["length"], m["metadata"]["len"]), (size, size), "stored model's length")
eq(count("big.chunks", {"files_id": m["_id"]}), (size + m["chunkSize"] - 1) // m["chunkSize"], "chunks stored")
got = {d["kind"]: d for d in docs("p")}
eq(sorted(got), ["plugin", "python-pieces", "python-whole"], "one prediction per predictor")
for kind in ("python-pieces", "python-whole"):
    eq((got[kind]["len"], got[kind]["sha256"], got[kind]["model_sha256"]), (size, want, want),
       kind + ": length and sha256 read back")
eq((got["plugin"]["len"], plugin_sha), (size, want), "plugin: length and sha256 read back")
for d in got.values():
    eq(d["_nemesyst"]["model"], m["_id"], d["kind"] + " prediction references the model")
asan_kb = int(os.environ.get("NEM_T_ASAN_KB") or 0)
plugin_kb = whole_kb + asan_kb
for kind, limit in (("python-pieces", pieces_kb), ("python-whole", whole_kb), ("plugin", plugin_kb)):
    print("%s: peak RSS %d KiB (model %d KiB)" % (kind, got[kind]["maxrss_kb"], size >> 10))
    ok(got[kind]["maxrss_kb"] < limit, "%s: peak RSS %d KiB under %d KiB" % (kind, got[kind]["maxrss_kb"], limit))
(e,) = docs("r")
eq((e["kind"], e["len"], e["sha256"], e["input"]), ("exec", size, want, {"id": m["_id"]}),
   "executable: NEMESYST_INPUT_MODEL's length and sha256, NEMESYST_INPUT_MODEL_ID")
if host_rss:
    print("host (download to a file): peak RSS %d KiB" % host_rss)
    ok(host_rss < pieces_kb + asan_kb, "host: peak RSS %d KiB under %d KiB" % (host_rss, pieces_kb + asan_kb))
PY

# A chunk lost in the middle: every reader fails, and its error names the model, the bucket and the missing chunk
# instead of handing out a short model.
check large <<'PY'
(m,) = models("big")
eq(db["big.chunks"].delete_one({"files_id": m["_id"], "n": 4}).deleted_count, 1, "chunk 4 deleted")
PY
predict p2
expect_rc 4
failed_predict=$RUN
retrain r2
expect_rc 4
check large "$failed_predict" <<'PY'
(m,) = models("big")
predict = db.nemesyst_runs.find_one({"_id": argv[0]})
for key, record in [("predict-%d" % p, predict) for p in range(3)] + [("learn-0", run)]:
    err = script(key, record)["error"] or ""
    ok(str(m["_id"]) in err and "large.big" in err and "chunk 4" in err,
       "%s's error names the model, the bucket and the chunk: %r" % (key, err))
eq(count("p2") + count("r2"), 0, "nothing stored from a model that cannot be read")
PY
echo "done in ${SECONDS}s"
