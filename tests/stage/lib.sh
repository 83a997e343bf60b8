# Helpers for the stage tests (bash; sourced with the build directory as cwd, under with-ferretdb.sh).
#   stage_run NP DB ARGS...   runs nemesyst on NP ranks (NP=0: plain nemesyst, no mpirun) against the test server
#                             and database DB; sets RC, RUN (the run id from the summary), OUT and ERR (files)
#   check DB [ARGS...]        runs the Python on stdin with `db` (pymongo database DB), `run` (the run record of
#                             $RUN), `argv` and the helpers of stagecheck.py; a failed assertion fails the test
. ./tests/env.sh
set -u
FIX="$top_srcdir/tests/stage/fixtures"
PLUGIN="$top_builddir/tests/runner/.libs/plugin_fixture.so" # the shared test plugin (tests/runner.mk)
[ -n "${NEM_TEST_PORT:-}" ] || fail "NEM_TEST_PORT unset: run under tests/fixtures/with-ferretdb.sh"
[ -f "$PLUGIN" ] || fail "test plugin $PLUGIN not built (make check builds it)"
T=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-stage-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
NCALL=0

stage_run() {
    local np=$1 db=$2
    shift 2
    NCALL=$((NCALL + 1))
    OUT="$T/out.$NCALL" ERR="$T/err.$NCALL"
    if [ "$np" -eq 0 ]; then
        "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$db" "$@" >"$OUT" 2>"$ERR"
    else
        timeout -k 5 120 "$MPIRUN" --oversubscribe -n "$np" "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" \
            --db-name "$db" "$@" >"$OUT" 2>"$ERR"
    fi
    RC=$?
    RUN=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$OUT" | tail -n 1)
    echo "== nemesyst -n $np $* -> exit $RC, run ${RUN:-?}"
    cat "$OUT"
    sed 's/^/   stderr: /' "$ERR" | tail -n 60
}

# expect_rc WANT: the last stage_run exited WANT.
expect_rc() {
    [ "$RC" -eq "$1" ] || fail "expected exit status $1, got $RC (stderr above)"
    [ -n "$RUN" ] || [ "$1" -ne 0 ] || fail "no run id in the summary"
}

check() {
    local db=$1
    shift
    PYTHONPATH="$top_srcdir/tests/stage${PYTHONPATH:+:$PYTHONPATH}" NEM_T_DB="$db" NEM_T_RUN="${RUN:-}" \
        "$PYTHON3" -c 'import sys; from stagecheck import *; exec(compile(sys.stdin.read(), "check", "exec"))' "$@" ||
        fail "check on database $db failed (see above)"
}
