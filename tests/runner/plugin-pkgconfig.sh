#!/bin/bash
# `pkg-config --cflags --libs nemesyst` is all a plugin needs: build one with the generated nemesyst.pc (a copy
# pointed at the build tree instead of the install prefix) and check the entry point it exports.
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
sed -e "s|^includedir=.*|includedir=$top_srcdir/include|" -e "s|^libdir=.*|libdir=$top_builddir/.libs|" \
    "$top_builddir/nemesyst.pc" > "$tmp/nemesyst.pc" || fail "no nemesyst.pc"
flags=$(PKG_CONFIG_PATH="$tmp${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" pkg-config --cflags --libs nemesyst) \
    || fail "pkg-config nemesyst failed"
cc -Wall -Wextra -Werror -shared -fPIC -o "$tmp/plugin.so" "$top_srcdir/tests/runner/plugin_fixture.c" $flags \
    || fail "a plugin does not build with: $flags"
nm -D --defined-only "$tmp/plugin.so" | grep -qw nemesyst_main || fail "nemesyst_main not exported"
# the example plugins build the same way (those using zlib, HDF5 or OpenBLAS add its flags, as their authors would;
# without HDF5 or OpenBLAS installed the MLP ones are left out, as configure leaves them out)
for src in "$top_srcdir"/examples/plugins/*.c; do
    extra=
    grep -q '<zlib.h>' "$src" && extra="$(pkg-config --cflags --libs zlib)"
    if grep -q 'fashion_mnist_model.h\|<hdf5.h>' "$src"; then
        pkg-config --exists hdf5-serial || { echo "no HDF5: $src left out"; continue; }
        extra="$extra $(pkg-config --cflags --libs hdf5-serial) -lm"
    fi
    if grep -q 'fashion_mnist_model.h\|<cblas.h>' "$src"; then
        pkg-config --exists openblas || { echo "no OpenBLAS: $src left out"; continue; }
        extra="$extra $(pkg-config --cflags --libs openblas)"
    fi
    cc -Wall -Wextra -Werror -shared -fPIC -o "$tmp/example.so" "$src" $flags $extra || fail "example $src does not build"
done
LD_LIBRARY_PATH="$top_builddir/.libs" ldd "$tmp/plugin.so" | grep -q 'libnemesyst.so.0 => .*\.libs/' \
    || fail "plugin does not resolve libnemesyst"
echo "plugin-pkgconfig: ok"
