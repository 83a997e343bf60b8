#!/bin/bash
# Serving failures, each with one clear error and no process or pid file left behind: a busy port, ranks on several
# hosts with a loopback-only server, a db path that cannot be written, a missing db path, a password file readable
# by others, a server that dies at once, one that cannot be executed, one that never answers.
. ./tests/env.sh
. "$top_srcdir/tests/serve/lib.sh"

serve --db-init 2>"$T/err" || { cat "$T/err" >&2; fail "init"; }

# The fixture's FerretDB holds NEM_TEST_PORT: refuse it, name it, start nothing.
before=$(pgrep -c -f -- "--sqlite-url=file:$DB/" || true)
expect_fail 3 "port $NEM_TEST_PORT on 127.0.0.1 is already in use" serve --db-start --db-port "$NEM_TEST_PORT"
[ "$(pgrep -c -f -- "--sqlite-url=file:$DB/" || true)" = "$before" ] || fail "a server was left after the busy port"
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after the busy port: '$(cat "$DB/nemesyst.pid")'"
# A port with no listener that a connection holds as its local port: a server could not listen there either.
held=$(nem_random_port)
"$PYTHON3" -c '
import socket, sys, time, os
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.connect(("127.0.0.1", int(sys.argv[2])))
open(sys.argv[3], "w").close()
while os.path.exists(sys.argv[3]): time.sleep(0.05)
' "$held" "$NEM_TEST_PORT" "$T/holding" &
holder=$!
for _ in $(seq 1 100); do [ -e "$T/holding" ] && break; sleep 0.05; done
[ -e "$T/holding" ] || fail "the port holder never started"
expect_fail 3 "port $held on 127.0.0.1 is already in use" serve --db-start --db-port "$held"
rm -f "$T/holding"; wait "$holder"
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after the held port"
# ... and every rank ends with that status.
rc=0; nem_mpirun -n 2 "$SERVE_TOOL" --db-engine ferretdb --db-path "$DB" --db-log-path "$DB/log" \
    --db-port "$NEM_TEST_PORT" --db-start 2>"$T/err" || rc=$?
[ "$rc" = 3 ] || fail "mpirun -n 2 with a busy port: exit $rc"
[ "$(grep -c 'already in use' "$T/err")" = 1 ] || fail "expected one error line from rank 0: $(cat "$T/err")"
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after the busy port (mpirun)"

# Ranks on more than one host while the server would listen on loopback only: refused on every rank, before
# anything starts, naming --db-bind-ip. Rank 1 pretends to run elsewhere.
rc=0; NEM_SERVE_TOOL_HOST=elsewhere.invalid nem_mpirun -n 2 "$SERVE_TOOL" "${SERVE_ARGS[@]}" --db-start --db-stop \
    2>"$T/err" || rc=$?
[ "$rc" = 3 ] || fail "ranks on two hosts, loopback-only server: exit $rc ($(cat "$T/err"))"
[ "$(grep -c -- 'more than one host, but --db-bind-ip localhost is loopback only' "$T/err")" = 1 ] ||
    fail "expected one error naming --db-bind-ip: $(cat "$T/err")"
[ ! -e "$DB/nemesyst.pid" ] || fail "a server was started for ranks that cannot reach it"
# ... while an address the other host can reach makes it fine.
NEM_SERVE_TOOL_HOST=elsewhere.invalid nem_mpirun -n 2 "$SERVE_TOOL" "${SERVE_ARGS[@]}" --db-bind-ip localhost 0.0.0.0 \
    --db-start --db-stop >"$T/out" 2>"$T/err" || { cat "$T/err" >&2; fail "ranks on two hosts, server on 0.0.0.0"; }
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after mpirun start/stop on 0.0.0.0"
# The rank "elsewhere", told to reach a loopback --db-ip, is pointed at rank 0's host by serving; rank 0 is not.
grep -qx "rank 1 reaches the server on $(hostname)" "$T/out" || fail "rank 1 not pointed at rank 0's host: $(cat "$T/out")"
! grep -q "rank 0 reaches" "$T/out" || fail "rank 0 was redirected: $(cat "$T/out")"

# A db path under a regular file cannot be created (root ignores modes, so use a file).
touch "$T/file"
expect_fail 3 "cannot create directory $T/file" serve --db-init --db-path "$T/file/db"
expect_fail 3 "is not a directory \\(run --db-init first\\)" serve --db-start --db-path "$T/none"

# The config layer refuses a password file others can read.
chmod 644 "$T/pw"
expect_fail 2 "group or others|permissions|readable" serve --db-start
chmod 600 "$T/pw"

# A server that dies at once: its own words come back in the error.
printf '#!/bin/sh\necho "fake ferretdb: cannot open the database: boom" >&2\nexit 1\n' > "$T/dies" && chmod +x "$T/dies"
NEMESYST_FERRETDB="$T/dies" expect_fail 3 "exited with status 1 before it answered ping" serve --db-start
NEMESYST_FERRETDB="$T/dies" expect_fail 3 "^    \| fake ferretdb: cannot open the database: boom$" serve --db-start
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after a server that died at once"

# A server binary that cannot be executed (its interpreter is missing): exec's own error, nothing "started".
printf '#!/nonexistent/interp\n' > "$T/badinterp" && chmod +x "$T/badinterp"
NEMESYST_FERRETDB="$T/badinterp" expect_fail 3 "cannot execute $T/badinterp: No such file or directory" serve --db-start
! NEMESYST_FERRETDB="$T/badinterp" serve --db-start 2>&1 | grep -q "started pid" || fail "an exec failure was reported as a start"
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after an exec failure"

# A server that never answers: the deadline, the address, and nothing left running.
printf '#!/bin/sh\necho "fake ferretdb: stuck" >&2\nexec sleep 60\n' > "$T/stuck" && chmod +x "$T/stuck"
start=$SECONDS
NEMESYST_FERRETDB="$T/stuck" expect_fail 3 "did not answer ping on 127.0.0.1:$PORT within --db-start-timeout 1 s" \
    serve --db-start --db-start-timeout 1
[ $((SECONDS - start)) -lt 10 ] || fail "the deadline was not honoured"
[ ! -e "$DB/nemesyst.pid" ] || ! alive "$(server_pid)" || fail "stuck server left running"
exit 0
