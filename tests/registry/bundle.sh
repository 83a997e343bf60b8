#!/bin/bash
# nemesyst-registry bundle and import: runs moved between two stores, exactly once (tests/registry.mk).
# Store A is the shared test server (database bun): run 1 cleans 9 documents into `data`, learns m0 through
# [$match i >= 5] and predicts with it (preds); run 2 retrains m0 into `retrained` through [$match i < 2] and predicts
# (preds2); run 3 is a learner group of 2 over data (mg). Store B is a second FerretDB this test starts on a free port
# (nemesyst --db-init --db-start, stopped by its pid file at the end). The three runs are bundled with and without
# --with-data and imported into B (databases full and bare): twice (the second adds nothing: every collection counted
# before and after); lineage, models and affected answer on B as on A; verify --all says unchanged on full and
# unverifiable (exit 5) on bare. A bundle with a flipped byte, a truncated one, one of a newer format and one whose
# run record B holds with other content are each refused (exit 2, one line naming the part, versions or id) with
# nothing written. A failure midway (a unique index of B's own refuses the run records, the last part, after the
# others went in) removes everything the import wrote, the collections it made included, and the import tried again
# once the fault is gone is whole. A fourth run retrains run 2's model; bundled alone, it brings runs 2 and 1 (the
# parent chain), and lineage on B answers as on A. The new verbs run under valgrind. Helpers: tests/registry/lib.sh.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
STAGE_T=$T
. "$top_srcdir/tests/serve/lib.sh"
trap 'serve_cleanup; rm -rf "$STAGE_T"' EXIT
. "$top_srcdir/tests/registry/lib.sh"
CONN_A=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name bun)
CONN_B=(--db-ip 127.0.0.1 --db-port "$PORT" --db-user-name alice --db-password-file "$T/pw"
        --db-authentication-database full)
# at WHERE COMMAND ARGS...: COMMAND (reg, bad or vg of tests/registry/lib.sh) on store A, or on B's database WHERE.
at() {
    local where=$1
    shift
    case $where in
    A) CONN=("${CONN_A[@]}") ;;
    *) CONN=("${CONN_B[@]}" --db-name "$where") ;;
    esac
    REG_WHERE=$where
    "$@"
}
# counts DB: every collection of B's database DB with its count, one line.
# on_b DB ARGS...: the Python on stdin with `db`, B's database DB (alice authenticates against full), and argv.
on_b() {
    local name=$1
    shift
    "$PYTHON3" -c '
import sys, pymongo
c = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), username="alice", password=open(sys.argv[2]).read().rstrip("\n"),
                        authSource="full")
db = c[sys.argv[3]]
argv = sys.argv[4:]
exec(compile(sys.stdin.read(), "on_b", "exec"))' "$PORT" "$T/pw" "$name" "$@" || fail "python on B's $name failed"
}
counts() {
    on_b "$1" <<'PY'
print(sorted((c, db[c].count_documents({})) for c in db.list_collection_names()))
PY
}

# ---- store A: three runs ----
NEM_T_COUNT=9 stage_run 0 bun --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point clean \
    --data-collection data --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn \
    --dl-data-collection data --dl-data-pipeline '[{"$match": {"i": {"$gte": 5}}}]' --dl-batch-size 3 \
    --dl-output-model-collection m0 \
    --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict --i-output-prediction-collection preds
expect_rc 0
RUN1=$RUN
stage_run 0 bun --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection data \
    --dl-data-pipeline '[{"$match": {"i": {"$lt": 2}}}]' --dl-batch-size 4 --dl-input-model-collection m0 \
    --dl-input-model-pipeline '[{"$sort": {"uploadDate": -1}}]' --dl-output-model-collection retrained \
    --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict --i-output-prediction-collection preds2
expect_rc 0
RUN2=$RUN
stage_run 0 bun --process-pool 2 --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn \
    --dl-data-collection data --dl-data-pipeline '[{"$match": {"i": {"$gte": 1}}}]' --dl-data-parallel 2 \
    --dl-batch-size 2 --dl-output-model-collection mg
expect_rc 0
RUN3=$RUN
# an unrelated document in data: not consumed by any model, so not bundled... unless a pipeline reads it all
M0=$(check bun <<'PY' | tail -n 1
print(db["m0.files"].find_one()["_id"])
PY
)

# ---- bundle ----
at A reg bundle "$RUN1" "$RUN2" "$RUN3" -o "$T/full.nemb" --with-data
want_rc 0
at A vg bundle "$RUN1" "$RUN2" "$RUN3" -o "$T/bare.nemb"
[ -z "${VRC:-}" ] || [ "$VRC" -eq 0 ] || fail "bundle under valgrind: exit $VRC"
[ -f "$T/bare.nemb" ] || at A reg bundle "$RUN1" "$RUN2" "$RUN3" -o "$T/bare.nemb"
ls "$T"/.*nemesyst-bundle* 2>/dev/null && fail "a temporary file was left"
tar tvf "$T/full.nemb" || fail "the bundle is not a tar archive"
tar xOf "$T/full.nemb" manifest.json | "$PYTHON3" -c '
import json, sys
m = json.load(sys.stdin)
assert m["format"] == "nemesyst-bundle" and m["version"]["$numberInt"] == "1", m
kinds = [p["kind"] for p in m["parts"]]
print(kinds)
for k in ["format", "data", "predictions", "metrics", "chunks", "files", "runs"]:
    assert k in kinds, k
assert kinds[-1] == "runs", "the run records go last"
' || fail "the manifest"
at A bad "bundle -o '.*full.nemb': the file exists: give --force" bundle "$RUN1" -o "$T/full.nemb"
at A bad "no run record|unknown run|no run" bundle 20200101T000000Z-00000000 -o "$T/none.nemb"
[ ! -e "$T/none.nemb" ] || fail "a bundle of an unknown run was written"

# ---- store B ----
"$NEMESYST" "${SERVE_ARGS[@]}" --db-ip 127.0.0.1 --db-name full --db-init --db-start 2>"$T/err0" || { cat "$T/err0"; fail "init and start B"; }
at full vg import "$T/full.nemb"
[ -z "${VRC:-}" ] || [ "$VRC" -eq 0 ] || fail "import under valgrind: exit $VRC"
at full reg --json import "$T/full.nemb"
want_rc 0
FULL1=$(counts full | tail -n 1)
echo "full: $FULL1"
at full reg import "$T/full.nemb"
want_rc 0
grep -q " 0 documents added" "$ROUT" || fail "the second import added documents"
[ "$(counts full | tail -n 1)" = "$FULL1" ] || fail "the second import changed the counts"
# the target has the indexes nemesyst makes where it writes, GridFS's own among them (chunks go in as documents)
on_b full <<'PY'
want = {"m0.chunks": [("files_id", 1), ("n", 1)], "m0.files": [("filename", 1), ("uploadDate", 1)],
        "m0.files ": [("metadata._nemesyst.parent.id", 1)], "nemesyst_runs": [("started", -1)],
        "data": [("_nemesyst.s", 1)], "preds": [("_nemesyst.model", 1)]}
for coll, key in want.items():
    ixs = [ix for ix in db[coll.strip()].list_indexes() if [(k, int(v)) for k, v in ix["key"].items()] == key]
    if len(ixs) != 1:
        sys.exit("import: no index %s on %s of the target" % (key, coll.strip()))
    if coll == "m0.chunks" and not ixs[0].get("unique"):
        sys.exit("import: the chunks index of m0 is not unique")
PY
at bare reg import "$T/bare.nemb"
want_rc 0
BARE1=$(counts bare | tail -n 1)
echo "bare: $BARE1"
# the source's documents, each on B
check bun "$RUN1" "$RUN2" "$RUN3" <<'PY'
print(sorted((c, db[c].count_documents({})) for c in db.list_collection_names()))
PY

# ---- the same answers on both stores ----
# same [--on DB] WHAT ARGS...: the registry's answer to ARGS on A and on B's database DB (full) are the same.
same() {
    local on=full
    [ "$1" = --on ] && on=$2 && shift 2
    local what=$1
    shift
    at A reg "$@"
    local a_rc=$RRC
    cp "$ROUT" "$T/same.a"
    at "$on" reg "$@"
    [ "$RRC" -eq "$a_rc" ] || fail "$what: exit $a_rc on A, $RRC on B"
    cmp -s "$T/same.a" "$ROUT" || { diff "$T/same.a" "$ROUT"; fail "$what differs between the stores"; }
}
same "lineage" --json lineage "$M0"
same "models" --json models
same "models --best" --json models --bucket m0 --best loss --min
same "affected" --json affected --collection data --filter '{"i": {"$gte": 7}}'
same "affected --run" --json affected --run "$RUN1"
same "run" --json run "$RUN2"
at A reg verify --all
want_rc 0
at full reg verify --all
want_rc 0
at full reg verify "$M0"
want_rc 0
grep -q unchanged "$ROUT" || fail "verify on B: not unchanged"
at bare reg verify "$M0"
want_rc 5
grep -q "no longer exists" "$ROUT" || fail "verify without the data: not saying why"
at bare reg lineage "$M0" --json
want_rc 0

# ---- refused, nothing written ----
SIZE=$(stat -c %s "$T/full.nemb")
cp "$T/full.nemb" "$T/flip.nemb"
# a byte in the middle of the first data part (after the version member's two blocks and the part's header)
"$PYTHON3" - "$T/flip.nemb" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[1024 + 512 + 40] ^= 0x20
open(p, "wb").write(b)
PY
at conf bad "bundle '.*flip.nemb' is corrupt: part 002-data.bson does not match its sha256" import "$T/flip.nemb"
head -c $((SIZE / 2)) "$T/full.nemb" >"$T/half.nemb"
at conf bad "bundle '.*half.nemb' is truncated" import "$T/half.nemb"
cp "$T/full.nemb" "$T/newer.nemb"
"$PYTHON3" - "$T/newer.nemb" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
assert b[512:530] == b"nemesyst-bundle 1\n", b[512:530]
b[528] = ord("7")
open(p, "wb").write(b)
PY
at conf bad "format version 7, newer than this nemesyst-registry reads \(version 1\)" import "$T/newer.nemb"
# a conflicting id: B's database conf holds run 2's record with another status
on_b conf "$RUN2" <<'PY'
db.nemesyst_runs.insert_one({"_id": argv[0], "status": "failed"})
PY
CONF1=$(counts conf | tail -n 1)
at conf bad "import: refused, nothing written: nemesyst_runs _id .*$RUN2.* is in the store already with other content" \
    import "$T/full.nemb"
[ "$(counts conf | tail -n 1)" = "$CONF1" ] || fail "a refused import wrote something"
[ "$(counts full | tail -n 1)" = "$FULL1" ] || fail "counts of full changed"
at full bad "is not a nemesyst bundle" import "$top_srcdir/README.md"

# ---- a failure midway: what the import wrote is removed, and the import, tried again, is whole ----
# The fault, a real one: B's database roll holds a unique index of its own on the run records' status, so that of
# the three run records (the last part, written after every other part went in), all "succeeded", the first goes in
# and the other two fail (E11000). The check (pass 2) cannot see it: it looks ids up, not a target's own indexes.
on_b roll <<'PY'
db.nemesyst_runs.create_index("status", unique=True)
PY
ROLL0=$(counts roll | tail -n 1)
at roll reg import "$T/full.nemb"
[ "$RRC" -ne 0 ] && [ "$RRC" -ne 2 ] || fail "an import that failed midway: exit $RRC"
grep -q "import .*full.nemb: insert into roll.nemesyst_runs failed for 2 of 3 documents .*E11000.*; what this import wrote was removed" \
    "$RERR" || fail "the failure does not name the run records' insert, or does not say the import was rolled back"
echo "roll after the rollback: $(counts roll | tail -n 1)"
[ "$(counts roll | tail -n 1)" = "$ROLL0" ] || fail "a rolled back import left documents or collections behind"
on_b roll <<'PY'
db.nemesyst_runs.drop_index("status_1")
PY
at roll reg import "$T/full.nemb"
want_rc 0
[ "$(counts roll | tail -n 1)" = "$FULL1" ] || fail "the import after a rollback is not whole: $(counts roll | tail -n 1)"
same --on roll "lineage after a rollback and an import" --json lineage "$M0"
at roll reg verify --all
want_rc 0

# ---- a retraining chain bundled by its last run alone: the runs of the parent models come with it ----
stage_run 0 bun --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection data \
    --dl-data-pipeline '[{"$match": {"i": {"$gte": 3}}}]' --dl-batch-size 4 --dl-input-model-collection retrained \
    --dl-input-model-pipeline '[{"$sort": {"uploadDate": -1}}]' --dl-output-model-collection retrained2
expect_rc 0
RUN4=$RUN
M4=$(check bun <<'PY' | tail -n 1
print(db["retrained2.files"].find_one()["_id"])
PY
)
at A reg bundle "$RUN4" -o "$T/chain.nemb" --with-data
want_rc 0
grep -q ": 1 run and 2 parent runs (of retrained models)," "$ROUT" || fail "bundle does not say the parent runs came"
tar xOf "$T/chain.nemb" manifest.json | "$PYTHON3" -c '
import json, sys
m = json.load(sys.stdin)
assert m["runs"] == sys.argv[1:], m["runs"]
assert m["parent_runs"] == sys.argv[2:], m["parent_runs"]
' "$RUN4" "$RUN2" "$RUN1" || fail "the chain's manifest"
at chain vg import "$T/chain.nemb"
[ -z "${VRC:-}" ] || [ "$VRC" -eq 0 ] || fail "import of the chain under valgrind: exit $VRC"
at chain reg import "$T/chain.nemb"
want_rc 0
same --on chain "lineage of the chain's last model" --json lineage "$M4"
same --on chain "lineage of the chain's first model" --json lineage "$M0"
same --on chain "the first run" --json run "$RUN1"
at chain reg verify "$M4"
want_rc 0
grep -q unchanged "$ROUT" || fail "verify of the chain's last model on B: not unchanged"

"$NEMESYST" "${SERVE_ARGS[@]}" --db-ip 127.0.0.1 --db-name full --db-stop 2>/dev/null || fail "stop B"
echo "PASS: bundle and import"
