# Helpers for the serving tests (bash; sourced after tests/env.sh). Each test works in its own temporary
# directory on a free port it picks, and stops any server it left by the pid recorded in its db path.
SERVE_TOOL="$top_builddir/tests/serve/serve-tool"
FERRETDB_BIN=$("$top_srcdir/build-aux/build-ferretdb.sh" --print-path)
export NEMESYST_FERRETDB="$FERRETDB_BIN"
T=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-serve-test.XXXXXX")
DB="$T/db"
printf 'pa55 "word"\n' > "$T/pw" && chmod 600 "$T/pw"

serve_cleanup() {
    local pid
    for f in "$T"/*/nemesyst.pid "$T"/nemesyst.pid; do
        [ -f "$f" ] && pid=$(head -n1 "$f") && [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$T"
}
trap serve_cleanup EXIT

free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$(nem_random_port)
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    return 1
}
PORT=$(free_port) || fail "no free port"

# A live process, not a zombie waiting for init to reap it.
alive() {
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
    ! sed 's/.*) //' "/proc/$1/stat" | grep -q '^Z'
}

# serve OPTIONS...: the tool with this test's db path, log path, port and user.
# In the background use "$SERVE_TOOL" "${SERVE_ARGS[@]}" ... & so that $! is the tool itself, not a subshell.
SERVE_ARGS=(--db-engine ferretdb --db-path "$DB" --db-log-path "$DB/log" --db-port "$PORT" --db-user-name alice
            --db-password-file "$T/pw")
serve() {
    "$SERVE_TOOL" "${SERVE_ARGS[@]}" "$@"
}

server_pid() { head -n1 "$DB/nemesyst.pid" 2>/dev/null; }

# Waits up to 60 s for a file to appear (a loaded machine is slow; the condition, not a guess).
wait_for_file() {
    for _ in $(seq 1 1200); do [ -s "$1" ] && return 0; sleep 0.05; done
    return 1
}
