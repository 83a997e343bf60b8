#!/bin/bash
# Runs the runner suite (tests/runner/test_runner.c) against this test's FerretDB.
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
[ -n "${NEM_TEST_URI:-}" ] || fail "no test server (run through tests/fixtures/with-ferretdb.sh)"
export NEM_RUNNER_FIXTURES="$top_srcdir/tests/runner/fixtures"
export NEM_RUNNER_PLUGIN="$top_builddir/tests/runner/.libs/plugin_fixture.so"
export NEM_RUNNER_BADAPI_PLUGIN="$top_builddir/tests/runner/.libs/plugin_badapi.so"
export PYTHON3
[ -f "$NEM_RUNNER_PLUGIN" ] || fail "test plugin not built: $NEM_RUNNER_PLUGIN"
export CK_DEFAULT_TIMEOUT=60
exec "$top_builddir/tests/runner/test_runner"
