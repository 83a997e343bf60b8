#!/bin/bash
# The full serving cycle with FerretDB: init, start, authenticated insert and read-back, stop; a server left
# running by --db-start alone; a second start on the same db path; a wrong password.
. ./tests/env.sh
. "$top_srcdir/tests/serve/lib.sh"

# init -> start -> insert and read back as the new user -> stop, in one run.
out=$(NEM_SERVE_TOOL_ROUNDTRIP=1 serve --db-init --db-start --db-stop 2>"$T/err") || { cat "$T/err" >&2; fail "full cycle"; }
[ "$out" = "roundtrip ok" ] || fail "round trip: $out"
[ "$(stat -c %a "$DB")" = 700 ] || fail "db path mode $(stat -c %a "$DB")"
[ "$(stat -c %a "$DB/log")" = 700 ] || fail "log path mode"
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after --db-stop"
grep -q "ready on 127.0.0.1:$PORT after" "$T/err" || fail "no readiness line"
! grep -q 'pa55' "$T/err" "$DB/log/mongo_log" || fail "password in a log"

# --db-start alone leaves the server running, with a pid file, and no password on its command line nor in its
# environment (the secret N_* variables nemesyst read stay with nemesyst, as do NEMESYST_* values).
N_DB_PASSWORD='pa55 "word"' N_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD=keyfilesecret NEMESYST_RUN_ID=stale \
    serve --db-start 2>"$T/err" || { cat "$T/err" >&2; fail "start"; }
pid=$(server_pid)
alive "$pid" || fail "server $pid not running after --db-start"
! tr '\0' '\n' < "/proc/$pid/cmdline" | grep -q 'pa55' || fail "password on the server's command line"
tr '\0' '\n' < "/proc/$pid/environ" > "$T/environ" || fail "cannot read the server's environment"
grep -q '^PATH=' "$T/environ" || fail "the server lost its ordinary environment"
! grep -Eq '^(N_DB_PASSWORD|N_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD|NEMESYST_RUN_ID)=|pa55|keyfilesecret' "$T/environ" ||
    fail "a secret or stale variable in the server's environment: $(grep -E '^N_|^NEMESYST_' "$T/environ")"
tr '\0' '\n' < "/proc/$pid/cmdline" | grep -qx -- '--test-enable-new-auth' || fail "started without auth"

# A second server on the same db path is refused, clearly.
expect_fail 3 "already running on db path $DB \\(pid $pid" serve --db-start --db-port "$(free_port)"
alive "$pid" || fail "the refused start hurt the running server"

# The user can log in; a wrong password cannot.
out=$(NEM_SERVE_TOOL_ROUNDTRIP=1 serve 2>/dev/null)
[ "$out" = "roundtrip ok" ] || fail "login to the running server: $out"

# --db-stop from another run finds it through the pid file and leaves no process.
serve --db-stop 2>"$T/err" || { cat "$T/err" >&2; fail "stop"; }
! alive "$pid" || fail "server $pid still running after --db-stop"
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left"

printf 'wrong\n' > "$T/bad" && chmod 600 "$T/bad"
expect_fail 3 "user 'alice' cannot log in to database 'nemesyst'.*[Aa]uthentication failed" \
    serve --db-start --db-password-file "$T/bad"
[ ! -e "$DB/nemesyst.pid" ] || ! alive "$(server_pid)" || fail "server left after a failed login check"

# Two ranks: rank 0 serves, both end with the same status.
nem_mpirun -n 2 "$SERVE_TOOL" --db-engine ferretdb --db-path "$DB" --db-log-path "$DB/log" --db-port "$PORT" \
    --db-user-name alice --db-password-file "$T/pw" --db-start --db-stop 2>"$T/err" || { cat "$T/err" >&2; fail "mpirun -n 2 start/stop"; }
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left after mpirun start/stop"
exit 0
