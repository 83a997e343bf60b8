#!/bin/bash
# Serving through the nemesyst binary itself (src/app/run.c calls nem_serve_begin/nem_serve_end): one-command
# init+start+stop, a loose password file refused before anything starts, SIGTERM during --db-start.
. ./tests/env.sh
. "$top_srcdir/tests/serve/lib.sh"
NEM_ARGS=(--db-engine ferretdb --db-path "$DB" --db-log-path "$DB/log" --db-port "$PORT" --db-user-name alice
          --db-password-file "$T/pw")

"$NEMESYST" "${NEM_ARGS[@]}" --db-init --db-start --db-stop 2>"$T/err" || { cat "$T/err" >&2; fail "init+start+stop"; }
grep -q "ferretdb ready on 127.0.0.1:$PORT" "$T/err" || fail "no readiness line: $(cat "$T/err")"
[ ! -e "$DB/nemesyst.pid" ] || fail "pid file left"

chmod 644 "$T/pw"
expect_fail 2 "accessible by group or others" "$NEMESYST" "${NEM_ARGS[@]}" --db-start
[ ! -e "$DB/nemesyst.pid" ] || fail "a server was started despite the loose password file"
chmod 600 "$T/pw"

printf '#!/bin/bash\nsleep 3 3>&-\nexec "%s" "$@"\n' "$FERRETDB_BIN" > "$T/slow" && chmod +x "$T/slow"
NEMESYST_FERRETDB="$T/slow" "$NEMESYST" "${NEM_ARGS[@]}" --db-start 2>"$T/err" & tool=$!
wait_for_file "$DB/nemesyst.pid" || fail "no pid file"
pid=$(server_pid)
kill -TERM "$tool"
rc=0; wait "$tool" || rc=$?
[ "$rc" = 143 ] || fail "SIGTERM during start: exit $rc ($(cat "$T/err"))"
! alive "$pid" || fail "server $pid left after SIGTERM to nemesyst during --db-start"
exit 0
