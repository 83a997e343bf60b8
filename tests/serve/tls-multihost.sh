#!/bin/bash
# Serving with TLS across two hosts: two network namespaces this test creates (as tests/serve/multihost.sh does),
# joined by a veth pair. The store runs on host A (--db-init --db-start --db-bind-ip A's address, with
# --db-server-tls-cert-file/--db-server-tls-key-file and an --db-address-file); clients run on host B and find it by
# the address file, which says tls: true. Certificates are made here with openssl.
#   1. TLS only, no client certificates: a client with the CA (--db-tls-ca-file) connects and writes; one without it
#      is refused (certificate verify failed, exit 3, one line); a plain client is refused (exit 3).
#   2. The same store restarted with --db-server-tls-ca-file: a client with the CA and a client certificate connects;
#      one with the CA only is refused (exit 3); the documents of both starts are there.
# It removes the namespaces, the veth pair and every file it created, whatever happens. Needs root, iproute2 and
# openssl: skipped (77) without them.
. ./tests/env.sh
. "$top_srcdir/tests/fixtures/netns.sh" # nem_two_hosts
. "$top_srcdir/tests/fixtures/certs.sh" # nem_make_certs
set -u
for p in openssl; do command -v $p >/dev/null || { echo "SKIP: needs $p"; exit 77; }; done
FERRETDB_BIN=$("$top_srcdir/build-aux/build-ferretdb.sh" --print-path)
export NEMESYST_FERRETDB="$FERRETDB_BIN" MONGOC_DISABLE_SHM=1

T=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-tls-multihost.XXXXXX")
chmod 755 "$T"
cleanup() {
    local pid
    for pid in $(cat "$T"/db*/nemesyst.pid 2>/dev/null | awk '{print $1}'); do
        kill -TERM "$pid" 2>/dev/null
    done
    nem_two_hosts_down
    rm -rf "$T"
}
trap cleanup EXIT
nem_two_hosts nemt 78

# The CA, the server's certificate (for A's address and name, and loopback) and a client certificate.
nem_make_certs "$T" "IP:$ipa,DNS:$A,IP:127.0.0.1"
printf 'pw-tls-multihost\n' >"$T/pw" && chmod 600 "$T/pw"
printf '#!/bin/sh\nfor i in 1 2 3; do echo "{\\"i\\": $i, \\"host\\": \\"$(hostname)\\"}"; done\n' >"$T/clean.sh"
chmod +x "$T/clean.sh"
port=$(nem_random_port)
ADDR="$T/store.addr"

# on HOST COMMAND...: runs it on that host (its namespace and host name)
on() { local h=$1; shift; timeout -k 5 120 ip netns exec "$h" unshare --uts sh -c "hostname $h && exec \"\$@\"" on "$@"; }
store() { # LOG ARGS...: the store run on A
    local log=$1
    shift
    on "$A" "$NEMESYST" --db-engine ferretdb --db-port "$port" --db-path "$T/db" --db-log-path "$T/db/log" \
        --db-bind-ip "$ipa" --db-name tlsmh --db-user-name alice --db-password-file "$T/pw" \
        --db-server-tls-cert-file "$T/server.pem" --db-server-tls-key-file "$T/server.key" \
        --db-tls-ca-file "$T/ca.pem" --db-address-file "$ADDR" "$@" >"$T/$log" 2>&1
}
client() { # LOG COLLECTION ARGS...: a clean stage on B, through the address file
    local log=$1 c=$2
    shift 2
    on "$B" "$NEMESYST" --db-address-file "$ADDR" --db-start-timeout 10 --db-name tlsmh --db-user-name alice \
        --db-password-file "$T/pw" --data-clean --data-cleaner "$T/clean.sh" --data-collection "$c" "$@" >"$T/$log" 2>&1
}
# refused LOG WANT-EXIT REGEX: the client's exit status and its one error line
refused() {
    local log=$1 want=$2 re=$3 rc=$4
    [ "$rc" = "$want" ] || { cat "$T/$log"; fail "$log: exit $rc, want $want"; }
    [ "$(grep -c 'error:' "$T/$log")" = 1 ] || { cat "$T/$log"; fail "$log: not one error line"; }
    grep -Eq "error: .*$re" "$T/$log" || { cat "$T/$log"; fail "$log: the error does not say $re"; }
    echo "ok: $log refused (exit $rc): $(grep 'error:' "$T/$log" | sed 's/.*error: //' | cut -c1-160)"
}

# 1. TLS only, no client certificates.
store serve1.log --db-init --db-start || { cat "$T/serve1.log"; fail "the TLS store on $A"; }
grep -q "listening on $ipa port $port (TLS only)" "$T/serve1.log" || { cat "$T/serve1.log"; fail "the log does not say TLS only"; }
"$PYTHON3" -c 'import json, sys; a = json.load(open(sys.argv[1])); assert (a["host"], a["port"], a["tls"]) == (sys.argv[2], int(sys.argv[3]), True), a' \
    "$ADDR" "$ipa" "$port" || fail "the address file: $(cat "$ADDR")"
client with-ca.log c1 --db-tls-ca-file "$T/ca.pem" || { cat "$T/with-ca.log"; fail "a client on $B with the CA"; }
grep -q "the server is at $ipa port $port (TLS)" "$T/with-ca.log" || fail "the client did not say it uses TLS"
grep -Eq '^clean-0 +succeeded' "$T/with-ca.log" || { cat "$T/with-ca.log"; fail "the client's cleaner on $B"; }
client no-ca.log c1
refused no-ca.log 3 "TLS connection to MongoDB at $ipa:$port failed \(check --db-tls-ca-file.*certificate verify failed" $?
on "$B" "$NEMESYST" --db-ip "$ipa" --db-port "$port" --db-name tlsmh --db-user-name alice --db-password-file "$T/pw" \
    --data-clean --data-cleaner "$T/clean.sh" --data-collection c1 >"$T/plain.log" 2>&1
refused plain.log 3 "cannot reach MongoDB at $ipa:$port.*does the server take TLS connections only\\? give --db-tls" $?
store stop1.log --db-stop || { cat "$T/stop1.log"; fail "--db-stop of the TLS store"; }
[ ! -e "$ADDR" ] || fail "--db-stop left the address file"

# 2. Client certificates required: the store itself connects with one too.
store serve2.log --db-start --db-server-tls-ca-file "$T/ca.pem" --db-tls-certificate-key-file "$T/client-bundle.pem" ||
    { cat "$T/serve2.log"; fail "the TLS store requiring client certificates"; }
grep -q "listening on $ipa port $port (TLS only, client certificates required)" "$T/serve2.log" ||
    { cat "$T/serve2.log"; fail "the log does not say client certificates are required"; }
client cert.log c2 --db-tls-ca-file "$T/ca.pem" --db-tls-certificate-key-file "$T/client-bundle.pem" ||
    { cat "$T/cert.log"; fail "a client on $B with the CA and a client certificate"; }
grep -Eq '^clean-0 +succeeded' "$T/cert.log" || { cat "$T/cert.log"; fail "the certified client's cleaner"; }
client no-cert.log c2 --db-tls-ca-file "$T/ca.pem"
refused no-cert.log 3 "MongoDB at $ipa:$port.*does the server require a client certificate\\? give --db-tls-certificate-key-file" $?
on "$B" "$PYTHON3" - "$ipa" "$port" "$T" "$B" <<'PY' || fail "read-back over TLS from $B"
import sys, pymongo
ip, port, t, host_b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
db = pymongo.MongoClient(ip, port, username="alice", password=open(t + "/pw").read().strip(), authSource="tlsmh",
                         tls=True, tlsCAFile=t + "/ca.pem", tlsCertificateKeyFile=t + "/client-bundle.pem",
                         serverSelectionTimeoutMS=10000)["tlsmh"]
got = (db.c1.count_documents({"host": host_b}), db.c2.count_documents({"host": host_b}))
assert got == (3, 3), "documents from %s in c1, c2: %r" % (host_b, got)
print("read back over TLS: c1 and c2 hold 3 documents each from", host_b)
PY
store stop2.log --db-stop --db-server-tls-ca-file "$T/ca.pem" --db-tls-certificate-key-file "$T/client-bundle.pem" ||
    { cat "$T/stop2.log"; fail "--db-stop of the second store"; }
echo "tls-multihost: ok ($A at $ipa, $B at $ipb)"
