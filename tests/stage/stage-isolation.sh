#!/bin/bash
# What reaches a script and what stays visible: a --db-password given on mpirun's command line is overwritten in
# every rank's argv (not only rank 0's); descriptors nemesyst itself inherited at the script's fixed slots (3, 4, 6)
# do not reach the script.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
cat > "$T/look.sh" <<'EOS'
#!/bin/sh
# Reports which of its descriptors 3..6 point at the marker file, then lingers so the test can read argv.
for fd in 3 4 6; do
    case "$(readlink /proc/$$/fd/$fd 2>/dev/null)" in *leak-marker*) echo "{\"leaked\": $fd}" ;; esac
done
echo '{"looked": 1}'
sleep 2
EOS
chmod +x "$T/look.sh"
: > "$T/leak-marker"
secret=Sup3rSecret-$$
"$MPIRUN" --oversubscribe -n 2 "$NEMESYST" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name iso \
    --db-password "$secret" --data-clean --data-cleaner "$T/look.sh" --data-collection c \
    3<"$T/leak-marker" 4<"$T/leak-marker" 6<"$T/leak-marker" >"$T/out" 2>"$T/err" &
job=$!
# Wait (generously: a loaded machine starts mpirun slowly) until the script runs: every rank is past its start-up.
for _ in $(seq 1 1200); do grep -q "started (executable" "$T/err" && break; sleep 0.05; done
grep -q "started (executable" "$T/err" || { wait $job; cat "$T/err"; fail "the script never started"; }
ranks=0
for p in /proc/[0-9]*; do
    cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
    case $cmd in *nemesyst\ *--db-name\ iso*) ;; *) continue ;; esac
    case $cmd in *mpirun*) continue ;; esac # mpirun's own argv cannot be hidden (nemesyst warns)
    ranks=$((ranks + 1))
    case $cmd in *"$secret"*) fail "rank pid ${p#/proc/} still shows the password in its argv" ;; esac
done
[ $ranks -ge 2 ] || fail "found $ranks rank(s) of this job, want 2"
wait $job || { cat "$T/out" "$T/err"; fail "the run failed"; }
check iso <<'PY'
eq(count("c", {"leaked": {"$exists": True}}), 0, "descriptors the script inherited from nemesyst's own")
eq(count("c", {"looked": 1}), 1, "the script ran")
PY
echo "stage-isolation: ok"
