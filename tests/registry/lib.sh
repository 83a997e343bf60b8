# Helpers of the registry tests (bash; sourced after tests/stage/lib.sh, with the build directory as cwd).
#   REGISTRY              the nemesyst-registry under test (the test fails when it is not built)
#   CONN                  the connection options reg and vg give it: the test server and database $REG_DB (set
#                         REG_DB before sourcing, or set CONN yourself; REG_WHERE names it in the log)
#   REG_HEAD              how many bytes of each reg's stdout the log shows (default 6000)
#   REG_CAT_V             set (to anything): the log shows that stdout through cat -v (for binary output)
#   reg ARGS...           runs the registry; sets RRC (its exit status), ROUT and RERR (files), and logs all three
#   want_rc N             the last reg exited N
#   bad PATTERN ARGS...   reg ARGS... is refused: exit 2, one line on stderr matching PATTERN, nothing on stdout
#   bad_rc N PATTERN ARGS...  the same with exit status N
#   vg ARGS...            reg ARGS... under valgrind (where installed and this is no sanitizer build): fails the
#                         test on a memory error or a definite leak; sets VRC (empty where valgrind did not run)
# Used by bundle.sh, registry.sh, affected.sh, diff.sh, prov.sh and names-tags.sh.
REGISTRY="$top_builddir/nemesyst-registry"
[ -x "$REGISTRY" ] || fail "$REGISTRY not built"
CONN=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name "${REG_DB:-reg}")
REG_WHERE=
REG_HEAD=${REG_HEAD:-6000}
REG_CAT_V=${REG_CAT_V:-}
NREG=0

reg() {
    NREG=$((NREG + 1))
    ROUT="$T/reg.$NREG.out" RERR="$T/reg.$NREG.err"
    "$REGISTRY" "${CONN[@]}" "$@" >"$ROUT" 2>"$RERR"
    RRC=$?
    echo "== ${REG_WHERE:+[$REG_WHERE] }nemesyst-registry $* -> exit $RRC"
    if [ -n "$REG_CAT_V" ]; then head -c "$REG_HEAD" "$ROUT" | cat -v; else head -c "$REG_HEAD" "$ROUT"; fi |
        sed '$a\' # a last line without its newline gets one, so that stderr starts a line of its own
    sed 's/^/   stderr: /' "$RERR"
}

want_rc() { [ "$RRC" -eq "$1" ] || fail "expected exit status $1 from nemesyst-registry, got $RRC"; }

bad() { bad_rc 2 "$@"; }

bad_rc() {
    local want=$1 pat=$2
    shift 2
    reg "$@"
    want_rc "$want"
    [ "$(wc -l <"$RERR")" -eq 1 ] || fail "expected one line on stderr from: $*"
    grep -Eq -- "$pat" "$RERR" || fail "expected '$pat' on stderr of: $*"
    [ ! -s "$ROUT" ] || fail "expected nothing on stdout from: $*"
}

VRC=
vg() {
    VRC=
    command -v valgrind >/dev/null 2>&1 || return 0
    grep -q -- '-fsanitize' Makefile 2>/dev/null && return 0
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=97 \
        --suppressions="$top_srcdir/tests/valgrind.supp" "$REGISTRY" "${CONN[@]}" "$@" >"$T/vg.out" 2>"$T/vg.err"
    VRC=$?
    echo "== valgrind ${REG_WHERE:+[$REG_WHERE] }nemesyst-registry $* -> exit $VRC"
    cat "$T/vg.out"
    [ "$VRC" -eq 0 ] || sed 's/^/   stderr: /' "$T/vg.err"
    [ "$VRC" -ne 97 ] || fail "valgrind found errors in nemesyst-registry $*"
}
