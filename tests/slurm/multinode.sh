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
. "$top_srcdir/tests/fixtures/certs.sh"    # nem_make_certs
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
run=$("$PYTHON3" -c 'import json, sys; print(json.load(open(sys.argv[1]))["runs"][0]["id"])' "$T/runs.json") ||
    fail "no run in $(cat "$T/runs.json")"
registry run "${conn[@]}" run "$run"
"$PYTHON3" - "$T/runs.json" "$T/run.json" "$A" "$B" <<'PY' || fail "the multi-node run's record"
import json, sys
runs, run, a, b = json.load(open(sys.argv[1]))["runs"], json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4]
def ok(cond, what):
    if not cond:
        sys.exit("FAIL: %s: %s" % (what, json.dumps(run)[:2000]))
    print("ok: " + what)
ok(len(runs) == 1, "one run")
r = runs[0]
ok(r["status"] == "succeeded" and r["scripts_ok"] == 6 and r["scripts_failed"] == 0,
   "the run succeeded, its 6 scripts too (%s, %d ok, %d failed)" % (r["status"], r["scripts_ok"], r["scripts_failed"]))
ok(r["ranks"] == 4 and sorted(r["hosts"]) == sorted([a, b]), "4 ranks on hosts %r" % r["hosts"])
scripts = run["scripts"]
hosts = sorted({s["host"] for s in (scripts.values() if isinstance(scripts, dict) else scripts)})
ok(b in hosts, "the workers on %s ran scripts (the scripts' hosts: %r)" % (b, hosts))
PY
"$NEMESYST" "${serve[@]}" --db-stop >>"$T/restart.out" 2>&1 || { cat "$T/restart.out"; fail "stopping the job's server"; }
rm -rf "$db"

# 2. A store job on A with TLS; a client job on B finds it through the address file.
mkdir -p "$T/tls"
nem_make_certs "$T/tls" "DNS:$A,IP:$ipa"
sport=$(nem_random_port)
ADDR="$T/home/store.addr"
tls=(--db-tls-ca-file "$T/tls/ca.pem")
user=(--db-name st --db-user-name me --db-password-file "$PW")
NEMESYST_DB_PATH="$T/store" sbatch_wait store -w "$A" "$top_srcdir/slurm/nemesyst-store.sbatch" --db-port "$sport" \
    "${user[@]}" --db-address-file "$ADDR" "${tls[@]}" --db-server-tls-cert-file "$T/tls/server.pem" \
    --db-server-tls-key-file "$T/tls/server.key" &
store_wait=$!
for _ in $(seq 1 600); do [ -s "$ADDR" ] && break; sleep 0.1; done
[ -s "$ADDR" ] || { wait "$store_wait"; fail "the store job wrote no address file"; }
grep -q "listening on $A port $sport (TLS only)" "$T/store.out" || fail "the store does not listen on $A's name with TLS only"
store_job=$(timeout 5 squeue -h -n nemesyst-store -o %A | head -n 1)
"$PYTHON3" -c 'import json, sys; a = json.load(open(sys.argv[1])); assert (a["host"], a["port"], a["tls"]) == (sys.argv[2], int(sys.argv[3]), True), a' \
    "$ADDR" "$A" "$sport" || fail "the address file: $(cat "$ADDR")"
sbatch_wait client -w "$B" --array=0 --ntasks=2 "$top_srcdir/slurm/nemesyst-array.sbatch" --db-address-file "$ADDR" \
    "${user[@]}" "${tls[@]}" --data-clean --data-cleaner "$T/clean.sh" --data-collection c
[ $RC -eq 0 ] || fail "the client job on $B exited $RC"
grep -q "the server is at $A port $sport (TLS)" "$T/client.out" || fail "the client did not find the store on $A by the address file, with TLS"
grep -q "1 script(s), 0 failed" "$T/client.out" || fail "the client job: no successful summary"
sconn=(--db-ip "$A" --db-port "$sport" "${user[@]}" "${tls[@]}")
registry store-runs "${sconn[@]}" runs
"$PYTHON3" - "$T/store-runs.json" "$B" <<'PY' || fail "the client's run in the store"
import json, sys
runs, b = json.load(open(sys.argv[1]))["runs"], sys.argv[2]
assert len(runs) == 1, runs
r = runs[0]
assert (r["status"], r["hosts"], r["scripts_ok"], r["scripts_failed"]) == ("succeeded", [b], 1, 0), r
print("ok: the store on the first node holds the client's run on %s: %s" % (b, r["id"]))
PY
scancel "$store_job" || fail "scancel $store_job"
wait "$store_wait"
grep -q "cancelled (TERM): stopping the server" "$T/store.out" && grep -q "the server stopped in order" "$T/store.out" ||
    fail "the store job did not stop its server in order"
[ ! -e "$ADDR" ] || fail "the store job left its address file"
echo "slurm-multinode: ok ($A at $ipa, $B at $ipb)"
