#!/bin/bash
# Long stages report progress while scripts stream (live document counts, not only when scripts end), and a script
# that closes its output but keeps running does not hold up the other scripts of its round or the coordinator.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
cat > "$T/slow.sh" <<'EOS'
#!/bin/sh
# One document every 0.5 s for 7 s.
i=0
while [ $i -lt 14 ]; do echo "{\"i\": $i}"; i=$((i + 1)); sleep 0.5; done
EOS
cat > "$T/closer.sh" <<'EOS'
#!/bin/sh
# Writes its documents, closes stdout and stderr, then keeps running for a while.
echo '{"closer": 1}'
exec >&- 2>&-
sleep 3
EOS
cat > "$T/quick.sh" <<'EOS'
#!/bin/sh
echo '{"quick": 1}'
EOS
chmod +x "$T"/*.sh

for np in 1 2; do
    stage_run $np progress_n$np --data-clean --data-cleaner "$T/slow.sh" --data-collection p
    expect_rc 0
    grep -Eq 'progress: 0/1 scripts done \(0 failed\), [1-9][0-9]* documents' "$ERR" ||
        fail "-n $np: no progress line with live documents while the script ran"
done

stage_run 1 drain --process-pool 2 --data-clean --data-cleaner "$T/closer.sh" "$T/quick.sh" --data-collection d
expect_rc 0
check drain <<'PY'
closer, quick = interval("clean-0"), interval("clean-1")
ok(quick[1] < closer[1], "the quick script ended before the closing one: %s %s" % (quick, closer))
eq(count("d"), 2, "documents")
PY
echo "stage-progress: ok"
