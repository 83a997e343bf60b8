#!/bin/bash
# TLS against a second FerretDB listening with TLS and requiring client certificates. The test makes its own CA,
# server and client certificates (and CRLs) with openssl. With the CA and the client certificate the store connects
# and writes, also with an encrypted client key and its password, and with a CRL that revokes nothing; without the
# CA, without a client certificate, or with a CRL revoking the server's certificate, it fails with a clear error.
. ./tests/env.sh
. "$top_srcdir/tests/fixtures/ferretdb.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/nem-test-tls.XXXXXX")
trap 'nem_ferretdb_stop; rm -rf "$work"' EXIT
PROBE=./tests/store/store-probe

. "$top_srcdir/tests/fixtures/certs.sh" # nem_make_certs
nem_make_certs "$work" IP:127.0.0.1,DNS:localhost
# and an encrypted client key, CRLs that revoke nothing and the server's certificate
make_certs() {
    cd "$work" || return 1
    openssl pkey -in client.key -aes256 -passout pass:key-pass-1 -out client-enc.key &&
    cat client.pem client-enc.key > client-bundle-enc.pem &&
    printf '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=2\n' \
        > ca.cnf && : > index.txt && echo 01 > crlnumber &&
    openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out crl-empty.pem &&
    openssl ca -config ca.cnf -revoke server.pem -keyfile ca.key -cert ca.pem &&
    openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out crl-revoked.pem
}
(make_certs) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; fail "openssl could not make the certificates"; }

for try in 1 2 3 4 5 6 7 8; do
    tls_port=$(nem_random_port)
    nem_port_free "$tls_port" && break
done
nem_ferretdb_start --listen-tls="127.0.0.1:$tls_port" --listen-tls-cert-file="$work/server.pem" \
    --listen-tls-key-file="$work/server.key" --listen-tls-ca-file="$work/ca.pem" || fail "cannot start FerretDB with TLS"
for i in $(seq 1 200); do nem_port_free "$tls_port" || break; sleep 0.05; done
nem_port_free "$tls_port" && fail "FerretDB's TLS port $tls_port never opened"

probe() { $PROBE --port "$tls_port" --timeout 5000 --tls "$@"; }

out=$(probe --ca "$work/ca.pem" --cert "$work/client-bundle.pem") || fail "TLS with CA and client certificate failed"
case $out in *"tls=true&tlsCAFile=$work/ca.pem&tlsCertificateKeyFile=$work/client-bundle.pem"*) ;;
    *) fail "public URI lacks the TLS settings: $out" ;; esac
NEM_PROBE_KEY_PASSWORD=key-pass-1 probe --ca "$work/ca.pem" --cert "$work/client-bundle-enc.pem" >/dev/null ||
    fail "TLS with an encrypted client key and its password failed"
probe --ca "$work/ca.pem" --cert "$work/client-bundle.pem" --crl "$work/crl-empty.pem" >/dev/null ||
    fail "TLS with a CRL that revokes nothing failed"

expect_fail 1 "TLS connection to MongoDB at 127\.0\.0\.1:$tls_port failed \(check --db-tls-ca-file.*\): .*certificate verify failed" \
    probe --cert "$work/client-bundle.pem"
expect_fail 1 "cannot reach MongoDB at 127\.0\.0\.1:$tls_port within 5000 ms" \
    probe --ca "$work/ca.pem"
expect_fail 1 "TLS connection to MongoDB at 127\.0\.0\.1:$tls_port failed .*: .*certificate revoked" \
    probe --ca "$work/ca.pem" --cert "$work/client-bundle.pem" --crl "$work/crl-revoked.pem"
expect_fail 1 "--db-tls-ca-file '$work/missing.pem': cannot read it: No such file or directory" \
    probe --ca "$work/missing.pem" --cert "$work/client-bundle.pem"
# Stage scripts connect with the same TLS settings: the CA and client certificate from the URI, the key-file
# password over an inherited pipe, the CRL from their options. A Python script (pymongo) and a C plugin (libmongoc)
# each read back through their own connection.
cat > "$work/tls_clean.py" <<'EOS'
def main(**kwargs):
    db = kwargs["db"].connect()
    db["tls_probe"].insert_one({"from": "python"})
    yield {"seen": db["tls_probe"].count_documents({})}
EOS
plugin="$top_builddir/tests/runner/.libs/plugin_fixture.so"
[ -f "$plugin" ] || fail "test plugin $plugin not built"
N_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD=key-pass-1 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$tls_port" --db-name tlsrun \
    --db-tls --db-tls-ca-file "$work/ca.pem" --db-tls-certificate-key-file "$work/client-bundle-enc.pem" \
    --db-tls-crl-file "$work/crl-empty.pem" --data-clean --data-cleaner "$work/tls_clean.py" "$plugin" \
    --data-cleaner-entry-point main clean --data-collection c --dl-learn --dl-learner "$plugin" \
    --dl-learner-entry-point learn --dl-data-collection c --dl-output-model-collection m \
    >"$work/run.out" 2>"$work/run.err" ||
    { cat "$work/run.out" "$work/run.err"; fail "stage scripts over TLS with an encrypted key and a CRL failed"; }
grep -Eq '^clean-0 +succeeded .* 1 +0 +[^ ]+$' "$work/run.out" || { cat "$work/run.out"; fail "the Python script wrote nothing over TLS"; }
grep -Eq '^clean-1 +succeeded .* [1-9][0-9]* +0 +[^ ]+$' "$work/run.out" || { cat "$work/run.out"; fail "the plugin wrote nothing over TLS"; }
# The plugin learner reads its batches through its own TLS connection.
grep -Eq '^learn-0 +succeeded .* 0 +1 +[^ ]+$' "$work/run.out" || { cat "$work/run.out"; fail "the plugin could not read over TLS"; }
grep -q "key-pass-1" "$work/run.err" && fail "the key password reached the log"
echo "tls: ok"
