# Shared by tests/hdf5/*.sh: paths, a scratch directory, a database per test, and the connection options.
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
[ -n "${NEM_TEST_PORT:-}" ] || fail "no test server (run through tests/fixtures/with-ferretdb.sh)"
PLUGIN="$top_builddir/src/hdf5/.libs/hdf5_import.so"
EXPORT="$top_builddir/nemesyst-export"
H5CHECK="$top_builddir/tests/hdf5/h5check"
for f in "$PLUGIN" "$EXPORT" "$H5CHECK"; do
    [ -x "$f" ] || [ -f "$f" ] || fail "not built: $f"
done
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
db="hdf5_test_$$"
CONN=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "$db")

# import FILE... : the plugin through `nemesyst --data-clean` into collection h5, at two ranks.
import() {
    nem_mpirun -n 2 "$NEMESYST" "${CONN[@]}" --data-clean --data-cleaner "$PLUGIN" --data "$@" --data-collection h5
}

# py: runs the Python on stdin with db bound to this test's database.
py() {
    "$PYTHON3" -c "import sys, pymongo
db = pymongo.MongoClient('127.0.0.1', int(sys.argv[1]), serverSelectionTimeoutMS=10000)[sys.argv[2]]
exec(sys.stdin.read())" "$NEM_TEST_PORT" "$db" "$@"
}
