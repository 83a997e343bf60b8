#!/bin/bash
# libnemesyst.so exports the plugin API and nothing else: every function include/nemesyst.h declares (read by the
# compiler, -aux-info, not by a pattern) is a defined dynamic symbol of .libs/libnemesyst.so, and every defined
# dynamic symbol is one of them, or nemesyst__host_run, the host's one private entry point (src/plugin/
# plugin-private.h says why). The library's version (nemesyst_version, nemesyst_version_string) is the header's
# and the package's.
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
lib="$top_builddir/.libs/libnemesyst.so"
[ -f "$lib" ] || fail "libnemesyst not built: $lib"
incdir=$(cd "$top_srcdir/include" && pwd) || exit 99
header="$incdir/nemesyst.h"
private=nemesyst__host_run

printf '#include <nemesyst.h>\n' >"$tmp/h.c"
cc -fsyntax-only -aux-info "$tmp/aux" -I"$incdir" $(pkg-config --cflags libmongoc-1.0) "$tmp/h.c" ||
    fail "nemesyst.h does not compile"
# lines like: /* .../include/nemesyst.h:101:NC */ extern unsigned int nemesyst_version (void);
grep -F "/* $header:" "$tmp/aux" |
    sed -n 's/.*[ *]\([A-Za-z_][A-Za-z0-9_]*\) (.*/\1/p' | sort -u >"$tmp/declared"
n=$(wc -l <"$tmp/declared")
[ "$n" -ge 30 ] || fail "only $n functions read from $header"
nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | sort -u >"$tmp/exported"

missing=$(comm -23 "$tmp/declared" "$tmp/exported")
[ -z "$missing" ] || fail "declared in nemesyst.h but not exported by libnemesyst.so (NEMESYST_EXTERN?):" $missing
extra=$(comm -13 "$tmp/declared" "$tmp/exported" | grep -vx "$private")
[ -z "$extra" ] || fail "exported by libnemesyst.so but declared in no public header:" $extra
grep -qx "$private" "$tmp/exported" || fail "$private (the host's entry point) is not exported"
grep -q "NEMESYST_EXTERN bool $private(" "$top_srcdir/src/plugin/plugin-private.h" ||
    fail "$private is not declared where the host's private entry point is documented"

# the version: header macros, the library at run time, the package
v=$(sed -n 's/^#define NEMESYST_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' "$header" | paste -sd.)
# An AddressSanitizer build's library needs the sanitizer's runtime first in the process (python is not built with
# it): preload it, and leave the interpreter's own allocations alone.
preload=
if grep -q -- '-fsanitize=[a-z,]*address' Makefile 2>/dev/null; then
    preload=$(${CC:-cc} -print-file-name=libasan.so 2>/dev/null)
    [ -f "$preload" ] || preload=$(gcc -print-file-name=libasan.so)
fi
got=$(LD_PRELOAD=${preload:-${LD_PRELOAD:-}} ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "$PYTHON3" -c '
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.nemesyst_version_string.restype = ctypes.c_char_p
lib.nemesyst_version.restype = ctypes.c_uint
n = lib.nemesyst_version()
print("%s %d.%d.%d" % (lib.nemesyst_version_string().decode(), n >> 16, (n >> 8) & 255, n & 255))' "$lib") ||
    fail "cannot call nemesyst_version through $lib"
[ "$got" = "$v $v" ] || fail "the library says '$got', nemesyst.h says $v"
said=$("$NEMESYST" --version)
[ "$said" = "nemesyst $v" ] || fail "nemesyst --version says '$said', nemesyst.h $v"
echo "plugin-exports: $n public functions and $private exported, nothing else; version $v"
