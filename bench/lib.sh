# Shared set-up of the bench scripts (bash; source it): bench_start NAME starts a private FerretDB (the test
# fixture's: NEM_TEST_PORT, stopped by its PID on exit), makes $tmp (removed on exit), enters it (no ./nemesyst.d
# there) and clears what would change a run: a site configuration, the user's password variables, shared memory.
here=${here:?bench/lib.sh needs here, the bench folder}
. "$here/../tests/fixtures/ferretdb.sh"
bench_start() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-bench-$1.XXXXXX") || exit 1
    trap 'nem_ferretdb_stop; rm -rf "$tmp"' EXIT
    nem_ferretdb_start >&2 || exit 1
    mkdir -p "$tmp/no-sysconf"
    cd "$tmp" || exit 1
    export MONGOC_DISABLE_SHM=1 NEMESYST_SYSCONFDIR="$tmp/no-sysconf"
    export OMPI_MCA_mpi_yield_when_idle=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    unset N_DB_PASSWORD N_DB_USER_NAME
}
