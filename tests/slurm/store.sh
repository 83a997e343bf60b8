#!/bin/bash
# Slurm: a store job other jobs reach (slurm/nemesyst-store.sbatch), on a private single-node cluster
# (tests/slurm/cluster.sh).
#   1. The store job's usage line as written (a private HOME, N_DB_ENGINE=ferretdb, a port of its own): it inits
#      ./nemesyst-store, starts the server on the node's host name with authentication, writes ~/store.addr.
#   2. An array of two client jobs (slurm/nemesyst-array.sbatch) submitted with --dependency=after:STOREJOB find
#      the store by the address file and each run a small clean stage.
#   3. scancel of the store job: it stops the server in order, removes the address file, and no server is left.
#   4. A second store job on the same db path (with a one-minute time limit whose warning signal, USR1, stops it):
#      the first clients' documents and run records are all there; at the signal it stops the server in order and
#      the job ends with exit 0.
. ./tests/env.sh
. "$top_srcdir/tests/fixtures/ferretdb.sh" # nem_ferretdb_bin
set -u
SLURM_TEST_NAME=slurm-store
. "$top_srcdir/tests/slurm/cluster.sh"
cd "$T"
U="$T/u-store"
mkdir -p "$U"
printf 'def main(**kwargs):\n    for i in range(3):\n        yield {"i": i}\n' >"$U/clean.py"
port=$(nem_random_port)
ADDR="$T/home/store.addr"
store_job() { timeout 5 squeue -h -n nemesyst-store -o %A 2>/dev/null | head -n 1; }
job_gone() { # JOB SECONDS: true once the job has left the queue
    for _ in $(seq 1 $(( $2 * 5 ))); do
        [ -z "$(timeout 5 squeue -h -j "$1" -o %A 2>/dev/null)" ] && return 0
        sleep 0.2
    done
    return 1
}

# 1. The store job, its usage line as written; sbatch waits for it in the background, until it ends.
N_DB_PORT=$port run_usage nemesyst-store "$U" "$T/store1.out" &
usage_pid=$!
job=
for _ in $(seq 1 300); do job=$(store_job); [ -n "$job" ] && break; sleep 0.2; done
[ -n "$job" ] || { wait "$usage_pid"; fail "no store job in the queue"; }
echo "store job $job"

# 2. Two client jobs, submitted once the store job is: they start after it did and wait for the address file.
(
    cd "$U" || exit 99
    export HOME="$T/home" NEMESYST
    unset N_DB_PORT N_DB_IP
    timeout -k 5 300 sbatch --wait --dependency="after:$job" --array=0-1 --oversubscribe --overcommit \
        -o "$T/client-%a.out" "$top_srcdir/slurm/nemesyst-array.sbatch" --db-address-file "$ADDR" \
        --db-user-name me --db-password-file "$T/home/.nemesyst-pw" --data-clean --data-cleaner ./clean.py \
        --data-collection c%a
) >"$T/clients.sbatch" 2>&1
rc=$?
cat "$T/clients.sbatch" "$T"/client-*.out | tail -n 30
[ $rc -eq 0 ] || { cat "$T/store1.out"; fail "the client jobs exited $rc"; }
for a in 0 1; do
    grep -q "the server is at $(hostname -s) port $port" "$T/client-$a.out" ||
        fail "client $a did not find the store by its address file on the node's name"
    grep -q "1 script(s), 0 failed" "$T/client-$a.out" || fail "client $a: no successful summary"
done
[ -s "$ADDR" ] || fail "no address file while the store job runs"
pid=$(awk 'NR == 1 { print $1 }' "$U/nemesyst-store/nemesyst.pid")
[ -n "$pid" ] && kill -0 "$pid" || fail "no server process while the store job runs"
pids+=("$pid") # killed whatever happens

# 3. scancel: the server stops in order, the address file goes.
scancel "$job" || fail "scancel $job"
wait "$usage_pid"
echo "== the first store job, cancelled:"
cat "$T/store1.out"
grep -q "cancelled (TERM): stopping the server" "$T/store1.out" || fail "the store job did not stop on scancel"
grep -q "the server stopped in order" "$T/store1.out" || fail "the store job did not stop its server in order"
job_gone "$job" 30 || fail "the cancelled store job is still in the queue"
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "the server (pid $pid) outlived its store job"
[ ! -e "$ADDR" ] || fail "the cancelled store job left its address file"

# 4. A second store job on the same db path, ended by its time limit's warning signal.
(
    cd "$U" || exit 99
    export HOME="$T/home" TMPDIR="$T/tmp" NEMESYST NEMESYST_FERRETDB="$FERRETDB_BIN" N_DB_ENGINE=ferretdb N_DB_PORT=$port
    timeout -k 5 300 sbatch --wait --oversubscribe --overcommit --time=1 --signal=B:USR1@40 -o "$T/store2.out" \
        ./nemesyst-store.sbatch --db-user-name me --db-password-file ~/.nemesyst-pw --db-address-file ~/store.addr
) >"$T/store2.sbatch" 2>&1 &
store2=$!
for _ in $(seq 1 600); do [ -s "$ADDR" ] && break; sleep 0.1; done
[ -s "$ADDR" ] || { cat "$T/store2.sbatch" "$T/store2.out"; fail "the second store job wrote no address file"; }
grep -q "db-init" "$T/store2.out" && fail "the second store job initialised the db path again"
"$PYTHON3" - "$ADDR" "$T/home/.nemesyst-pw" <<'PY' || fail "the second store job lacks the first one's data"
import json, sys, pymongo
a = json.load(open(sys.argv[1]))
pw = open(sys.argv[2]).read().rstrip("\n")
db = pymongo.MongoClient(a["host"], a["port"], username="me", password=pw, authSource="nemesyst",
                         serverSelectionTimeoutMS=10000).nemesyst
got = (db.c0.count_documents({}), db.c1.count_documents({}))
assert got == (3, 3), "documents of the two clients: %r" % (got,)
runs = [r.get("status") for r in db.nemesyst_runs.find()]
assert runs == ["succeeded", "succeeded"], "run records: %r" % runs
print("second store job: the clients' documents %r and run records %r are there" % (got, runs))
PY
wait "$store2"
rc=$?
echo "== the second store job, at its time limit's warning (sbatch exit $rc):"
cat "$T/store2.sbatch" "$T/store2.out"
[ $rc -eq 0 ] || fail "the second store job exited $rc, want 0 (the server stopped in order before the limit)"
grep -q "time limit near (USR1): stopping the server" "$T/store2.out" || fail "the second store job did not stop on USR1"
grep -q "the server stopped in order" "$T/store2.out" || fail "the second store job did not stop its server in order"
[ ! -e "$ADDR" ] || fail "the second store job left its address file"
[ ! -e "$U/nemesyst-store/nemesyst.pid" ] || fail "a server's pid file is left in the db path"
echo "slurm-store: ok"
