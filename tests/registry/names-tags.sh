#!/bin/bash
# Run names and tags, the filters of `nemesyst-registry runs` and `get` (issue 22, section 7), on a private
# FerretDB (tests/registry.mk). Runs named and tagged by the command line, N_* variables and a config file, a failed
# one, a lost one (a record made here) and a resumed one; each filter (--name, --tag, --status, --since, --until,
# --script) must return exactly the expected runs, in the table and with --json, and nemesyst --list-runs shows the
# same columns. `get` returns each model byte for byte (a small one and one of several MiB, to a file and to
# stdout), refuses to replace a file without --force, and with a damaged chunk (changed here with pymongo) fails
# with exit status 1 writing nothing. Every bad input: one line, exit status 2.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
DB=names
REG_DB=$DB REG_HEAD=2000 REG_CAT_V=1 # get writes models to stdout
. "$top_srcdir/tests/registry/lib.sh" # reg, want_rc, bad
# py ARGS... < SNIPPET: Python with `db` (pymongo), `fs` helpers and argv.
py() {
    NEM_T_DB=$DB "$PYTHON3" -c '
import os, sys, json, hashlib, datetime
import pymongo
from bson import ObjectId
db = pymongo.MongoClient("mongodb://127.0.0.1:%s/" % os.environ["NEM_TEST_PORT"])[os.environ["NEM_T_DB"]]
argv = sys.argv[1:]
def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))
    print("ok: %s == %r" % (what, want))
exec(compile(sys.stdin.read(), "check", "exec"))' "$@" || fail "python check failed (see above)"
}
# runs_are WHAT RUN...: the last `runs --json` answered exactly these runs, newest first.
runs_are() {
    local what=$1
    shift
    py "$ROUT" "$what" "$@" <<'PY'
got = [r["id"] for r in json.load(open(argv[0]))["runs"]]
eq(got, argv[2:], "runs of " + argv[1])
PY
}
# filter WANT_RUNS... -- FILTER ARGS...: the table and --json of `runs FILTER` give exactly WANT_RUNS.
filter() {
    local want=()
    while [ "$1" != -- ]; do want+=("$1"); shift; done
    shift
    reg runs "$@"
    want_rc 0
    local rows=$(($(wc -l <"$ROUT") - 1))
    [ "$rows" -eq "${#want[@]}" ] || fail "runs $*: $rows rows in the table, want ${#want[@]}"
    for r in "${want[@]}"; do grep -q "^$r " "$ROUT" || fail "runs $*: no row for $r"; done
    reg --json runs "$@"
    want_rc 0
    runs_are "$*" "${want[@]}"
}

# A: the plugin cleans and learns: named and tagged on the command line (one tag value with spaces).
stage_run 0 $DB --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point clean --data-collection data \
    --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection data \
    --dl-output-model-collection models --run-name alpha --tag team=vision --tag 'note=first try' --tag ds=mnist
expect_rc 0
RUN_A=$RUN
sleep 1.1 # run ids and start times sort by the second
# B: a learner storing a model of 5 MiB; named and tagged by N_* variables.
NEM_T_MODEL_MB=5 N_RUN_NAME=beta N_TAG='team=nlp ds=mnist' stage_run 0 $DB --dl-learn \
    --dl-learner "$FIX/large_model_learner" --dl-data-collection none --dl-output-model-collection big
expect_rc 0
RUN_B=$RUN
sleep 1.1
# C: a crashing cleaner, named as A; named and tagged by a config file.
printf 'run-name = alpha\ntag = [team=vision]\n' >"$T/c.conf"
stage_run 0 $DB -c "$T/c.conf" --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point crash \
    --data-collection junk
expect_rc 4
RUN_C=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$OUT" | tail -n 1)
[ -n "$RUN_C" ] || fail "no run id for the failed run"
sleep 1.1
# D: neither name nor tags.
stage_run 0 $DB --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point clean --data-collection data2
expect_rc 0
RUN_D=$RUN
# E: a lost run of 2020 (recorded as running, its heartbeat long gone), as an older nemesyst recorded it: no name,
# no tags fields at all.
RUN_E=20200101T120000Z-00000000000000e5
py "$RUN_E" <<'PY'
t = datetime.datetime(2020, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
db.nemesyst_runs.insert_one({"_id": argv[0], "status": "running", "started": t, "heartbeat": t, "heartbeat_s": 30,
                             "version": "3.0.0", "ranks": 1, "hosts": ["elsewhere"], "scripts": {},
                             "options": {"dl-learn": True, "dl-learner": ["/old/learner.py"]}})
PY

# The records: name and tags as given, by each source.
py "$RUN_A" "$RUN_B" "$RUN_C" "$RUN_D" <<'PY'
a, b, c, d = (db.nemesyst_runs.find_one({"_id": i}) for i in argv)
eq((a["name"], a["tags"]), ("alpha", {"team": "vision", "note": "first try", "ds": "mnist"}), "A's name and tags")
eq((b["name"], b["tags"]), ("beta", {"team": "nlp", "ds": "mnist"}), "B's (N_RUN_NAME, N_TAG)")
eq((c["name"], c["tags"]), ("alpha", {"team": "vision"}), "C's (config file)")
eq((d["name"], d["tags"]), (None, {}), "D's (none)")
PY

# The listing: every run, the name and tags columns, in the table and the JSON.
reg runs
want_rc 0
head -n 1 "$ROUT" | grep -Eq '^run +name +status .* hosts +tags$' || fail "no name and tags columns in the table"
grep -E "^$RUN_A +alpha +succeeded .*team=vision,note=first try,ds=mnist$" "$ROUT" >/dev/null ||
    fail "A's row lacks its name or tags"
grep -E "^$RUN_D +- +succeeded " "$ROUT" >/dev/null || fail "D's row does not show '-' for no name"
reg --json runs
runs_are "every run" "$RUN_D" "$RUN_C" "$RUN_B" "$RUN_A" "$RUN_E"
py "$ROUT" "$RUN_A" "$RUN_E" <<'PY'
rows = {r["id"]: r for r in json.load(open(argv[0]))["runs"]}
eq((rows[argv[1]]["name"], rows[argv[1]]["tags"]), ("alpha", {"team": "vision", "note": "first try", "ds": "mnist"}),
   "A's row in --json")
eq((rows[argv[2]]["name"], rows[argv[2]]["tags"], rows[argv[2]]["status"]), (None, {}, "lost"),
   "E's row (an old record)")
PY
# nemesyst --list-runs: the same listing, the same columns.
stage_run 0 $DB --list-runs
[ "$RC" -eq 1 ] || fail "--list-runs with a lost run: exit $RC, want 1"
head -n 1 "$OUT" | grep -Eq '^run +name +status .* hosts +tags$' || fail "--list-runs lacks the name and tags columns"
grep -Eq "^$RUN_B +beta +succeeded .*team=nlp,ds=mnist$" "$OUT" || fail "--list-runs lacks B's name or tags"

# Filters: exactly the expected runs, table and JSON alike.
filter "$RUN_C" "$RUN_A" -- --name alpha
filter "$RUN_B" -- --name beta
filter -- --name nobody
filter "$RUN_C" "$RUN_A" -- --tag team=vision
filter "$RUN_A" -- --tag team=vision --tag ds=mnist
filter "$RUN_B" "$RUN_A" -- --tag ds=mnist
filter "$RUN_A" -- --tag 'note=first try'
filter -- --tag team=vision --tag ds=nope
filter "$RUN_C" -- --name alpha --status failed
filter "$RUN_D" "$RUN_B" "$RUN_A" -- --status succeeded
filter "$RUN_E" -- --status lost
filter -- --status running
filter -- --status interrupted
filter "$RUN_E" -- --until 2020-01-01
filter "$RUN_E" -- --until 2020-01-01T12:00:00.001Z --since 2020-01-01T12:00Z
filter "$RUN_E" -- --since 2020-01-01T13:00+01:00 --until 2020-01-01T14:00+01:00
filter -- --until 2020-01-01T11:59:59Z
filter "$RUN_D" "$RUN_C" "$RUN_B" "$RUN_A" -- --since 2020-01-02
filter "$RUN_B" "$RUN_A" -- --since 2020-01-02 --tag ds=mnist --status succeeded
filter "$RUN_B" -- --script large_model_learner
filter "$RUN_B" -- --script "$FIX/large_model_learner"
filter "$RUN_B" -- --script fixtures/large_model_learner
filter "$RUN_D" "$RUN_C" "$RUN_A" -- --script plugin_fixture.so
filter "$RUN_A" -- --script plugin_fixture.so --name alpha --status succeeded
filter "$RUN_E" -- --script learner.py
filter -- --script arge_model_learner
filter -- --script /old
# A regex character in --script is a character: "plugin_fixture.so" must not match "plugin_fixtureXso".
filter -- --script plugin.fixture.so
# The filters are the server's query: nothing else is read (FerretDB logs no query; the record count is the check
# here, with one more run that matches none of them).

# Bad filters: one line, exit 2, before anything connects (a closed port answers nothing).
bad "runs --tag 'a' is not KEY=VALUE" runs --tag a
bad "runs --tag 'a.b=1' has a key that contains '.'" runs --tag a.b=1
bad "runs --tag '\\\$a=1' has a key that starts with '\\\$'" runs --tag '$a=1'
bad "runs --tag 'a=' has a value that is empty" runs --tag a=
bad "runs --status 'done' is not a run status" runs --status done
bad "runs --since '2026-02-30' is not an ISO 8601 date" runs --since 2026-02-30
bad "runs --until 'last week' is not an ISO 8601 date" runs --until 'last week'
bad "is not before --until" runs --since 2026-01-02 --until 2026-01-01T23:00Z
bad "runs --name '' is empty" runs --name ''
bad "are for .runs., not .models." models --tag a=1

# get: the small model of A, byte for byte with what GridFS holds (read here with pymongo's gridfs).
reg --json models --bucket models
want_rc 0
MODEL_A=$(py "$ROUT" <<'PY' | tail -n 1
print(json.load(open(argv[0]))["models"][0]["id"])
PY
)
reg --json models --bucket big
MODEL_B=$(py "$ROUT" <<'PY' | tail -n 1
print(json.load(open(argv[0]))["models"][0]["id"])
PY
)
# gridfs_copy ID BUCKET FILE: the model as pymongo's gridfs reads it; its recorded sha256 must be the file's.
gridfs_copy() {
    py "$@" <<'PY'
import gridfs
f = gridfs.GridFSBucket(db, bucket_name=argv[1]).open_download_stream(ObjectId(argv[0]))
data = f.read()
open(argv[2], "wb").write(data)
eq(f.metadata["_nemesyst"]["sha256"], hashlib.sha256(data).hexdigest(), "the recorded sha256 of " + argv[0])
PY
}
gridfs_copy "$MODEL_A" models "$T/want-a"
gridfs_copy "$MODEL_B" big "$T/want-b"
[ "$(stat -c %s "$T/want-b")" -eq $((5 << 20)) ] || fail "B's model is not 5 MiB"
mkdir "$T/out"
reg get "$MODEL_A" -o "$T/out/a.bin"
want_rc 0
grep -q "matches the recorded one" "$ROUT" || fail "get did not say the sha256 was checked"
cmp "$T/want-a" "$T/out/a.bin" || fail "get: A's model differs"
reg --json --bucket big get "$MODEL_B" --output "$T/out/b.bin"
want_rc 0
cmp "$T/want-b" "$T/out/b.bin" || fail "get: B's model differs"
py "$ROUT" "$MODEL_B" "$T/out/b.bin" <<'PY'
r = json.load(open(argv[0]))
eq((r["id"], r["bucket"], r["file"], r["length"], r["checked"]), (argv[1], "big", argv[2], 5 << 20, True), "get --json")
eq(r["sha256"], hashlib.sha256(open(argv[2], "rb").read()).hexdigest(), "get --json's sha256")
PY
"$REGISTRY" "${CONN[@]}" get "$MODEL_B" -o - >"$T/out/b.stdout" 2>"$T/err.stdout" || fail "get -o - failed"
cmp "$T/want-b" "$T/out/b.stdout" || fail "get -o -: B's model differs"
[ ! -s "$T/err.stdout" ] || fail "get -o - wrote to stderr"
# Not over an existing file, unless --force.
echo keep >"$T/out/keep"
bad "get -o '.*/keep': the file exists: give --force" get "$MODEL_A" -o "$T/out/keep"
[ "$(cat "$T/out/keep")" = keep ] || fail "get changed an existing file without --force"
reg get "$MODEL_A" -o "$T/out/keep" --force
want_rc 0
cmp "$T/want-a" "$T/out/keep" || fail "get --force did not replace the file"
bad "get -o '.*': is a directory" get "$MODEL_A" -o "$T/out" --force
bad "its directory '.*/nowhere' does not exist" get "$MODEL_A" -o "$T/nowhere/a.bin"
bad "get needs -o FILE" get "$MODEL_A"
bad "--force is for -o FILE, not -o -" get "$MODEL_A" -o - --force
bad "no model '0123456789abcdef01234567'" get 0123456789abcdef01234567 -o "$T/out/none"
bad "not a model id|model id" get nothex -o "$T/out/none"
bad "-o \\(--output\\) and --force are for .get. and .bundle., not .runs." runs -o x
[ ! -e "$T/out/none" ] || fail "a refused get wrote its file"

# A damaged chunk (same length, one byte changed): the sha256 does not match; exit 1, nothing written, no
# temporary file left, nothing on stdout.
py "$MODEL_B" <<'PY'
c = db["big.chunks"].find_one({"files_id": ObjectId(argv[0]), "n": 3})
data = bytearray(c["data"])
data[100] ^= 0xff
db["big.chunks"].update_one({"_id": c["_id"]}, {"$set": {"data": bytes(data)}})
PY
reg get "$MODEL_B" -o "$T/out/damaged.bin"
want_rc 1
[ "$(wc -l <"$RERR")" -eq 1 ] || fail "expected one line on stderr for a damaged model"
grep -q "the stored copy is damaged or changed; nothing written" "$RERR" || fail "unclear error for a damaged model"
[ ! -e "$T/out/damaged.bin" ] || fail "get wrote a damaged model"
ls -A "$T/out" | grep -q nemesyst-get && fail "get left its temporary file behind"
"$REGISTRY" "${CONN[@]}" get "$MODEL_B" -o - >"$T/out/damaged.stdout" 2>"$T/err.stdout"
[ $? -eq 1 ] || fail "get -o - of a damaged model: not exit 1"
[ ! -s "$T/out/damaged.stdout" ] || fail "get -o - sent a damaged model to stdout"
# --force does not put a damaged model over a good file.
reg get "$MODEL_B" -o "$T/out/b.bin" --force
want_rc 1
cmp "$T/want-b" "$T/out/b.bin" || fail "a failed get --force changed the existing file"
# A chunk of the wrong length: corrupt before any sha256 is needed; exit 1, nothing written.
py "$MODEL_B" <<'PY'
c = db["big.chunks"].find_one({"files_id": ObjectId(argv[0]), "n": 5})
db["big.chunks"].update_one({"_id": c["_id"]}, {"$set": {"data": bytes(c["data"])[:1000]}})
PY
reg get "$MODEL_B" -o "$T/out/short.bin"
want_rc 1
grep -q "is corrupt: a chunk has the wrong length (chunk 5); nothing written" "$RERR" || fail "unclear error for a short chunk"
[ ! -e "$T/out/short.bin" ] || fail "get wrote a corrupt model"
# A model recorded before sha256s were (no _nemesyst.sha256): downloaded, said to be unchecked.
py "$MODEL_A" <<'PY'
db["models.files"].update_one({"_id": ObjectId(argv[0])}, {"$unset": {"metadata._nemesyst.sha256": ""}})
PY
reg get "$MODEL_A" -o "$T/out/old.bin"
want_rc 0
grep -q "none recorded: not checked" "$ROUT" || fail "get did not say an old model was not checked"
cmp "$T/want-a" "$T/out/old.bin" || fail "get: an old model differs"

# --resume keeps the run's name and tags: another is refused (exit 2, the record untouched); the same, or none, is
# right.
export NEM_T_RUNLOG="$T/runs.log" NEM_T_MARKER="$T/marker"
touch "$NEM_T_MARKER"
args=(--data-clean --data-cleaner "$FIX/flaky.sh" --data-collection flaky)
stage_run 0 $DB "${args[@]}" --run-name gamma --tag k=v
expect_rc 4
RUN_F=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$OUT" | tail -n 1)
rm -f "$NEM_T_MARKER"
stage_run 0 $DB "${args[@]}" --resume "$RUN_F" --run-name delta
expect_rc 2
grep -q -- "--resume $RUN_F: --run-name 'delta' is not that run's name ('gamma')" "$ERR" || fail "unclear refusal of a new name"
stage_run 0 $DB "${args[@]}" --resume "$RUN_F" --tag k=w
expect_rc 2
grep -q -- "--tag k=w is not one of that run's tags (it has k=v)" "$ERR" || fail "unclear refusal of a changed tag"
stage_run 0 $DB "${args[@]}" --resume "$RUN_F" --tag new=1
expect_rc 2
py "$RUN_F" <<'PY'
r = db.nemesyst_runs.find_one({"_id": argv[0]})
eq((r["status"], r["name"], r["tags"], len(r["attempts"])), ("failed", "gamma", {"k": "v"}, 1), "a refused resume")
PY
stage_run 0 $DB "${args[@]}" --resume "$RUN_F" --run-name gamma --tag k=v
expect_rc 0
[ "$RUN" = "$RUN_F" ] || fail "resume reported run '$RUN', want '$RUN_F'"
filter "$RUN_F" -- --name gamma --tag k=v --status succeeded
echo "names-tags: ok"
