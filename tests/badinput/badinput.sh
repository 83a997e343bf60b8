#!/bin/bash
# The bad-input catalogue: every case of cases.tsv (next to this script) runs against the built nemesyst in an
# empty directory of its own, under a time limit, and must exit with its status (2: nothing was started), print
# exactly one line on stderr ("nemesyst: error: ..."), holding the case's expected text, and neither crash (no exit
# of 128 or more) nor hang. No case needs a database server.
#
# cases.tsv: one case a line, five tab-separated fields (# starts a comment line; "-" is an empty field):
#   name  exit  expected-stderr-text  setup  arguments
# setup is shell run in the case's directory first (it may export N_* variables); arguments are shell words
# (quotes, $'...' and $(...) work); arguments whose first word is nemesyst-registry run the built nemesyst-registry
# with the rest instead (its refusals start "nemesyst-registry: error: "). Helpers for both:
#   mk FILE FORMAT        write FILE with printf FORMAT (\n, \r, \0, \377 escapes; %% for %)
#   pw FILE FORMAT        the same, mode 0600 (a password file)
#   rep CHAR N            print CHAR N times
#   fill FILE N           write N bytes of '#' to FILE
#   chain N               c1.conf includes c2.conf ... includes cN.conf (config = ...)
#   nest N                print N nested JSON arrays: [[[...]]]
# Usage: badinput.sh [NAME-PATTERN]   (run only the cases whose name matches the grep -E pattern)
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
cases="$top_srcdir/tests/badinput/cases.tsv"
[ -r "$cases" ] || fail "no case table at $cases"
only=${1:-}
limit=${NEMESYST_BADINPUT_TIMEOUT:-20}
REGISTRY="$top_builddir/nemesyst-registry"

root=$(mktemp -d) || exit 99
trap 'chmod -R u+rwx "$root" 2>/dev/null; rm -rf "$root"' EXIT
mkdir "$root/sysconf"
# Hermetic: no site config files, no N_* settings from the caller's environment.
export NEMESYST_SYSCONFDIR="$root/sysconf"
for v in $(compgen -e); do
    case $v in N_*) unset "$v" ;; esac
done

mk() { printf -- "$2" > "$1"; }
pw() { mk "$1" "$2" && chmod 600 "$1"; }
rep() { head -c "$2" /dev/zero | tr '\0' "$1"; }
fill() { rep '#' "$2" > "$1"; }
chain() {
    local i
    for ((i = 1; i < $1; i++)); do echo "config = c$((i + 1)).conf" > "c$i.conf"; done
    echo "db-name = end" > "c$1.conf"
}
nest() { rep '[' "$1"; rep ']' "$1"; }

total=0 passed=0 failed=()
while IFS=$'\t' read -r name want text setup args; do
    case $name in '' | '#'*) continue ;; esac
    [ -n "$only" ] && ! printf '%s\n' "$name" | grep -Eq -- "$only" && continue
    total=$((total + 1))
    [ "$setup" = - ] && setup=
    [ "$args" = - ] && args=
    d="$root/case-$total"
    mkdir "$d"
    prefix="nemesyst: error: "
    case $args in nemesyst-registry | "nemesyst-registry "*) prefix="nemesyst-registry: error: " ;; esac
    (
        cd "$d" || exit 99
        eval "$setup" || { echo "setup failed: $setup" >&2; exit 98; }
        eval "set -- $args" || { echo "bad arguments field: $args" >&2; exit 98; }
        prog=$NEMESYST
        [ "${1:-}" = nemesyst-registry ] && { prog=$REGISTRY; shift; }
        exec timeout -k 5 "$limit" "$prog" "$@"
    ) > "$d.out" 2> "$d.err" < /dev/null
    rc=$?
    why=
    lines=$(wc -l < "$d.err")
    first=$(head -n 1 "$d.err")
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        why="hung: killed after ${limit}s"
    elif [ "$rc" -ne "$want" ]; then
        why="exit $rc, want $want"
        [ "$rc" -ge 128 ] && why="$why (crashed: signal $((rc - 128)))"
    elif [ "$lines" -ne 1 ]; then
        why="$lines lines on stderr, want 1"
    elif [ "$want" -eq 2 ] && [ "${first#"$prefix"}" = "$first" ]; then
        why="stderr does not start with '$prefix'"
    elif ! grep -Fq -- "$text" "$d.err"; then
        why="stderr lacks '$text'"
    fi
    if [ -n "$why" ]; then
        failed+=("$name: $why; stderr: $(head -c 400 "$d.err" | tr '\n' '|')")
    else
        passed=$((passed + 1))
    fi
    chmod -R u+rwx "$d" 2>/dev/null
    rm -rf "$d"
done < "$cases"

for f in "${failed[@]}"; do echo "FAIL: $f" >&2; done
echo "badinput: $passed of $total cases passed"
[ "$total" -gt 0 ] || fail "no case ran"
[ ${#failed[@]} -eq 0 ]
