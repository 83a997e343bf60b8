#!/bin/bash
# Runs a store benchmark program against a private FerretDB started by the test fixture (stopped by its PID on
# exit). Usage: bench/run-store.sh BENCH_PROGRAM [ARGS...]
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../tests/fixtures/ferretdb.sh"
trap nem_ferretdb_stop EXIT
nem_ferretdb_start || exit 1
export MONGOC_DISABLE_SHM=1
"$@" --port "$NEM_TEST_PORT"
