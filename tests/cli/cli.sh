#!/bin/bash
# The nemesyst binary's command line: help, version, print-config, and bad input -> exit 2, one line.
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
cd "$(mktemp -d)" || exit 99
trap 'rm -rf "$PWD"' EXIT

"$NEMESYST" --help > help.txt || fail "--help exited non-zero"
for opt in update prevent-update config process-pool data data-clean data-cleaner data-cleaner-entry-point \
    data-collection dl-batch-size dl-epochs dl-learn dl-learner dl-learner-entry-point dl-data-collection \
    dl-data-pipeline dl-input-model-collection dl-input-model-pipeline dl-output-model-collection \
    dl-sequence-length i-predictor i-predictor-entry-point i-output-prediction-collection i-predict \
    db-replica-set-name db-replica-read-preference db-replica-max-staleness db-tls db-tls-ca-file \
    db-tls-certificate-key-file db-tls-certificate-key-file-password db-tls-crl-file db-login db-start db-stop \
    db-init db-user-name db-password db-intervention db-authentication db-authentication-database db-user-role \
    db-ip db-bind-ip db-port db-name db-collection-name db-config-path db-path db-log-path db-log-name \
    db-cursor-timeout db-batch-size db-pipeline; do
    grep -q -- "--$opt\b" help.txt || fail "--help does not list --$opt"
done
grep -q "MongoDb TLS options:" help.txt || fail "--help is not grouped by 2.0.6's categories"

"$NEMESYST" --version | grep -Eq '^nemesyst [0-9]+\.[0-9]+\.[0-9]+$' || fail "--version"

# Every bad input: exit 2 and exactly one line naming the problem.
expect_fail 2 "did you mean --db-port" "$NEMESYST" --db-prot 5
expect_fail 2 "option --db-port needs a value" "$NEMESYST" --db-port
expect_fail 2 "expects an integer, got 'x'" "$NEMESYST" --db-port x
expect_fail 2 "cannot read config file 'nope.conf'" "$NEMESYST" -c nope.conf
printf 'db-name = ok\nnot-an-option = 3\n' > bad.conf
expect_fail 2 "bad.conf:2: unknown option 'not-an-option'" "$NEMESYST" -c bad.conf
expect_fail 2 "script '/no/such/cleaner.py' does not exist" "$NEMESYST" --data-clean --data-cleaner /no/such/cleaner.py
expect_fail 2 "--update is not supported" "$NEMESYST" -U
expect_fail 2 "--data-clean is given but no --data-cleaner script" "$NEMESYST" --data-clean
expect_fail 2 "--summary-json '/no/such/dir/s.json': cannot write in '/no/such/dir'" "$NEMESYST" --summary-json /no/such/dir/s.json
expect_fail 2 "--summary-json '/tmp' is a directory" "$NEMESYST" --summary-json /tmp
expect_fail 2 "--resume needs provenance" "$NEMESYST" --resume R1 --provenance false
# A boolean option followed by a word that is no boolean: the same message as --provenance=maybe.
expect_fail 2 "^nemesyst: error: cli: option --provenance expects true/false/yes/no/1/0, got 'maybe'$" "$NEMESYST" --provenance maybe
# A run that cannot reach its server still answers on --summary-json (status failed), with exit 3, and says the fix.
expect_fail 3 "cannot reach MongoDB at 127.0.0.1:1 .*\(is a server running there\? start one with nemesyst --db-start, or point --db-ip/--db-port at one that is\)" "$NEMESYST" --db-ip 127.0.0.1 --db-port 1 --data-clean \
    --data-cleaner "$top_srcdir/examples/cleaners/fashion_mnist_cleaner.py" --summary-json "$PWD/s.json"
grep -q '"status" : "failed"' s.json || fail "no failed summary after an unreachable server: $(cat s.json)"
expect_fail 2 "config file '/tmp': it is a directory" "$NEMESYST" -c /tmp
expect_fail 2 "--db-replica-max-staleness must be -1 \(none\) or at least 90" "$NEMESYST" --db-replica-max-staleness 5
expect_fail 2 "cannot be used with --db-replica-read-preference primary" "$NEMESYST" --db-replica-max-staleness 120
n=$("$NEMESYST" --db-port x 2>&1 | wc -l)
[ "$n" -eq 1 ] || fail "bad input printed $n lines, want 1"

# print-config: values with their sources, secrets masked.
printf -- '--db-name=fromfile   # comment\ndb-password = hunter2\n' > good.conf
N_DB_PORT=1234 "$NEMESYST" -c good.conf --db-ip cliip --print-config > pc.txt || fail "--print-config failed"
grep -Eq '^db-name +fromfile +# .*good.conf:1$' pc.txt || fail "db-name source not FILE:LINE: $(grep db-name pc.txt)"
grep -Eq '^db-port +1234 +# env N_DB_PORT$' pc.txt || fail "db-port source not env"
grep -Eq '^db-ip +cliip +# cli$' pc.txt || fail "db-ip source not cli"
grep -Eq '^db-user-role +readWrite +# default$' pc.txt || fail "default source"
grep -q hunter2 pc.txt && fail "--print-config shows the password"

# 2.0.6's mnist.conf (paths pointing at this project's scripts) parses, with FILE:LINE sources.
"$NEMESYST" -c "$top_srcdir/examples/configs/nemesyst/mnist.conf" --print-config > m.txt || fail "mnist.conf"
grep -Eq '^db-port +65530 +# .*mnist.conf:14$' m.txt || fail "mnist.conf db-port: $(grep db-port m.txt)"
grep -Eq '^data-cleaner +\[examples/cleaners/fashion_mnist_cleaner.py\] +# .*mnist.conf:22$' m.txt || fail "mnist.conf cleaner"
grep -Eq '^dl-epochs +\[12\] +# .*mnist.conf:28$' m.txt || fail "mnist.conf epochs"

# The same through mpirun: one message, same exit status on every rank.
expect_fail 2 "did you mean --db-port" nem_mpirun -n 2 "$NEMESYST" --db-prot 5

# Without a launcher nemesyst never starts MPI: not for --help, --version, --print-config or bad input, and not for
# a one-rank run. The probe: an MPI component that does not exist, which makes any MPI_Init fail (checked first).
export OMPI_MCA_pml=no_such_pml
! "$top_builddir/bench/bench_stage_barrier" 1 1 >/dev/null 2>&1 || fail "the probe does not make MPI_Init fail"
"$NEMESYST" --help >/dev/null 2>&1 || fail "--help started MPI"
"$NEMESYST" --version >/dev/null 2>&1 || fail "--version started MPI"
"$NEMESYST" --print-config >/dev/null 2>&1 || fail "--print-config started MPI"
expect_fail 2 "did you mean --db-port" "$NEMESYST" --db-prot 5
cat > one.sh <<'SH'
#!/bin/sh
echo '{"one": 1}'
SH
chmod +x one.sh
"$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name cli_nompi --data-clean --data-cleaner ./one.sh \
    --data-collection c > run.txt 2>&1 || fail "a one-rank run started MPI: $(tail -5 run.txt)"
grep -q "1 script(s), 0 failed" run.txt || fail "the one-rank run: $(cat run.txt)"
unset OMPI_MCA_pml
# Nothing to do: one line that says so, exit 0, and no connection attempted (no server is named here).
"$NEMESYST" --db-ip 192.0.2.1 --db-port 9 > none.out 2> none.err || fail "nothing to do: exit $?"
[ "$(wc -l < none.err)" -eq 1 ] && grep -q "^nemesyst: nothing to do: give a stage" none.err ||
    fail "nothing to do: stderr $(cat none.err)"
[ ! -s none.out ] || fail "nothing to do: stdout $(cat none.out)"
# --check: every check a run makes, then one line "ok" on stdout and exit 0; nothing started, nothing written (not
# the --log-file a run creates, not --summary-json, no run record).
db=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name cli_check)
"$NEMESYST" "${db[@]}" --check --data-clean --data-cleaner ./one.sh --data-collection c --log-file chk.log \
    --summary-json chk.json > check.out 2> check.err || fail "--check: exit $?: $(cat check.err)"
[ "$(cat check.out)" = ok ] || fail "--check stdout: $(cat check.out)"
[ ! -e chk.log ] && [ ! -e chk.json ] || fail "--check wrote the log file or the summary"
# --check-server also pings the server (live here): ok; an unreachable one: exit 3 with the fix.
"$NEMESYST" "${db[@]}" --check-server --data-clean --data-cleaner ./one.sh > ping.out 2> ping.err ||
    fail "--check-server against the live server: exit $?: $(cat ping.err)"
[ "$(cat ping.out)" = ok ] || fail "--check-server stdout: $(cat ping.out)"
expect_fail 3 "^nemesyst: error: cannot reach MongoDB at 127.0.0.1:1 within .*start one with nemesyst --db-start" \
    "$NEMESYST" --check-server --db-ip 127.0.0.1 --db-port 1
n=$("$NEMESYST" --check-server --db-ip 127.0.0.1 --db-port 1 2>&1 >/dev/null | wc -l)
[ "$n" -eq 1 ] || fail "--check-server to no server printed $n lines, want 1"
"$NEMESYST" "${db[@]}" --list-runs > runs.out 2>&1 || fail "--list-runs after --check: $(cat runs.out)"
! grep -q '^20' runs.out || fail "--check left a run record: $(cat runs.out)"
# What a run refuses, --check refuses (where --print-config passes it): a missing learner, a password file others
# can read, a learner group whose pipeline has $limit.
"$NEMESYST" --dl-learn --dl-learner nope.py --print-config > /dev/null || fail "--print-config refused a missing learner"
expect_fail 2 "^nemesyst: error: cli: --dl-learner script 'nope.py' does not exist" "$NEMESYST" --check --dl-learn --dl-learner nope.py
printf 'secret\n' > open.pw && chmod 644 open.pw
expect_fail 2 "--db-password-file 'open.pw' is accessible by group or others" "$NEMESYST" --check --db-password-file open.pw
expect_fail 2 "stage 1 \(\\\$limit\) works across documents" "$NEMESYST" --check --process-pool 2 --dl-learn \
    --dl-learner ./one.sh --dl-data-parallel 2 --dl-data-pipeline '{"$limit": 5}'
# A run that starts its own server needs the engine's program: --check looks for it as the run would (mongod is on
# no test machine: exit 3 naming it; the embedded FerretDB is found and named).
printf 'pw\n' > own.pw && chmod 600 own.pw
expect_fail 3 "^nemesyst: error: --db-engine mongod: mongod is neither on PATH nor in " env PATH=/usr/bin:/bin \
    "$NEMESYST" --check --db-init --db-start --db-engine mongod --db-path ./srv --db-user-name u --db-password-file own.pw
"$NEMESYST" --check --db-start --db-engine ferretdb --db-path ./srv > eng.out 2> eng.err ||
    fail "--check with the embedded server: exit $?: $(cat eng.err)"
grep -q "info: --check: the run would start .*ferretdb" eng.err && [ "$(cat eng.out)" = ok ] ||
    fail "--check did not name the server program: $(cat eng.out eng.err)"
[ ! -e ./srv ] || fail "--check created the db path"

# Warnings go to the log, never to the exit status: an N_* variable that names no option (its value never shown), a
# per-script list longer than its scripts.
N_DB_PROT=12345 "$NEMESYST" --check > w.out 2> w.err || fail "--check with N_DB_PROT: exit $?"
grep -q "warn: env N_DB_PROT names no option of nemesyst and is ignored (did you mean N_DB_PORT?)" w.err ||
    fail "no warning for N_DB_PROT: $(cat w.err)"
! grep -q 12345 w.err || fail "the warning shows the variable's value"
[ "$(cat w.out)" = ok ] || fail "--check with a warning: stdout $(cat w.out)"
N_DATA_CLAEN=1 "$NEMESYST" --db-ip 192.0.2.1 > w.out 2> w.err || fail "nothing to do with N_DATA_CLAEN: exit $?"
grep -q "did you mean N_DATA_CLEAN?" w.err && grep -q "nothing to do" w.err || fail "N_DATA_CLAEN: $(cat w.err)"
"$NEMESYST" --check --dl-learn --dl-learner ./one.sh ./one.sh --dl-epochs 1 2 3 > w.out 2> w.err || fail "long list: $?"
grep -q "warn: cli: --dl-epochs has 3 values for 2 --dl-learner script(s): the values after the first 2 are not used" \
    w.err || fail "no warning for --dl-epochs 1 2 3 with two learners: $(cat w.err)"
"$NEMESYST" --check --dl-learn --dl-learner ./one.sh ./one.sh --dl-epochs 1 2 > w.out 2> w.err || fail "list: $?"
! grep -q "warn:" w.err || fail "a warning for a list as long as the scripts: $(cat w.err)"
# A learner whose pipeline reads no documents: a warning in the log (and --log-file), the run succeeds.
cat > empty_learner.py <<'PY'
def main(**kwargs):
    db = kwargs["db"]
    seen = sum(1 for _ in db.getCursor(db_collection_name="nothing_here", db_pipeline=[{"$match": {}}]))
    yield {"seen": seen}
PY
"$NEMESYST" "${db[@]}" --dl-learn --dl-learner ./empty_learner.py --dl-data-collection nothing_here \
    --log-file empty.log > e.out 2> e.err || fail "a learner that reads nothing: exit $?: $(tail -5 e.err)"
for f in e.err empty.log; do
    grep -q "warn: learn\[0\] ./empty_learner.py: its pipeline read no documents from collection 'nothing_here'" "$f" ||
        fail "no warning in $f for a learner that read nothing: $(cat "$f")"
done
echo "cli: ok"
