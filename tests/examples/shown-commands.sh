#!/bin/bash
# Every command an example plugin's header shows runs as shown. From the first comment of each
# examples/plugins/*.c this takes the commands ("Build: ..." and "Run: ..." lines, and indented blocks that start
# with cc or nemesyst, with their backslash continuations) and runs them in that order, in a directory holding a
# copy of the examples' sources, as a user who installed nemesyst would: nemesyst on PATH, pkg-config finding
# nemesyst.pc (pointed at this build tree). Only the server is this test's (N_DB_PORT, N_DB_NAME: environment,
# not the command). Each command must exit 0, and every run must end with all its scripts ok.
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
[ -n "${NEM_TEST_PORT:-}" ] || fail "no test server (run through tests/fixtures/with-ferretdb.sh)"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/pc" "$tmp/bin"
sed -e "s|^includedir=.*|includedir=$top_srcdir/include|" -e "s|^libdir=.*|libdir=$top_builddir/.libs|" \
    "$top_builddir/nemesyst.pc" >"$tmp/pc/nemesyst.pc" || fail "no nemesyst.pc"
ln -s "$NEMESYST" "$tmp/bin/nemesyst"
export PKG_CONFIG_PATH="$tmp/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" PATH="$tmp/bin:$PATH"
export LD_LIBRARY_PATH="$top_builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export N_DB_IP=127.0.0.1 N_DB_PORT="$NEM_TEST_PORT" FASHION_MNIST_LIMIT=300
cp "$top_srcdir"/examples/plugins/*.c "$top_srcdir"/examples/plugins/*.h "$tmp/"

# commands FILE: the header's commands, one a line (continuations joined)
commands() {
    awk 'NR == 1 && !/^\/\*/ { exit }
         { line = $0; end = (line ~ /\*\//); sub(/\*\/.*/, "", line); sub(/^(\/\*| \*) ?/, "", line) }
         cont { cmd = cmd " " line; sub(/^ +/, "", line) }
         !cont && match(line, /^(Build|Run): +/) { cmd = substr(line, RLENGTH + 1); cont = 1 }
         !cont && match(line, /^    +(cc|nemesyst) /) { cmd = line; sub(/^ +/, "", cmd); cont = 1 }
         cont { if (cmd ~ /\\ *$/) sub(/\\ *$/, "", cmd); else { gsub(/  +/, " ", cmd); print cmd; cont = 0 } }
         end { exit }' "$1"
}

data=/usr/share/datasets/fashion-mnist
ran=0
for src in "$top_srcdir"/examples/plugins/*.c; do
    name=$(basename "$src" .c)
    case $name in
    fashion_mnist_*)
        [ -r "$data/train-images-idx3-ubyte.gz" ] || { echo "$name: left out ($data missing)"; continue; }
        pkg-config --exists hdf5-serial || { echo "$name: left out (no HDF5)"; continue; }
        case $name in *_learner | *_predictor)
            pkg-config --exists openblas || { echo "$name: left out (no OpenBLAS)"; continue; } ;; esac
        db=shown_fashion ;;
    *) db=shown_$name ;;
    esac
    n=0
    while IFS= read -r cmd; do
        n=$((n + 1))
        echo "$name: $cmd"
        (cd "$tmp" && N_DB_NAME=$db bash -c "$cmd") >"$tmp/out" 2>&1 ||
            { cat "$tmp/out" >&2; fail "$name's header command $n exits non-zero: $cmd"; }
        case $cmd in
        nemesyst*) grep -Eq '^run [^ ]+: [0-9]+ script\(s\), 0 failed' "$tmp/out" ||
            { cat "$tmp/out" >&2; fail "$name's header command $n: not every script ok: $cmd"; } ;;
        esac
        ran=$((ran + 1))
    done < <(commands "$src")
    [ "$n" -gt 0 ] || fail "$name: no command found in its header (the format this test reads changed?)"
done
[ "$ran" -ge 2 ] || fail "only $ran command(s) ran"
echo "shown-commands: $ran commands ran as shown"
