#!/bin/bash
# Secrets: a full authenticated pipeline under mpirun (init with a user, start, clean with all three script kinds,
# learn, predict, stop) with the password on the command line, while a sampler reads every process's
# /proc/PID/cmdline and /proc/PID/environ. The password appears in none of them (mpirun's own argv aside: that
# cannot be hidden, so nemesyst warns), nor in any log, the run record, model metadata, --summary-json or any file
# under the db path; files under the db path are private. The user's own NEMESYST_* variables reach the scripts;
# the ones nemesyst sets are replaced. The password has a space, quotes, %, @, : and a non-ASCII letter.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
. "$top_srcdir/tests/serve/lib.sh" # free_port, server cleanup (its own temporary directory)
PW='pä55 "w@rd":%x'
PORT=$(free_port) || fail "no free port"
DBP="$T/db"
cat >"$T/exec_clean.sh" <<'EOS'
#!/bin/sh
sleep 2
echo "{\"kind\": \"exec\", \"user_var\": \"${NEMESYST_USER_SETTING:-unset}\", \"run\": \"$NEMESYST_RUN_ID\"}"
EOS
chmod +x "$T/exec_clean.sh"
: >"$T/hits"; : >"$T/seen"
# The sampler: every process's /proc/PID/cmdline and environ, over and over, while the job runs (Python: one pass
# over /proc takes milliseconds, so short-lived scripts are seen even on a loaded machine).
cat >"$T/sampler.py" <<'EOS'
import os, sys, time
pw, stop, skip, hits, seen = sys.argv[1].encode(), sys.argv[2], sys.argv[3], open(sys.argv[4], "a"), open(sys.argv[5], "a")
# From the run's start on: every rank has scrubbed its argv (it does before MPI_Init: only the dynamic loader's
# first milliseconds came before that) and the --db-init server, which gets its first user's password in its
# environment by design (README), is gone.
while os.path.exists(stop) and not os.path.exists(stop + ".go"):
    time.sleep(0.005)
while os.path.exists(stop):
    for p in os.listdir("/proc"):
        if not p.isdigit() or p == skip or p == str(os.getpid()):
            continue
        try:
            cmd = open("/proc/%s/cmdline" % p, "rb").read()
            env = open("/proc/%s/environ" % p, "rb").read()
        except OSError:
            continue
        text = cmd.replace(b"\0", b" ").decode("utf-8", "replace")
        if any(s in text for s in ("exec_clean.sh", "slow_clean.py", "plugin-host")):
            seen.write(text + "\n")
        text = text[:200]
        for what, data in (("cmdline", cmd), ("environ", env)):
            if pw in data:
                hits.write("%s %s %s\n" % (p, what, text))
    hits.flush(); seen.flush()
EOS
touch "$T/sampling"
NEMESYST_USER_SETTING=mine NEMESYST_RUN_ID=stale NEM_T_SLEEP_MS=2000 \
    "$MPIRUN" --oversubscribe -n 3 "$NEMESYST" --db-engine ferretdb --db-path "$DBP" --db-log-path "$DBP/log" \
    --db-ip 127.0.0.1 --db-port "$PORT" --db-name sec --db-user-name alice --db-password "$PW" \
    --db-init --db-start --db-stop --process-pool 2 --log-file "$T/nemesyst.log" --summary-json "$T/summary.json" \
    --data-clean --data-cleaner "$T/exec_clean.sh" "$FIX/slow_clean.py" "$PLUGIN" \
    --data-cleaner-entry-point main main clean --data-collection c_exec c_py c_plugin \
    --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection c_plugin \
    --dl-output-model-collection models \
    --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict --i-output-prediction-collection preds \
    >"$T/out" 2>"$T/err" &
mpirun_pid=$! # mpirun's own argv: known, warned about
"$PYTHON3" "$T/sampler.py" "$PW" "$T/sampling" "$mpirun_pid" "$T/hits" "$T/seen" &
sampler_pid=$!
for _ in $(seq 1 400); do grep -q " info: run " "$T/err" && break; sleep 0.02; done
touch "$T/sampling.go"
wait "$mpirun_pid"
RC=$?
rm -f "$T/sampling"
wait "$sampler_pid"
cat "$T/out"; sed 's/^/   stderr: /' "$T/err" | tail -n 40
[ "$RC" -eq 0 ] || fail "authenticated pipeline exited $RC"
for s in exec_clean.sh slow_clean.py plugin-host; do
    grep -q "$s" "$T/seen" || fail "the sampler never saw a $s process: the check would prove nothing"
done
[ ! -s "$T/hits" ] || fail "the password was in a process's cmdline or environ: $(cat "$T/hits")"
grep -q "visible in the launcher's own arguments" "$T/err" || fail "no warning about the password on mpirun's command line"
RUN=$(sed -n 's/^run \([^:]*\): .*/\1/p' "$T/out" | tail -n 1)
[ -n "$RUN" ] || fail "no run id"
for f in "$T/out" "$T/err" "$T"/nemesyst.log* "$T/summary.json"; do
    [ -f "$f" ] || fail "missing $f"
    ! grep -qF "$PW" "$f" || fail "the password is in $f"
done
! grep -rqF "$PW" "$DBP" || fail "the password is in a file under the db path: $(grep -rlF "$PW" "$DBP")"
bad_modes=$(find "$DBP" \( -type d ! -perm 700 \) -o \( -type f -perm /077 \) | head)
[ -z "$bad_modes" ] || fail "files under the db path readable by others: $bad_modes"

# The stored records, read back as the user (the server is restarted for it, then stopped again).
printf '%s\n' "$PW" >"$T/pwfile" && chmod 600 "$T/pwfile"
nem_args=(--db-engine ferretdb --db-path "$DBP" --db-log-path "$DBP/log" --db-ip 127.0.0.1 --db-port "$PORT"
          --db-name sec --db-user-name alice --db-password-file "$T/pwfile")
"$NEMESYST" "${nem_args[@]}" --db-start 2>"$T/err2" || { cat "$T/err2"; fail "restart"; }
NEM_T_USER=alice NEM_T_PASSWORD="$PW" NEM_T_PORT=$PORT check sec "$PW" <<'PY'
import json
from bson import json_util
pw = argv[0]
eq(run["status"], "succeeded", "run status")
ok(pw not in json_util.dumps(run), "no password in the run record")
for m in db["models.files"].find():
    ok(pw not in json_util.dumps(m), "no password in model metadata")
for c in ("c_exec", "c_py", "c_plugin", "preds"):
    ok(count(c) > 0, "documents in " + c)
    for d in db[c].find():
        ok(pw not in json_util.dumps(d), "no password in a document of " + c)
d = db.c_exec.find_one()
eq(d["user_var"], "mine", "a user's own NEMESYST_* variable reaches the script")
eq(d["run"], RUN, "NEMESYST_RUN_ID is nemesyst's, not the stale one")
ok("NEMESYST_USER_SETTING" in db.c_py.find_one()["env_keys"], "the Python script sees the user's variable too")
PY
"$NEMESYST" "${nem_args[@]}" --db-stop 2>"$T/err2" || { cat "$T/err2"; fail "stop"; }
