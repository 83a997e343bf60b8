#!/bin/bash
# A script SIGKILLed halfway through its output (after 2500 documents, some already stored) fails and its documents
# are rolled back while the other scripts finish; --resume then leaves exactly one copy of every document.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
cat >"$T/killed.sh" <<EOS
#!/bin/sh
awk 'BEGIN { for (i = 0; i < 2500; i++) printf "{\"i\": %d}\n", i }'
[ -e "$T/marker" ] && kill -KILL \$\$
awk 'BEGIN { for (i = 2500; i < 5000; i++) printf "{\"i\": %d}\n", i }'
EOS
chmod +x "$T/killed.sh"
touch "$T/marker"
args=(--process-pool 3 --data-clean --data-cleaner "$FIX/clean.sh" "$T/killed.sh" "$FIX/clean.sh"
      --data-collection a k b)
stage_run 2 killed "${args[@]}"
expect_rc 4
first=$RUN
grep -q "clean script #1 .*killed.sh.*killed by SIGKILL" "$ERR" || fail "no error naming the killed script and SIGKILL"
check killed <<'PY'
eq([script("clean-%d" % p)["status"] for p in range(3)], ["succeeded", "failed", "succeeded"], "scripts")
eq((count("a"), count("k"), count("b")), (7, 0, 7), "documents: the killed script's rolled back, the others kept")
PY
rm -f "$T/marker"
stage_run 2 killed "${args[@]}" --resume "$first"
expect_rc 0
check killed <<'PY'
eq(run["status"], "succeeded", "status after resume")
eq((count("a"), count("k"), count("b")), (7, 5000, 7), "documents after resume")
eq(len(db.k.distinct("i")), 5000, "each document once")
PY
