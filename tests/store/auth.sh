#!/bin/bash
# Authentication against a second FerretDB started with new auth and a setup user (secrets through its
# environment, as the product does): the right password connects and writes; a wrong password or an unknown user
# gives a clear one-line authentication error naming the user and database. The password never goes in argv.
. ./tests/env.sh
. "$top_srcdir/tests/fixtures/ferretdb.sh"
trap nem_ferretdb_stop EXIT
PROBE=./tests/store/store-probe

FERRETDB_SETUP_USERNAME=alice FERRETDB_SETUP_PASSWORD='s3cret pass' FERRETDB_SETUP_DATABASE=nemtest \
    nem_ferretdb_start --test-enable-new-auth || fail "cannot start FerretDB with --test-enable-new-auth"
port=$NEM_TEST_PORT

for mech in SCRAM-SHA-1 SCRAM-SHA-256; do
    out=$(NEM_PROBE_PASSWORD='s3cret pass' $PROBE --port "$port" --db nemtest --user alice --mechanism $mech) ||
        fail "right password with $mech was refused"
    case $out in
        ok\ mongodb://alice@127.0.0.1:$port/nemtest\?authSource=nemtest\&authMechanism=$mech*) ;;
        *) fail "unexpected public URI: $out" ;;
    esac
    case $out in *s3cret*) fail "the password leaked into the public URI: $out" ;; esac
done

NEM_PROBE_PASSWORD=wrong expect_fail 1 \
    "authentication failed for user 'alice' on database 'nemtest' \(SCRAM-SHA-256\) at 127\.0\.0\.1:$port: .*\(domain 1003, code 3\)" \
    $PROBE --port "$port" --db nemtest --user alice --mechanism SCRAM-SHA-256
NEM_PROBE_PASSWORD=whatever expect_fail 1 "authentication failed for user 'mallory' on database 'admin'" \
    $PROBE --port "$port" --db nemtest --user mallory --auth-db admin --mechanism SCRAM-SHA-1
echo "auth: ok"
