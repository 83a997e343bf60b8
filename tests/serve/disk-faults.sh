#!/bin/bash
# A full disk and a read-only db path (a small tmpfs of the test's own; skipped where mounting is not allowed): the
# clean stage that fills the disk fails with the server's "disk is full" and exit 3; the server still stops; a
# start on the read-only db path fails clearly (exit 3) and leaves nothing behind; once there is room again the
# server starts and --resume stores every document exactly once.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
. "$top_srcdir/tests/serve/lib.sh"
MNT="$T/mnt"
mkdir -p "$MNT"
mount -t tmpfs -o size=3m,mode=700 tmpfs "$MNT" 2>/dev/null || { echo "SKIP: cannot mount a tmpfs here"; exit 77; }
trap 'serve_cleanup_mnt' EXIT
serve_cleanup_mnt() {
    [ -f "$MNT/db/nemesyst.pid" ] && kill -KILL "$(head -n1 "$MNT/db/nemesyst.pid")" 2>/dev/null
    sleep 0.2
    umount "$MNT" 2>/dev/null || umount -l "$MNT"
    serve_cleanup
}
cat >"$T/many.sh" <<'EOS'
#!/bin/sh
awk 'BEGIN { for (i = 0; i < 50000; i++) printf "{\"i\": %d, \"pad\": \"%s\"}\n", i, sprintf("%60s", "") }'
EOS
chmod +x "$T/many.sh"
args=(--db-engine ferretdb --db-path "$MNT/db" --db-log-path "$MNT/db/log" --db-ip 127.0.0.1 --db-port "$PORT"
      --db-name full --db-user-name alice --db-password-file "$T/pw" --heartbeat 1)
"$NEMESYST" "${args[@]}" --db-init --db-start 2>"$T/err0" || { cat "$T/err0"; fail "init and start"; }
RC=0
"$NEMESYST" "${args[@]}" --data-clean --data-cleaner "$T/many.sh" --data-collection c >"$T/out" 2>"$T/err" || RC=$?
cat "$T/out"; sed 's/^/   stderr: /' "$T/err" | tail -n 4 | cut -c1-400
[ "$RC" -eq 3 ] || fail "exit status $RC when the disk filled, want 3"
grep -q "disk is full" "$T/err" || fail "the error does not say the disk is full"
RUN=$(sed -n 's/.* info: run \([^ ]*\)$/\1/p' "$T/err" | head -n 1)
"$NEMESYST" "${args[@]}" --db-stop 2>"$T/err1" || { cat "$T/err1"; fail "stop on a full disk"; }

mount -o remount,ro "$MNT"
RC=0; "$NEMESYST" "${args[@]}" --db-start 2>"$T/err2" || RC=$?
cat "$T/err2"
[ "$RC" -eq 3 ] || fail "start on a read-only db path: exit $RC, want 3"
grep -q "cannot be written: Read-only file system" "$T/err2" || fail "unclear error for a read-only db path"
[ ! -e "$MNT/db/nemesyst.pid" ] || fail "a pid file after the failed start"

mount -o remount,rw,size=64m "$MNT"
"$NEMESYST" "${args[@]}" --db-start 2>"$T/err3" || { cat "$T/err3"; fail "start once there is room again"; }
sleep 3.5 # the cut-off run's heartbeat expires: it is lost
"$NEMESYST" "${args[@]}" --data-clean --data-cleaner "$T/many.sh" --data-collection c --resume "$RUN" \
    >"$T/out4" 2>"$T/err4" || { cat "$T/out4" "$T/err4"; fail "--resume once there is room"; }
NEM_T_USER=alice NEM_T_PASSWORD="$(cat "$T/pw")" NEM_T_PORT=$PORT check full <<'PY'
eq(run["status"], "succeeded", "status after resume")
eq(count("c"), 50000, "documents: each exactly once")
PY
"$NEMESYST" "${args[@]}" --db-stop 2>/dev/null || fail "final stop"
