#!/bin/bash
# The user's Python (--python, N_PYTHON, config key python): a virtual environment made with --system-site-packages
# (so it has the system's pymongo) holds a module only it has; a Python cleaner that imports it runs with
# --python VENV/bin/python3 (and with N_PYTHON, a config file's python = and NEMESYST_PYTHON3), says so once in the
# log, and fails clearly without it. An interpreter without pymongo (a venv without system site packages) is
# refused before anything starts (exit 2, one line naming it and what to install, no run record, nothing written),
# by a run and by --check alike; so is one that does not exist. No Python script: no interpreter is looked for.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
"$PYTHON3" -c 'import venv, pymongo' 2>/dev/null || { echo "SKIP: $PYTHON3 has no venv or no pymongo"; exit 77; }
"$PYTHON3" -m venv --system-site-packages --without-pip "$T/venv" || fail "cannot make a venv with system site packages"
"$PYTHON3" -m venv --without-pip "$T/bare" || fail "cannot make a venv without system site packages"
VPY="$T/venv/bin/python3" BARE="$T/bare/bin/python3"
site=$("$VPY" -c 'import site; print(site.getsitepackages()[0])') || fail "no site-packages in the venv"
echo 'WORD = "from-the-venv"' >"$site/only_in_venv.py"
"$VPY" -c 'import pymongo, only_in_venv' || fail "the venv lacks pymongo or its own module"
! "$PYTHON3" -c 'import only_in_venv' 2>/dev/null || fail "the system Python has the venv's module"
"$BARE" -c 'import pymongo' 2>/dev/null && { echo "SKIP: a venv without system site packages still has pymongo"; exit 77; }

cat >"$T/venv_cleaner.py" <<'PY'
import only_in_venv


def main(**kwargs):
    for i in range(3):
        yield {"i": i, "word": only_in_venv.WORD}
PY
clean=(--data-clean --data-cleaner "$T/venv_cleaner.py" --data-collection words)

# --python VENV/bin/python3: the cleaner imports the venv's module; the log names the interpreter once.
stage_run 0 py_venv "${clean[@]}" --python "$VPY"
expect_rc 0
n=$(grep -c "info: Python scripts run with $VPY (--python, cli)" "$ERR")
[ "$n" -eq 1 ] || fail "the log names the interpreter $n times, want once"
check py_venv <<'PY'
eq(sorted((d["i"], d["word"]) for d in docs("words")), [(i, "from-the-venv") for i in range(3)], "what the cleaner wrote")
eq(script("clean-0")["status"], "succeeded", "clean-0")
PY

# Through mpirun: rank 0 resolves it once, the worker rank runs the cleaner with it; the log says it once.
stage_run 2 py_venv2 "${clean[@]}" --python "$VPY"
expect_rc 0
n=$(grep -c "Python scripts run with" "$ERR")
[ "$n" -eq 1 ] || fail "2 ranks: the log names the interpreter $n times, want once"
check py_venv2 <<'PY'
eq(sorted(d["word"] for d in docs("words")), ["from-the-venv"] * 3, "what the cleaner wrote on rank 1")
eq(script("clean-0")["rank"], 1, "the worker rank ran it")
PY

# The same interpreter from N_PYTHON, a config file (python = ...) and NEMESYST_PYTHON3.
N_PYTHON="$VPY" stage_run 0 py_env "${clean[@]}"
expect_rc 0
grep -q "Python scripts run with $VPY (--python, env N_PYTHON)" "$ERR" || fail "N_PYTHON not used"
printf 'python = %s\n' "$VPY" >"$T/py.conf"
stage_run 0 py_conf "${clean[@]}" -c "$T/py.conf"
expect_rc 0
grep -q "Python scripts run with $VPY (--python, $T/py.conf:1)" "$ERR" || fail "the config file's python not used"
NEMESYST_PYTHON3="$VPY" stage_run 0 py_nemesyst_python3 "${clean[@]}"
expect_rc 0
grep -q "Python scripts run with $VPY (env NEMESYST_PYTHON3)" "$ERR" || fail "NEMESYST_PYTHON3 not honoured"
# --python wins over NEMESYST_PYTHON3.
NEMESYST_PYTHON3="$BARE" stage_run 0 py_over "${clean[@]}" --python "$VPY"
expect_rc 0

# Without it, the default interpreter (python3 on PATH when it has pymongo, else the built-in one) runs the cleaner,
# which fails clearly: the import it could not make.
stage_run 0 py_default "${clean[@]}"
expect_rc 4
grep -q "info: Python scripts run with " "$ERR" || fail "the log does not name the default interpreter"
grep -q "No module named 'only_in_venv'" "$ERR" || fail "the failure does not name the missing module"
check py_default <<'PY'
eq(script("clean-0")["status"], "failed", "clean-0")
ok("only_in_venv" in (script("clean-0")["error"] or ""), "clean-0's error names the module: %r" % script("clean-0")["error"])
eq(count("words"), 0, "nothing kept of the failed cleaner")
PY

# An interpreter without pymongo: refused before anything starts, naming it and what to install.
for how in run check; do
    extra=()
    [ "$how" = check ] && extra=(--check)
    stage_run 0 py_bare "${clean[@]}" --python "$BARE" "${extra[@]}"
    [ "$RC" -eq 2 ] || fail "$how with an interpreter without pymongo: exit $RC, want 2"
    [ "$(wc -l <"$ERR")" -eq 1 ] || fail "$how: want one line on stderr, got: $(cat "$ERR")"
    grep -q "^nemesyst: error: cli: --python '$BARE' cannot run Python stage scripts: it lacks pymongo, bson, gridfs: install pymongo there ('$BARE -m pip install pymongo')" "$ERR" ||
        fail "$how: the refusal does not name the interpreter and what to install: $(cat "$ERR")"
    [ ! -s "$OUT" ] || fail "$how: stdout after a refusal: $(cat "$OUT")"
done
check py_bare <<'PY'
eq(db["nemesyst_runs"].count_documents({}), 0, "no run record: nothing started")
eq(count("words"), 0, "nothing written")
PY
# NEMESYST_PYTHON3 without pymongo: the same, naming the variable.
NEMESYST_PYTHON3="$BARE" stage_run 0 py_bare_env "${clean[@]}"
[ "$RC" -eq 2 ] && grep -q "env NEMESYST_PYTHON3: the interpreter '$BARE' cannot run Python stage scripts: it lacks pymongo" "$ERR" ||
    fail "NEMESYST_PYTHON3 without pymongo: exit $RC, $(cat "$ERR")"
# One that does not exist, and one that is no interpreter.
stage_run 0 py_none "${clean[@]}" --python "$T/no/such/python3"
[ "$RC" -eq 2 ] && grep -q "cli: --python '$T/no/such/python3' does not exist" "$ERR" || fail "a missing --python: $(cat "$ERR")"
stage_run 0 py_true "${clean[@]}" --python /bin/true
[ "$RC" -eq 2 ] && grep -q "cli: --python '/bin/true' cannot run Python stage scripts: it is no Python interpreter" "$ERR" ||
    fail "--python /bin/true: $(cat "$ERR")"

# --check with the venv: ok, and it names the interpreter it found; no Python script, no interpreter looked for.
stage_run 0 py_check "${clean[@]}" --python "$VPY" --check
[ "$RC" -eq 0 ] && [ "$(cat "$OUT")" = ok ] || fail "--check with the venv: exit $RC, stdout $(cat "$OUT")"
grep -q "Python scripts run with $VPY" "$ERR" || fail "--check does not say which interpreter"
printf '#!/bin/sh\necho "{\\"a\\": 1}"\n' >"$T/exec.sh"
chmod +x "$T/exec.sh"
stage_run 0 py_noscript --data-clean --data-cleaner "$T/exec.sh" --data-collection c --python "$BARE"
expect_rc 0
! grep -q "Python scripts run with" "$ERR" || fail "an interpreter was looked for without a Python script"
echo "stage-python-choice: ok"
