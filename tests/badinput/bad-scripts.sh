#!/bin/bash
# Bad script output and failing scripts (tests/badinput/scripts.tsv): all cases run as the cleaners of one stage,
# beside one good script, under a time limit. The run exits 4; every bad script fails alone with its expected
# message in the run record and leaves no document; the good one succeeds; nothing crashes or hangs.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
table="$top_srcdir/tests/badinput/scripts.tsv"
names=() scripts=() entries=() wants=()
while IFS=$'\t' read -r name kind entry want body; do
    case $name in ''|'#'*) continue ;; esac
    case $kind in
    sh) f="$T/$name.sh"; { echo '#!/bin/sh'; printf -- "$body"; } >"$f"; chmod +x "$f" ;;
    py) f="$T/$name.py"; printf -- "$body" >"$f" ;;
    so) f="$T/$name.so"; if [ "$body" = - ]; then : >"$f"; else printf -- "$body" >"$f"; fi ;;
    plugin) f="$PLUGIN" ;;
    abi) f="$top_builddir/tests/runner/.libs/plugin_badapi.so" ;;
    *) fail "$name: unknown kind $kind" ;;
    esac
    names+=("$name") scripts+=("$f") entries+=("$entry") wants+=("$want")
done <"$table"
n=${#names[@]}
[ "$n" -ge 30 ] || fail "only $n cases in $table"
colls=()
for ((i = 0; i < n; i++)); do colls+=("bad$i"); done
NEM_T_COUNT=5 stage_run 2 badscripts --process-pool 8 --data-clean \
    --data-cleaner "${scripts[@]}" "$FIX/clean.sh" --data-cleaner-entry-point "${entries[@]}" main \
    --data-collection "${colls[@]}" good
expect_rc 4
printf '%s\n' "${wants[@]}" >"$T/wants"
printf '%s\n' "${names[@]}" >"$T/names"
check badscripts "$T/names" "$T/wants" <<'PY'
names = open(argv[0]).read().splitlines()
wants = open(argv[1]).read().splitlines()
bad = 0
for i, (name, want) in enumerate(zip(names, wants)):
    e = script("clean-%d" % i)
    msg = e.get("error") or ""
    if e["status"] != "failed" or want not in msg or count("bad%d" % i) != 0:
        bad += 1
        print("MISMATCH %s: status %s, %d documents left, error %r (want %r)" % (
            name, e["status"], count("bad%d" % i), msg[:300], want))
e = script("clean-%d" % len(names))
eq((e["status"], count("good")), ("succeeded", 5), "the good script beside them")
eq(bad, 0, "bad-script cases that did not fail as expected (of %d)" % len(names))
PY
echo "bad-scripts: $n cases"
