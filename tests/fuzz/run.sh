#!/bin/bash
# libFuzzer targets for the parsers of untrusted input, built with clang and run for a bounded time each:
#   fuzz_conffile   config files (src/config/conffile.c and the checks a run applies to what they set)
#   fuzz_items      a stage script's output: JSON lines and BSON streams with markers (src/stage/runner/runner-items.c)
#   fuzz_pipeline   pipeline options and their provenance JSON (src/config/config.c, src/stage/worker/writer.c,
#                   src/provenance/provenance.c)
#
#   tests/fuzz/run.sh [BUILD_DIR] [SECONDS_PER_TARGET]      (defaults: _build, 60)
#
# BUILD_DIR is a configured build directory (its autoconfig.h is included as the Makefile does); everything this
# script makes goes under BUILD_DIR/fuzz: objects and targets compiled by clang with
# -fsanitize=fuzzer,address,undefined (the project's sources, not the gcc-built library), the corpus entries a run
# finds (BUILD_DIR/fuzz/corpus/TARGET; the seeds in tests/fuzz/corpus/TARGET are only read), crash artifacts and
# logs. Prints the executions done per target; exits non-zero on any crash, leak, timeout, out-of-memory or
# sanitizer report (the log and the input that caused it are named). Needs clang and its runtime libraries
# (Debian: clang libclang-rt-dev).
# Environment: FUZZ_TARGETS="conffile items" runs a subset; CC_FUZZ the compiler (default clang); FUZZ_JOBS compile
# jobs (default 2).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-_build}
secs=${2:-60}
targets=(${FUZZ_TARGETS:-conffile items pipeline})
cc=${CC_FUZZ:-clang}
jobs=${FUZZ_JOBS:-2}

die() { echo "fuzz: $*" >&2; exit 2; }
case $secs in '' | *[!0-9]*) die "SECONDS_PER_TARGET must be a whole number of seconds, got '$secs'" ;; esac
# A relative build directory is taken from the current directory, else from the top of the source tree.
if [ -d "$build" ]; then build=$(cd "$build" && pwd)
elif [ -d "$top/$build" ]; then build=$(cd "$top/$build" && pwd)
else die "no build directory '$build' (configure one first: bash build-aux/setup.sh)"; fi
[ -f "$build/autoconfig.h" ] || die "$build/autoconfig.h is missing: is '$build' a configured build directory?"
command -v "$cc" >/dev/null || die "$cc not found (Debian: apt-get install clang libclang-rt-dev)"
pc="libmongoc-1.0 libbson-1.0 libcrypto mpi" # mpi: util/world.h (the MPI world every layer sees)
dep_cflags=$(pkg-config --cflags $pc) && dep_libs=$(pkg-config --libs $pc) ||
    die "pkg-config: libmongoc, libbson, libcrypto or Open MPI (mpi.pc) missing"

work=$build/fuzz
obj=$work/obj
mkdir -p "$obj" "$work/bin" "$work/run"

# -max_len per target: config files and pipelines are text of a few KiB; item streams hold BSON documents.
max_len() { case $1 in items) echo 65536 ;; *) echo 16384 ;; esac; }

# The sources: every C file of these directories that neither needs MPI nor is a program of its own. The archive
# lets each target link only the objects it reaches.
srcs=()
for f in "$top"/src/{config,util,log,store,provenance,runrec,stage,stage/runner,stage/worker,stage/coordinator}/*.c; do
    grep -q '^#include <mpi\.h>' "$f" && continue
    grep -Eq '^int main[[:space:]]*\(' "$f" && continue
    srcs+=("$f")
done
[ ${#srcs[@]} -gt 0 ] || die "no sources found under $top/src"

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# The Makefile's preprocessor flags (Makefile.am AM_CPPFLAGS); install paths point into the work directory, where
# nothing is: the targets never start a script.
cppflags=(-include "$build/autoconfig.h" -I"$top/include" -I"$top/src" -DHAVE_CONFIG_H
          -DNEM_PKGLIBEXECDIR="\"$work/none\"" -DNEM_PKGDATADIR="\"$work/none\"" -DNEM_PYTHON3='"python3"'
          -DNEM_SYSCONFDIR="\"$work/none\"" -DNEM_ABS_TOP_BUILDDIR="\"$build\"" -DNEM_ABS_TOP_SRCDIR="\"$top\"")
cflags="-g -O1 -std=gnu11 $san -fsanitize=fuzzer-no-link -Wall -Wextra -Wno-unused-parameter $dep_cflags"
# Objects are rebuilt when their source, a header they include or the flags change.
flags_id=$(printf '%s\n' "$cc" "$cflags" "${cppflags[@]}" | cksum | cut -d' ' -f1)
if [ "$(cat "$obj/flags" 2>/dev/null || true)" != "$flags_id" ]; then
    rm -f "$obj"/*.o "$obj"/*.d "$work"/lib*.a
    echo "$flags_id" > "$obj/flags"
fi
stale() { # OBJECT SOURCE
    local o=$1 s=$2 d=${1%.o}.d dep
    [ -f "$o" ] && [ -f "$d" ] && [ ! "$s" -nt "$o" ] || return 0
    for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$d"); do
        [ "$dep" -nt "$o" ] && return 0
    done
    return 1
}
compile() { # SOURCE OBJECT
    # shellcheck disable=SC2086
    "$cc" $cflags "${cppflags[@]}" -MMD -MF "${2%.o}.d" -c "$1" -o "$2" || { echo "fuzz: cannot compile $1" >&2; return 1; }
}
echo "fuzz: compiling ${#srcs[@]} sources with $("$cc" --version | head -n1)"
objs=() pids=() failed=0 rebuilt=0
for s in "${srcs[@]}"; do
    rel=${s#"$top"/src/}
    o=$obj/${rel//\//_}
    o=${o%.c}.o
    objs+=("$o")
    stale "$o" "$s" || continue
    rebuilt=1
    compile "$s" "$o" & pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ $failed -eq 0 ] || die "compiling the sources failed"
lib=$work/libnemesyst_fuzz.a
if [ $rebuilt -eq 1 ] || [ ! -f "$lib" ]; then
    rm -f "$lib"
    ar rcs "$lib" "${objs[@]}"
fi
for t in "${targets[@]}"; do
    src=$here/fuzz_$t.c bin=$work/bin/fuzz_$t
    [ -f "$src" ] || die "no target '$t' ($src)"
    if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ "$lib" -nt "$bin" ]; then
        # shellcheck disable=SC2086
        "$cc" -g -O1 -std=gnu11 $san -fsanitize=fuzzer -Wall -Wextra $dep_cflags "${cppflags[@]}" "$src" "$lib" \
            $dep_libs -o "$bin" ||
            die "cannot build fuzz_$t"
    fi
done

# Each target runs in a scratch directory: config includes and model paths are relative to it, and temporary
# files go there. model.bin is a model file for the seeds' {"$nemesyst_model": {"path": "model.bin"}} markers.
export ASAN_OPTIONS="detect_leaks=1:symbolize=1:abort_on_error=0:handle_abort=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0 summary=()
for t in "${targets[@]}"; do
    run=$work/run/$t new=$work/corpus/$t art=$work/artifacts/$t/$(date +%Y%m%d-%H%M%S) log=$work/fuzz_$t.log
    mkdir -p "$run" "$new" "$art"
    printf 'model bytes\n' > "$run/model.bin"
    seeds=$top/tests/fuzz/corpus/$t
    [ -d "$seeds" ] || die "no seed corpus $seeds"
    echo "fuzz: fuzz_$t for $secs s (seeds $(find "$seeds" -type f | wc -l), log $log)"
    rc=0
    # New entries go to the first corpus directory (scratch); the seeds are only read. The outer timeout is a
    # guard against a hang libFuzzer's own -timeout cannot catch.
    (cd "$run" && timeout -k 10 $((secs + 120)) "$work/bin/fuzz_$t" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$art/" \
        "$new" "$seeds") > "$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    execs=${execs:-0}
    verdict=ok
    if [ $rc -ne 0 ]; then
        verdict="FAILED (exit status $rc)"
    elif grep -Eq 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|^==[0-9]+== ?ERROR|deadly signal' "$log"; then
        verdict="FAILED (sanitizer report)"
    fi
    if [ "$verdict" != ok ]; then
        status=1
        echo "fuzz: fuzz_$t: $verdict; the end of $log:" >&2
        tail -n 60 "$log" >&2
        for a in "$art"/*; do [ -f "$a" ] && echo "fuzz: fuzz_$t: input: $a" >&2; done
    fi
    summary+=("fuzz_$t: $execs executions in $secs s, $verdict")
done
for line in "${summary[@]}"; do echo "fuzz: $line"; done
exit $status
