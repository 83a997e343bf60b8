#!/bin/bash
# Code lineage: what a script really ran is kept with its models and checked by nemesyst-registry verify. A Python
# learner in 2.0.6's form imports a helper module of its own and numpy: the model records the module with its
# sha256, numpy's version and the interpreter's; an executable learner (#!/usr/bin/env python3) records its
# interpreter; both, living in a git work tree, record its commit. verify says unchanged, then, once the helper
# module is edited, changed, naming the module.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
REGISTRY="$top_builddir/nemesyst-registry"
command -v git >/dev/null 2>&1 || { echo "git not installed"; exit 77; }
W="$T/work"
mkdir -p "$W"
cat >"$W/helper_mod.py" <<'PY'
FACTOR = 2
PY
cat >"$W/code_learner.py" <<'PY'
import numpy
import helper_mod


def main(**kwargs):
    db = kwargs["db"]
    seen = sum(1 for _ in db.getCursor(db_collection_name="rows"))
    yield {"model": "code", "factor": helper_mod.FACTOR, "numpy": numpy.__version__, "seen": seen}, b"weights"
PY
cat >"$W/exec_learner" <<'PY'
#!/usr/bin/env python3
import json, os
path = os.path.join(os.environ["NEMESYST_WORKDIR"], "m")
open(path, "wb").write(b"exec-weights")
print(json.dumps({"$nemesyst_model": {"path": path, "metadata": {"model": "exec"}}}))
PY
chmod +x "$W/exec_learner"
git -C "$W" init -q && git -C "$W" add -A && git -C "$W" -c user.name=t -c user.email=t@example.org commit -qm one ||
    fail "cannot make the test's git work tree"
HEAD=$(git -C "$W" rev-parse HEAD)

printf '#!/bin/sh\nfor i in 1 2 3; do echo "{\\"i\\": $i}"; done\n' >"$T/rows.sh" && chmod +x "$T/rows.sh"
stage_run 0 codelin --process-pool 3 --data-clean --data-cleaner "$T/rows.sh" --data-collection rows --dl-learn --dl-learner "$W/code_learner.py" "$W/exec_learner" "$W/code_learner.py" \
    --dl-output-model-collection models
expect_rc 0
check codelin "$W" "$HEAD" <<'PY'
import hashlib, os, sys
w, head = argv
def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()
py = db["models.files"].find_one({"metadata.model": "code", "metadata._nemesyst.position": 0})["metadata"]["_nemesyst"]["code"]
mods = {m["name"]: m for m in py["modules"]}
ok("helper_mod" in mods, "the helper module is recorded: %s" % sorted(mods))
eq(mods["helper_mod"]["path"], os.path.realpath(os.path.join(w, "helper_mod.py")), "its path")
eq(mods["helper_mod"]["sha256"], sha(os.path.join(w, "helper_mod.py")), "its sha256")
ok(not any(m["path"].startswith(sys.prefix + "/lib/python") for m in py["modules"]), "no standard library module")
ok("numpy" in py["packages"] and py["packages"]["numpy"], "numpy's version: %s" % py["packages"])
eq(py["python"], "%d.%d.%d" % sys.version_info[:3], "the interpreter's version")
eq((py["git"]["commit"], py["git"]["dirty"]), (head, False), "the git commit of the script's work tree")
ex = db["models.files"].find_one({"metadata.model": "exec"})["metadata"]["_nemesyst"]["code"]
ok(os.path.basename(ex["interpreter"]["path"]).startswith("python3"), "the executable's interpreter: %s" % ex)
eq(ex["interpreter"]["sha256"], sha(ex["interpreter"]["path"]), "the interpreter's sha256")
eq(ex["git"]["commit"], head, "the executable's git commit")
PY
model=$(NEM_T_DB=codelin "$PYTHON3" -c 'import os, pymongo; print(pymongo.MongoClient("127.0.0.1", int(os.environ["NEM_TEST_PORT"]))["codelin"]["models.files"].find_one({"metadata.model": "code", "metadata._nemesyst.position": 0})["_id"])')
reg() { "$REGISTRY" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name codelin "$@"; }
reg verify "$model" >"$T/v1.txt" 2>&1
rc=$?
cat "$T/v1.txt"
[ $rc -eq 0 ] || fail "verify before any change: exit $rc"
grep -Eq '^code +unchanged \([0-9]+ file\(s\)\)$' "$T/v1.txt" || fail "verify does not report the code unchanged"
# the lineage graph shows the code: the script (its git commit), the helper module imported by it; and for the
# executable's model its interpreter
exec_model=$("$PYTHON3" -c 'import os, pymongo; print(pymongo.MongoClient("127.0.0.1", int(os.environ["NEM_TEST_PORT"]))["codelin"]["models.files"].find_one({"metadata.model": "exec"})["_id"])')
reg lineage "$model" --dot >"$T/code.dot" && reg lineage "$exec_model" --dot >"$T/exec.dot" || fail "lineage --dot"
dot -Tsvg "$T/code.dot" >/dev/null 2>&1 || ! command -v dot >/dev/null || fail "dot refuses the lineage graph"
check codelin "$T/code.dot" "$T/exec.dot" "$HEAD" <<'PY'
import re
def graph(path):
    text = open(path).read()
    return text, set(re.findall(r'^  "([^"]+)" -> "([^"]+)" \[label="([^"]+)"\]', text, re.M))
text, edges = graph(argv[0])
m = db["models.files"].find_one({"metadata.model": "code", "metadata._nemesyst.position": 0})
p = m["metadata"]["_nemesyst"]
script = "script:%s:%s" % (p["script"], p["script_sha256"])
helper = [x for x in p["code"]["modules"] if x["name"] == "helper_mod"][0]
ok((script, "model:%s" % m["_id"], "ran") in edges, "the script ran the model: %s" % edges)
ok(("file:%s:%s" % (helper["path"], helper["sha256"]), script, "imported by") in edges, "the helper module: %s" % edges)
ok("git %s" % argv[2][:12] in text, "the git commit in the script's node")
ok(not any(a == "file:%s:%s" % (p["script"], p["script_sha256"]) for a, _, _ in edges), "the script is no module of its own")
text, edges = graph(argv[1])
e = db["models.files"].find_one({"metadata.model": "exec"})
pe = e["metadata"]["_nemesyst"]
interp = pe["code"]["interpreter"]
ok(("file:%s:%s" % (interp["path"], interp["sha256"]), "script:%s:%s" % (pe["script"], pe["script_sha256"]),
    "interprets") in edges, "the executable's interpreter: %s" % edges)
PY
echo "FACTOR = 3" >"$W/helper_mod.py"
reg verify "$model" >"$T/v2.txt" 2>&1
rc=$?
cat "$T/v2.txt"
[ $rc -eq 1 ] || fail "verify after the helper module changed: exit $rc, want 1"
grep -q "changed: module helper_mod $(readlink -f "$W/helper_mod.py")" "$T/v2.txt" ||
    fail "verify does not name the changed module"
reg --json verify "$model" | "$PYTHON3" -c 'import json, sys; r = json.load(sys.stdin); f = [x for x in r["code"]["files"] if x["verdict"] == "changed"]; assert r["verdict"] == "changed" and len(f) == 1 and f[0]["kind"] == "module helper_mod", r["code"]' ||
    fail "verify --json: the changed module"
# verify --all: every model at once, each distinct cursor read once (the two Python learners read the same one):
# the two changed (their helper module), the executable's unverifiable (it recorded no data), exit 1.
reg verify --all >"$T/all.txt" 2>&1
rc=$?
cat "$T/all.txt"
[ $rc -eq 1 ] || fail "verify --all with a changed module: exit $rc, want 1"
[ "$(grep -c '^changed .*module helper_mod' "$T/all.txt")" = 2 ] || fail "verify --all: the two changed models"
[ "$(grep -c '^unverifiable .*recorded no data' "$T/all.txt")" = 1 ] || fail "verify --all: the unverifiable model"
grep -q "^3 model(s): 0 unchanged, 2 changed, 1 unverifiable (1 cursor(s) read, 1 shared)$" "$T/all.txt" ||
    fail "verify --all: the tally"
echo "FACTOR = 2" >"$W/helper_mod.py"
reg --json verify --all >"$T/all.json"
rc=$?
[ $rc -eq 5 ] || fail "verify --all with only an unverifiable model: exit $rc, want 5"
"$PYTHON3" -c 'import json, sys; r = json.load(open(sys.argv[1])); assert (r["unchanged"], r["changed"], r["unverifiable"], len(r["models"])) == (2, 0, 1, 3), r' "$T/all.json" ||
    fail "verify --all --json"
reg verify --all "$model" >/dev/null 2>"$T/bad.err"
[ $? -eq 2 ] && grep -q "verify --all checks every model: no model id" "$T/bad.err" || fail "verify --all with an id"
echo "stage-code-lineage: ok"
