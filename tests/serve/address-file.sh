#!/bin/bash
# Many jobs, one store: a serving run writes where clients find its server (--db-address-file: host, port, tls;
# atomically, mode 0600) once the server answers, and --db-stop removes it; a client run given only the file waits
# for it (up to --db-start-timeout) and connects there; a client started before the server still finds it; no file
# in time is exit 3 naming it; the file with --db-ip or --db-port is refused (exit 2).
. ./tests/env.sh
. "$top_srcdir/tests/serve/lib.sh"
ADDR="$T/store.addr"
cat >"$T/clean.sh" <<'EOS'
#!/bin/sh
for i in 1 2 3; do echo "{\"i\": $i}"; done
EOS
chmod +x "$T/clean.sh"
client() { # COLLECTION [ARGS...]: a client run of a cleaner into the store's database, through the address file
    local c=$1
    shift
    "$NEMESYST" --db-address-file "$ADDR" --db-user-name alice --db-password-file "$T/pw" --db-name store \
        --data-clean --data-cleaner "$T/clean.sh" --data-collection "$c" "$@"
}
count() {
    "$PYTHON3" -c 'import sys, pymongo; c = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), username="alice", password=open(sys.argv[2]).read().rstrip("\n"), authSource="store"); print(c["store"][sys.argv[3]].count_documents({}))' "$PORT" "$T/pw" "$1"
}

# A client that starts first waits for the serving run's file.
client early --db-start-timeout 60 >"$T/early.out" 2>&1 &
early=$!
"$NEMESYST" "${SERVE_ARGS[@]}" --db-name store --db-init --db-start --db-address-file "$ADDR" >"$T/serve.out" 2>&1 ||
    { cat "$T/serve.out"; fail "the serving run"; }
[ "$(stat -c %a "$ADDR")" = 600 ] || fail "the address file's mode is $(stat -c %a "$ADDR"), want 600"
"$PYTHON3" -c 'import json, sys; a = json.load(open(sys.argv[1])); assert (a["host"], a["port"], a["tls"]) == ("127.0.0.1", int(sys.argv[2]), False), a' \
    "$ADDR" "$PORT" || fail "the address file: $(cat "$ADDR")"
ls "$T" | grep -q 'store.addr\.' && fail "a temporary address file was left beside it"
wait "$early" || { cat "$T/early.out"; fail "the client that started first"; }
grep -q "the server is at 127.0.0.1 port $PORT" "$T/early.out" || fail "the early client did not say where it went"
[ "$(count early)" = 3 ] || fail "the early client's documents"

# A client started after the server, with the file only.
client late >"$T/late.out" 2>&1 || { cat "$T/late.out"; fail "a client through the address file"; }
[ "$(count late)" = 3 ] || fail "the late client's documents"

# The file and --db-port together: refused before anything starts.
client both --db-port 1 >"$T/both.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "says where the server is, and --db-port (cli) too: give one" "$T/both.out" ||
    fail "address file and --db-port: exit $rc: $(cat "$T/both.out")"

# --db-stop removes the file; a client then waits --db-start-timeout for it and fails with exit 3, naming it.
"$NEMESYST" "${SERVE_ARGS[@]}" --db-stop --db-address-file "$ADDR" >"$T/stop.out" 2>&1 ||
    { cat "$T/stop.out"; fail "--db-stop"; }
[ ! -e "$ADDR" ] || fail "--db-stop left the address file"
client gone --db-start-timeout 1 >"$T/gone.out" 2>&1
rc=$?
cat "$T/gone.out"
[ $rc -eq 3 ] || fail "no address file: exit $rc, want 3"
[ "$(wc -l <"$T/gone.out")" -eq 1 ] && grep -q "^nemesyst: error: cli: --db-address-file '$ADDR': no server address within --db-start-timeout 1 s: it does not exist yet" "$T/gone.out" ||
    fail "no address file: the message"
echo "address-file: ok"
