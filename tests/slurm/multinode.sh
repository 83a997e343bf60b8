#!/bin/bash
# Slurm across two hosts: a private cluster (tests/slurm/cluster.sh) of two nodes, each a network namespace of its
# own with its own address and host name (tests/fixtures/netns.sh), one slurmd in each; munged (a unix socket) and
# slurmctld run on the first node, A, where this test then runs as a user logged in there would.
#   1. slurm/nemesyst-multinode.sbatch on both nodes (two tasks on each): rank 0 starts the server on A's host name,
#      the workers on A and B run the cleaners; the run record (nemesyst-registry, against the server started again
#      after the job) says the run succeeded on hosts A and B, and B's workers ran cleaners.
#   2. slurm/nemesyst-store.sbatch on A with TLS (certificates made here with openssl) and an address file; a client
#      job (slurm/nemesyst-array.sbatch) on B finds it through the address file, connects with the CA and stores
#      its documents and its run there: read back with nemesyst-registry over TLS. scancel stops the store in order.
# Needs root, iproute2, openssl and Slurm: skipped (77) without them. The namespaces, the daemons and every file it
# made are removed whatever happens.
. ./tests/env.sh
. "$top_srcdir/tests/fixtures/ferretdb.sh" # nem_ferretdb_bin
. "$top_srcdir/tests/fixtures/netns.sh"    # nem_two_hosts, nem_on
set -u

if [ -z "${NEM_SLURM_HOSTS:-}" ]; then
    # The two hosts, then this script again on A; the namespaces go when it ends.
    command -v openssl >/dev/null || { echo "SKIP: needs openssl"; exit 77; }
    trap nem_two_hosts_down EXIT
    nem_two_hosts nems 79
    NEM_SLURM_HOSTS="$A $ipa $B $ipb" nem_on "$A" bash "$0"
    exit
fi
read -r A ipa B ipb <<<"$NEM_SLURM_HOSTS"
[ "$(hostname)" = "$A" ] || fail "not on host $A"
SLURM_TEST_NAME=slurm-multinode SLURM_NETNS_NODES="$A $B"
. "$top_srcdir/tests/slurm/cluster.sh"
cd "$T"
export NEMESYST_FERRETDB="$FERRETDB_BIN" N_DB_ENGINE=ferretdb
(umask 077 && echo "pw-slurm-multinode" >"$T/home/.nemesyst-pw")
PW="$T/home/.nemesyst-pw"
cat >"$T/clean.sh" <<'EOS'
#!/bin/sh
sleep 1
for i in 1 2 3; do echo "{\"i\": $i, \"host\": \"$(hostname)\"}"; done
EOS
chmod +x "$T/clean.sh"
# registry WHAT ARGS...: nemesyst-registry --json, its answer in $T/WHAT.json
registry() {
    local what=$1
    shift
    timeout -k 5 60 "$top_builddir/nemesyst-registry" --json "$@" >"$T/$what.json" 2>"$T/$what.err" ||
        { cat "$T/$what.err"; fail "nemesyst-registry $*"; }
}

# 1. The multi-node script, two tasks on each node.
port=$(nem_random_port)
db="$T/mn-db"
NEMESYST_DB_PATH=$db sbatch_wait multinode --nodes=2 --ntasks-per-node=2 "$top_srcdir/slurm/nemesyst-multinode.sbatch" \
    --db-port "$port" --db-name mn --db-user-name me --db-password-file "$PW" --process-pool 1 \
    --data-clean --data-cleaner "$T/clean.sh" "$T/clean.sh" "$T/clean.sh" "$T/clean.sh" "$T/clean.sh" "$T/clean.sh" \
    --data-collection c
[ $RC -eq 0 ] || { tail -n 30 "$T"/log/*; fail "the multi-node job exited $RC"; }
grep -q "listening on $A port $port" "$T/multinode.out" || fail "the server did not listen on the first node's name $A"
grep -Eq '6 script\(s\), 0 failed' "$T/multinode.out" || fail "multinode: not 6 scripts, 0 failed"
serve=(--db-engine ferretdb --db-port "$port" --db-path "$db" --db-log-path "$db/log" --db-bind-ip "$A")
"$NEMESYST" "${serve[@]}" --db-start >"$T/restart.out" 2>&1 || { cat "$T/restart.out"; fail "restarting the job's server"; }
pids+=("$(awk 'NR == 1 { print $1 }' "$db/nemesyst.pid")") # stopped whatever happens
conn=(--db-ip "$A" --db-port "$port" --db-name mn --db-user-name me --db-password-file "$PW")
registry runs "${conn[@]}" runs
cat "$T/runs.json"
"$PYTHON3" - "$T/runs.json" "$A" "$B" <<'PY' || fail "the multi-node run's record"
import json, sys
runs, a, b = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
print(runs)
PY
"$NEMESYST" "${serve[@]}" --db-stop >>"$T/restart.out" 2>&1 || { cat "$T/restart.out"; fail "stopping the job's server"; }
echo "slurm-multinode: ok ($A at $ipa, $B at $ipb)"
