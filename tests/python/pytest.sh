#!/bin/bash
# The adapter's pure parts (python/nemesyst_adapter.py) under pytest: tests/python/test_adapter.py, no server and no
# MPI needed. Skipped (77) only when the test interpreter ($PYTHON3, the one that runs scripts) has no pytest
# (Debian: python3-pytest); any failing test fails this one. Nothing is written into the source tree (VPATH builds,
# distcheck's read-only sources): no cache, no bytecode.
. ./tests/env.sh
set -u
if ! "$PYTHON3" -c 'import pytest' 2>/dev/null; then
    echo "SKIP: $PYTHON3 cannot import pytest (install python3-pytest)"
    exit 77
fi
export NEMESYST_PYTHON_ADAPTER="$top_srcdir/python/nemesyst_adapter.py" PYTHONDONTWRITEBYTECODE=1
cd "$top_srcdir/tests/python" || fail "no $top_srcdir/tests/python"
"$PYTHON3" -m pytest -q -p no:cacheprovider --rootdir=. --basetemp="${TMPDIR:-/tmp}/nemesyst-pytest.$$" \
    test_adapter.py
rc=$?
rm -rf "${TMPDIR:-/tmp}/nemesyst-pytest.$$"
[ $rc -eq 0 ] || fail "pytest: exit $rc"
