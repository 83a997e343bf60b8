#!/bin/bash
# Plugin compatibility (README "Plugin compatibility"): plugins built from copies of include/nemesyst.h stamped
# with other versions run as the cleaners of one stage. The host loads those built against this major and a minor
# no newer than its own (the same version, an older minor, the 3.0 header's old stamp, no stamp at all) and refuses
# the others (a newer minor, a newer major, an older major, an old stamp number no nemesyst had) with one line
# naming both versions, before their entry point runs; each refused script fails alone.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
header="$top_srcdir/include/nemesyst.h"
major=$(sed -n 's/^#define NEMESYST_VERSION_MAJOR \([0-9]*\)$/\1/p' "$header")
minor=$(sed -n 's/^#define NEMESYST_VERSION_MINOR \([0-9]*\)$/\1/p' "$header")
[ -n "$major" ] && [ -n "$minor" ] || fail "no NEMESYST_VERSION_MAJOR/MINOR in $header"
[ "$minor" -ge 1 ] || fail "this test needs a minor >= 1 to build an older one (nemesyst $major.$minor)"
mkdir -p "$T/ran" || exit 99
export NEM_T_RAN="$T/ran"

# The plugin: marks that its entry point ran, and emits the version it was built against.
cat >"$T/abi.c" <<'C'
#include <nemesyst.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef OLD_API /* the stamp the 3.0 header wrote, with the number given */
__attribute__((weak, visibility("default"), used)) const int nemesyst_plugin_api_version = OLD_API;
#endif

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    char mark[4096];
    snprintf(mark, sizeof mark, "%s/%s", getenv("NEM_T_RAN"), LABEL);
    FILE *f = fopen(mark, "w");
    if (f)
        fclose(f);
    bson_t *doc = BCON_NEW("label", BCON_UTF8(LABEL), "major", BCON_INT32(NEMESYST_VERSION_MAJOR), "minor",
                           BCON_INT32(NEMESYST_VERSION_MINOR));
    bool ok = nemesyst_emit(ctx, doc, error);
    bson_destroy(doc);
    return ok;
}
C
flags="$(pkg-config --cflags --libs libmongoc-1.0) -L$top_builddir/.libs -Wl,-rpath,$top_builddir/.libs -lnemesyst"
# build LABEL MAJOR MINOR [CFLAGS...]: $T/LABEL.so from a copy of nemesyst.h that says MAJOR.MINOR
build() {
    local label=$1 maj=$2 min=$3
    shift 3
    mkdir -p "$T/inc-$label" || exit 99
    sed -e "s/^#define NEMESYST_VERSION_MAJOR .*/#define NEMESYST_VERSION_MAJOR $maj/" \
        -e "s/^#define NEMESYST_VERSION_MINOR .*/#define NEMESYST_VERSION_MINOR $min/" \
        "$header" >"$T/inc-$label/nemesyst.h"
    cc -Wall -Wextra -Werror -shared -fPIC -I"$T/inc-$label" -DLABEL="\"$label\"" "$@" -o "$T/$label.so" "$T/abi.c" \
        $flags || fail "cannot build the $label plugin"
}
build same "$major" "$minor"
build older-minor "$major" $((minor - 1))
build old-stamp 3 0 -DNEMESYST_NO_API_STAMP -DOLD_API=1
build unstamped "$major" "$minor" -DNEMESYST_NO_API_STAMP
build newer-minor "$major" $((minor + 1))
build newer-major $((major + 1)) 0
build older-major $((major - 1)) 9
build unknown-old-stamp 3 0 -DNEMESYST_NO_API_STAMP -DOLD_API=2
nm -D --defined-only "$T/same.so" | grep -q ' nemesyst_plugin_abi$' || fail "the stamp is not in the plugin"
! nm -D --defined-only "$T/unstamped.so" | grep -q nemesyst_plugin || fail "NEMESYST_NO_API_STAMP left a stamp"

# Refused straight away by the host itself: exit 1, one line naming both versions (no context needed before it).
host="$top_builddir/nemesyst-plugin-host"
"$host" "$T/newer-major.so" >"$T/host.out" 2>"$T/host.err"
rc=$?
[ "$rc" -eq 1 ] || fail "the host exited $rc for a plugin built for $((major + 1)).0 (want 1): $(cat "$T/host.err")"
[ "$(wc -l <"$T/host.err")" -eq 1 ] || fail "the host's refusal is not one line: $(cat "$T/host.err")"
want="the plugin was built against nemesyst $((major + 1)).0 (needs a newer nemesyst), this nemesyst is $major.$minor"
grep -qF "$want" "$T/host.err" || fail "the host's refusal does not name both versions: $(cat "$T/host.err")"
[ -z "$(ls "$T/ran")" ] || fail "the refused plugin's entry point ran"

labels=(same older-minor old-stamp unstamped newer-minor newer-major older-major unknown-old-stamp)
scripts=() colls=()
for l in "${labels[@]}"; do scripts+=("$T/$l.so") colls+=("c-$l"); done
stage_run 1 plugabi --data-clean --data-cleaner "${scripts[@]}" --data-collection "${colls[@]}"
expect_rc 4
check plugabi "$major" "$minor" "$T/ran" <<'PY'
import os
major, minor, ran = int(argv[0]), int(argv[1]), argv[2]
ours = "this nemesyst is %d.%d: rebuild it against this nemesyst" % (major, minor)
loads = {"same": (major, minor), "older-minor": (major, minor - 1), "old-stamp": (3, 0), "unstamped": (major, minor)}
refused = {
    "newer-minor": "the plugin was built against nemesyst %d.%d (needs a newer nemesyst), " % (major, minor + 1) + ours,
    "newer-major": "the plugin was built against nemesyst %d.0 (needs a newer nemesyst), " % (major + 1) + ours,
    "older-major": "the plugin was built against nemesyst %d.9 (an older, incompatible major), " % (major - 1) + ours,
    "unknown-old-stamp": "the plugin was built against nemesyst plugin API version 2, which no nemesyst had, " + ours,
}
labels = ["same", "older-minor", "old-stamp", "unstamped", "newer-minor", "newer-major", "older-major",
          "unknown-old-stamp"]
for i, label in enumerate(labels):
    e = script("clean-%d" % i)
    if label in loads:
        eq(e["status"], "succeeded", "%s: status (error %r)" % (label, e.get("error")))
        d = docs("c-" + label)
        eq([(x["label"], x["major"], x["minor"]) for x in d], [(label,) + loads[label]], "%s: its document" % label)
    else:
        eq(e["status"], "failed", "%s: status" % label)
        ok(refused[label] in e.get("error", ""), "%s refused, both versions named: %r" % (label, e.get("error")))
        eq(count("c-" + label), 0, "%s: documents" % label)
eq(sorted(os.listdir(ran)), sorted(loads), "the entry points that ran")
PY
echo "stage-plugin-abi: ok (nemesyst $major.$minor)"
