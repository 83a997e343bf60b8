#!/bin/bash
# A C++ plugin: nemesyst.h compiles as C++ (-Wall -Wextra -Werror), a plugin of two C++ files holds one stamp, it
# runs as a cleaner of a real stage and its documents are stored; the same plugin built from a copy of the header
# one minor newer is refused, so the stamp is read in C++ builds too. Skipped (77) without a C++ compiler.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
CXX=${CXX:-g++}
command -v "$CXX" >/dev/null 2>&1 || { echo "no C++ compiler ($CXX): skipped"; exit 77; }
header="$top_srcdir/include/nemesyst.h"
major=$(sed -n 's/^#define NEMESYST_VERSION_MAJOR \([0-9]*\)$/\1/p' "$header")
minor=$(sed -n 's/^#define NEMESYST_VERSION_MINOR \([0-9]*\)$/\1/p' "$header")

cat >"$T/words.cpp" <<'CXX'
#include <nemesyst.h>
#include <string>
#include <vector>

std::vector<std::string> words()
{
    return {"alpha", "beta", "gamma"};
}
CXX
cat >"$T/plugin.cpp" <<'CXX'
#include <nemesyst.h>
#include <string>
#include <vector>

std::vector<std::string> words();

namespace {
/* one owner for a document, released on every path */
class doc_ptr {
  public:
    explicit doc_ptr(bson_t *d) : d_(d) {}
    doc_ptr(const doc_ptr &) = delete;
    doc_ptr &operator=(const doc_ptr &) = delete;
    ~doc_ptr() { bson_destroy(d_); }
    const bson_t *get() const { return d_; }

  private:
    bson_t *d_;
};
} // namespace

extern "C" bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    int i = 0;
    for (const std::string &w : words()) {
        doc_ptr doc(BCON_NEW("word", BCON_UTF8(w.c_str()), "i", BCON_INT32(i++), "pos",
                             BCON_INT64(static_cast<int64_t>(nemesyst_position(ctx)))));
        if (!nemesyst_emit(ctx, doc.get(), error))
            return false;
    }
    nemesyst_log(ctx, NEMESYST_LOG_INFO, "C++ plugin, built against nemesyst %s, running in %s",
                 NEMESYST_VERSION_STRING, nemesyst_version_string());
    return true;
}
CXX
flags="$(pkg-config --cflags --libs libmongoc-1.0) -L$top_builddir/.libs -Wl,-rpath,$top_builddir/.libs -lnemesyst"
# build NAME INCLUDE_DIR: $T/NAME.so from both files
build() {
    "$CXX" -std=c++11 -Wall -Wextra -Werror -shared -fPIC -I"$2" -o "$T/$1.so" "$T/plugin.cpp" "$T/words.cpp" \
        $flags || fail "the C++ plugin $1 does not build with $CXX"
}
build cxx "$top_srcdir/include"
mkdir -p "$T/newer" || exit 99
sed "s/^#define NEMESYST_VERSION_MINOR .*/#define NEMESYST_VERSION_MINOR $((minor + 1))/" "$header" \
    >"$T/newer/nemesyst.h"
build cxx-newer "$T/newer"
nm -D --defined-only "$T/cxx.so" | grep -q ' nemesyst_plugin_abi$' || fail "no stamp in the C++ plugin"
nm -D --defined-only "$T/cxx.so" | grep -q ' nemesyst_main$' || fail "nemesyst_main not exported by the C++ plugin"

stage_run 1 plugcxx --data-clean --data-cleaner "$T/cxx.so" "$T/cxx-newer.so" --data-collection words newer
expect_rc 4
grep -q "C++ plugin, built against nemesyst $major.$minor.[0-9]*, running in $major.$minor" "$ERR" ||
    fail "the C++ plugin's log line is not in the log"
check plugcxx "$major" "$minor" <<'PY'
major, minor = int(argv[0]), int(argv[1])
eq(script("clean-0")["status"], "succeeded", "the C++ plugin")
eq([(d["word"], d["i"], d["pos"]) for d in docs("words", sort=[("i", 1)])],
   [("alpha", 0, 0), ("beta", 1, 0), ("gamma", 2, 0)], "the C++ plugin's documents")
e = script("clean-1")
eq(e["status"], "failed", "the C++ plugin built against a newer minor")
want = "built against nemesyst %d.%d (needs a newer nemesyst), this nemesyst is %d.%d" % (
    major, minor + 1, major, minor)
ok(want in e.get("error", ""), "refused with both versions: %r" % e.get("error"))
eq(count("newer"), 0, "its documents")
PY
echo "stage-plugin-cxx: ok ($CXX)"
