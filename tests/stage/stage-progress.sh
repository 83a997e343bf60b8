#!/bin/bash
# Long stages report progress while scripts stream (live document counts, not only when scripts end, the rate of the
# last interval, and which scripts still run, for how long), and a script
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
sleep 5
EOS
cat > "$T/leaver.sh" <<'EOS'
#!/bin/sh
# Exits at once but leaves a background process holding its stdout.
sleep 20 &
echo '{"leaver": 1}'
exit 0
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
    # it names what is still running and for how long (a script that hangs without a timeout is never silent)
    grep -Eq 'progress: .*documents/s; running: clean\[0\] slow\.sh [0-9]+ s$' "$ERR" ||
        fail "-n $np: the progress line does not name the running script"
    # the summary table names the script by its file name, however long its directory
    grep -Eq '^clean-0 +succeeded +[0-9]+ .* slow\.sh$' "$OUT" || fail "-n $np: the summary table does not name slow.sh: $(cat "$OUT")"
done

stage_run 1 drain --process-pool 2 --data-clean --data-cleaner "$T/closer.sh" "$T/quick.sh" --data-collection d
expect_rc 0
check drain <<'PY'
import datetime
closer, quick = interval("clean-0"), interval("clean-1")
# The closing script runs 5 s after closing its output; the quick one must not wait for it.
ok(quick[1] < closer[0] + datetime.timedelta(seconds=2),
   "the quick script ended while the closing one still ran: %s %s" % (quick, closer))
eq(count("d"), 2, "documents")
PY

# A script that exited is done even when a process it left behind holds its output open (it is killed with the
# script's process group); the round does not wait for that process.
stage_run 1 leaver --data-clean --data-cleaner "$T/leaver.sh" --data-collection l
expect_rc 0
check leaver <<'PY'
s, e = interval("clean-0")
ok((e - s).total_seconds() < 10, "the leaver's background sleep 20 held the round: %s" % ((e - s),))
eq(count("l"), 1, "documents")
PY
echo "stage-progress: ok"
