#!/bin/bash
# nemesyst-registry export --format prov-json and lineage --dot, on a private FerretDB (tests/registry.mk). Two real
# runs with the shared test plugin: A cleans 9 documents into `data`, learns model MA from 7 of them and predicts 3
# with it; B retrains MA into MB from data and predicts 3 with MB. B's PROV-JSON is read back with python3-prov
# (ProvDocument.deserialize) and its relations checked against the database: MB wasGeneratedBy B's learner, which
# used the data set it read (count and digest as MB's lineage records them) and MA, MB wasDerivedFrom MA, the
# documents each script wrote by stamp with the count stored now, the predictor used MB, each script
# wasAssociatedWith its rank and host, each rank actedOnBehalfOf the user; then prov's own DOT drawn by dot. A's export
# has the cleaner's documents, from which the learner's data was derived. lineage MB --dot: accepted by dot -Tsvg,
# with MA and MB, their data, the code their scripts ran and the predictions as nodes and edges. Bad arguments: exit 2 with one line.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
REG_DB=prv
. "$top_srcdir/tests/registry/lib.sh" # reg, want_rc, bad, vg
"$PYTHON3" -c 'import prov' 2>/dev/null || { echo "python3-prov not installed (Debian: python3-prov)"; exit 77; }

NEM_T_COUNT=9 stage_run 0 prv --data-clean --data-cleaner "$PLUGIN" --data-cleaner-entry-point clean \
    --data-collection data --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn \
    --dl-data-collection data --dl-data-pipeline '[{"$match": {"i": {"$gte": 2}}}]' --dl-batch-size 3 \
    --dl-output-model-collection models \
    --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict --i-output-prediction-collection preds
expect_rc 0
RUN_A=$RUN
stage_run 0 prv --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection data \
    --dl-data-pipeline '[{"$sort": {"i": 1}}]' --dl-batch-size 4 --dl-input-model-collection models \
    --dl-input-model-pipeline '[{"$sort": {"uploadDate": -1}}]' --dl-output-model-collection retrained \
    --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict --i-output-prediction-collection preds2
expect_rc 0
RUN_B=$RUN
read -r MA MB < <(check prv <<'PY' | tail -n 1
print(db["models.files"].find_one()["_id"], db["retrained.files"].find_one()["_id"])
PY
)
[ -n "$MB" ] || fail "the two models"

# ---- export B as PROV-JSON, read back with prov ----
reg export "$RUN_B" --format prov-json
want_rc 0
[ ! -s "$RERR" ] || fail "export --format prov-json printed on stderr"
cp "$ROUT" "$T/b.json"
check prv "$T/b.json" "$RUN_A" "$RUN_B" "$MA" "$MB" <<'PY'
import json, os, pwd
from prov.model import ProvDocument
from prov.constants import (PROV_ATTR_ACTIVITY, PROV_ATTR_AGENT, PROV_ATTR_DELEGATE, PROV_ATTR_ENTITY,
                            PROV_ATTR_GENERATED_ENTITY, PROV_ATTR_RESPONSIBLE, PROV_ATTR_USED_ENTITY, PROV_TYPE)
path, run_a, run_b, ma, mb = argv
doc = ProvDocument.deserialize(source=path, format="json")
ns = "urn:nemesyst:prv:"
def local(q):
    return str(q.uri)[len(ns):] if q is not None and str(q.uri).startswith(ns) else str(q)
def records(kind):
    return [r for r in doc.get_records() if r.get_type().localpart == kind]
def attr(rec, name):
    vals = [v for k, v in rec.attributes if str(k) == name or getattr(k, "localpart", None) == name.split(":")[-1]
            and str(k).startswith(name.split(":")[0])]
    return vals[0] if vals else None
def other(rec, name):
    for k, v in rec.attributes:
        if str(k.uri).endswith("#" + name) or str(k) == "nem:" + name:
            return v
    return None
def rel(kind, a, b):
    return sorted((local(dict(r.formal_attributes).get(a)), local(dict(r.formal_attributes).get(b)))
                  for r in records(kind))
ents = {local(e.identifier): e for e in records("Entity")}
acts = {local(a.identifier): a for a in records("Activity")}
agents = {local(a.identifier): a for a in records("Agent")}
print("entities", sorted(ents), "\nactivities", sorted(acts), "\nagents", sorted(agents))

learner, predictor = "run-%s-learn-0" % run_b, "run-%s-predict-0" % run_b
gen = rel("Generation", PROV_ATTR_ENTITY, PROV_ATTR_ACTIVITY)
used = rel("Usage", PROV_ATTR_ACTIVITY, PROV_ATTR_ENTITY)
eq([a for e, a in gen if e == "model-" + mb], [learner], "MB wasGeneratedBy B's learner")
eq(sorted(e for a, e in used if a == predictor and e.startswith("model-")), ["model-" + mb], "the predictor used MB")
eq(sorted(e for a, e in used if a == learner and e.startswith("model-")), ["model-" + ma], "the learner used MA")
eq([u for g, u in rel("Derivation", PROV_ATTR_GENERATED_ENTITY, PROV_ATTR_USED_ENTITY) if g == "model-" + mb],
   ["model-" + ma], "MB wasDerivedFrom MA")
# the data the learner read: as MB's lineage says
m = db["retrained.files"].find_one()["metadata"]["_nemesyst"]
data = [e for a, e in used if a == learner and e.startswith("data-")]
eq(len(data), len(m["consumed"]), "the learner used one data set per cursor it read")
for c, d in zip(m["consumed"], data):
    e = ents[d]
    eq((other(e, "collection"), other(e, "count"), other(e, "digest")), (c["collection"], c["count"], c["digest"]),
       "the data set %s" % d)
eq(other(ents[data[0]], "count"), count("data"), "it read every document of data")
# what each script wrote, by stamp: the count stored now
rb = db.nemesyst_runs.find_one({"_id": run_b})
for key, coll in [("predict-0", "preds2")]:
    st = rb["scripts"][key]["stamp"]
    e = ents["documents-%s" % st]
    eq((other(e, "collection"), other(e, "count")), (coll, count(coll, {"_nemesyst.s": st})), "%s's documents" % key)
    eq([a for x, a in gen if x == "documents-%s" % st], ["run-%s-%s" % (run_b, key)], "%s wrote them" % key)
    ok(str(dict(e.attributes).get(PROV_TYPE)) .endswith("Predictions") or
       any(str(v).endswith("Predictions") for k, v in e.attributes), "predictions are typed so")
# activities: the run and its scripts, with their times
for key in rb["scripts"]:
    a = acts["run-%s-%s" % (run_b, key)]
    eq((a.get_startTime().replace(tzinfo=None), a.get_endTime().replace(tzinfo=None)),
       (rb["scripts"][key]["started"].replace(microsecond=rb["scripts"][key]["started"].microsecond // 1000 * 1000),
        rb["scripts"][key]["ended"].replace(microsecond=rb["scripts"][key]["ended"].microsecond // 1000 * 1000)),
       "%s's start and end" % key)
ok("run-%s" % run_b in acts, "the run is an activity")
eq(other(acts[learner], "sha256"), m["script_sha256"], "the learner's sha256")
# agents: the user, the host, the rank
user = pwd.getpwuid(os.geteuid()).pw_name
eq(rb.get("user"), user, "the run record names the user")
ok("user-" + user in agents, "the user is an agent")
assoc = rel("Association", PROV_ATTR_ACTIVITY, PROV_ATTR_AGENT)
for key, s in rb["scripts"].items():
    eq(sorted(g for a, g in assoc if a == "run-%s-%s" % (run_b, key)),
       sorted(["host-" + s["host"], "rank-%s-%d" % (run_b, s["rank"])]), "%s wasAssociatedWith its host and rank" % key)
eq([g for a, g in assoc if a == "run-" + run_b], ["user-" + user], "the run wasAssociatedWith the user")
eq(rel("Delegation", PROV_ATTR_DELEGATE, PROV_ATTR_RESPONSIBLE), [("rank-%s-0" % run_b, "user-" + user)],
   "the rank actedOnBehalfOf the user")
# the options: no secret, the learner's batch size
o = ents["options-" + run_b]
eq(other(o, "dl-batch-size"), json.dumps([4]).replace("[", "[ ").replace("]", " ]"), "an option")
ok(not any("password" in str(k) for k, v in o.attributes), "no secret")
# and it serializes again, as PROV-N too
doc.serialize(format="json")
ok("wasDerivedFrom" in doc.get_provn(), "PROV-N")
PY

# ---- A: the cleaner's documents, from which the learner's data was derived ----
reg export "$RUN_A" --format prov-json
want_rc 0
check prv "$ROUT" "$RUN_A" "$MA" <<'PY'
from prov.model import ProvDocument
from prov.constants import PROV_ATTR_ACTIVITY, PROV_ATTR_ENTITY, PROV_ATTR_GENERATED_ENTITY, PROV_ATTR_USED_ENTITY
path, run_a, ma = argv
doc = ProvDocument.deserialize(source=path, format="json")
ns = "urn:nemesyst:prv:"
def local(q):
    return str(q.uri)[len(ns):]
def rel(kind, a, b):
    return sorted((local(dict(r.formal_attributes)[a]), local(dict(r.formal_attributes)[b]))
                  for r in doc.get_records() if r.get_type().localpart == kind)
ents = {local(e.identifier): e for e in doc.get_records() if e.get_type().localpart == "Entity"}
def other(rec, name):
    return next((v for k, v in rec.attributes if str(k.uri).endswith("#" + name)), None)
ra = db.nemesyst_runs.find_one({"_id": run_a})
st = ra["scripts"]["clean-0"]["stamp"]
clean = "documents-%s" % st
eq((other(ents[clean], "collection"), other(ents[clean], "count")), ("data", count("data", {"_nemesyst.s": st})),
   "the cleaner's documents")
eq(count("data", {"_nemesyst.s": st}), 9, "9 of them")
used = rel("Usage", PROV_ATTR_ACTIVITY, PROV_ATTR_ENTITY)
data = [e for a, e in used if a == "run-%s-learn-0" % run_a and e.startswith("data-")]
eq(other(ents[data[0]], "count"), 7, "the learner read 7")
eq([u for g, u in rel("Derivation", PROV_ATTR_GENERATED_ENTITY, PROV_ATTR_USED_ENTITY) if g == data[0]], [clean],
   "the data read wasDerivedFrom the cleaner's documents")
eq([a for e, a in rel("Generation", PROV_ATTR_ENTITY, PROV_ATTR_ACTIVITY) if e == "model-" + ma],
   ["run-%s-learn-0" % run_a], "MA wasGeneratedBy A's learner")
eq([e for a, e in used if a == "run-%s-predict-0" % run_a and e.startswith("model-")], ["model-" + ma],
   "A's predictor used MA")
PY
# the default export is the registry's own, unchanged
reg export "$RUN_A"
want_rc 0
check prv "$ROUT" <<'PY'
import json
eq(json.load(open(argv[0]))["format"], "nemesyst-registry-export/1", "the default format")
PY
reg export "$RUN_A" --format nemesyst
want_rc 0
check prv "$ROUT" <<'PY'
import json
eq(json.load(open(argv[0]))["format"], "nemesyst-registry-export/1", "--format nemesyst")
PY

# ---- prov's own picture of B ----
if command -v dot >/dev/null 2>&1 && "$PYTHON3" -c 'import pydot' 2>/dev/null; then
    check prv "$T/b.json" "$T/b.svg" <<'PY'
from prov.model import ProvDocument
from prov.dot import prov_to_dot
prov_to_dot(ProvDocument.deserialize(source=argv[0], format="json")).write_svg(argv[1])
PY
    grep -q "<svg" "$T/b.svg" || fail "prov's DOT did not render"
else
    echo "dot or python3-pydot missing: the PROV picture is not drawn"
fi

# ---- lineage MB --dot ----
reg lineage "$MB" --dot
want_rc 0
[ ! -s "$RERR" ] || fail "lineage --dot printed on stderr"
cp "$ROUT" "$T/lineage.dot"
check prv "$T/lineage.dot" "$MA" "$MB" "$RUN_A" "$RUN_B" <<'PY'
import re
text = open(argv[0]).read()
ma, mb, run_a, run_b = argv[1:]
ok(text.startswith("digraph lineage {") and text.rstrip().endswith("}"), "a digraph")
nodes = set(re.findall(r'^  "([^"]+)" \[shape=', text, re.M))
edges = set(re.findall(r'^  "([^"]+)" -> "([^"]+)" \[label="([^"]+)"\]', text, re.M))
da, db_ = (db[b + ".files"].find_one()["metadata"]["_nemesyst"]["consumed"][0] for b in ("models", "retrained"))
data_a, data_b = ("data:%s:%s" % (c["collection"], c["digest"]) for c in (da, db_))
pa, pb = (db[b + ".files"].find_one()["metadata"]["_nemesyst"] for b in ("models", "retrained"))
code_a, code_b = ("script:%s:%s" % (p["script"], p["script_sha256"]) for p in (pa, pb))
want_nodes = {"model:" + ma, "model:" + mb, data_a, data_b, "predictions:preds2:%s:predict-0" % run_b, code_a, code_b}
eq(nodes, want_nodes, "the nodes")
eq(edges, {(data_a, "model:" + ma, "trained on"), (data_b, "model:" + mb, "trained on"),
           ("model:" + ma, "model:" + mb, "retrained"),
           ("model:" + mb, "predictions:preds2:%s:predict-0" % run_b, "predicted"),
           (code_a, "model:" + ma, "ran"), (code_b, "model:" + mb, "ran")}, "the edges")
ok("sha256 %s..." % pb["script_sha256"][:16] in text, "the script's sha256")
ok("%d documents" % da["count"] in text and "%d documents" % db_["count"] in text, "the counts")
ok("3 predictions" in text, "the predictions' count")
PY
if command -v dot >/dev/null 2>&1; then
    dot -Tsvg "$T/lineage.dot" >"$T/lineage.svg" || fail "dot refused lineage --dot"
    grep -q "<svg" "$T/lineage.svg" || fail "no SVG from dot"
else
    echo "dot missing: lineage --dot is not drawn"
fi
# a model without parents or predictions: itself and its data
reg lineage "$MA" --dot
want_rc 0
grep -q "^  \"model:$MA\" -> \"predictions:preds:$RUN_A:predict-0\" \[label=\"predicted\"\];$" "$ROUT" ||
    fail "MA's predictions"
! grep -q -- "retrained" "$ROUT" || fail "MA has no parent"

# C retrains MB on B's data: the data set is one node, both models' edges from it
stage_run 0 prv --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection data \
    --dl-data-pipeline '[{"$sort": {"i": 1}}]' --dl-batch-size 4 --dl-input-model-collection retrained \
    --dl-input-model-pipeline '[{"$sort": {"uploadDate": -1}}]' \
    --dl-output-model-collection again
expect_rc 0
MC=$(check prv <<'PY' | tail -n 1
print(db["again.files"].find_one()["_id"])
PY
)
reg lineage "$MC" --dot
want_rc 0
check prv "$ROUT" "$MA" "$MB" "$MC" <<'PY'
import re
text = open(argv[0]).read()
ma, mb, mc = argv[1:]
nodes = re.findall(r'^  "([^"]+)" \[shape=', text, re.M)
eq(len(nodes), len(set(nodes)), "each node once")
c = db["retrained.files"].find_one()["metadata"]["_nemesyst"]["consumed"][0]
shared = "data:%s:%s" % (c["collection"], c["digest"])
edges = re.findall(r'^  "([^"]+)" -> "([^"]+)"', text, re.M)
eq(sorted(m for d, m in edges if d == shared), sorted(["model:" + mb, "model:" + mc]), "one data set, two models")
eq([(a, b) for a, b in edges if b.startswith("model:") and a.startswith("model:")],
   [("model:" + mb, "model:" + mc), ("model:" + ma, "model:" + mb)], "the parents, nearest first")
PY
if command -v dot >/dev/null 2>&1; then
    dot -Tsvg "$ROUT" >/dev/null || fail "dot refused lineage --dot of MC"
fi

vg export "$RUN_A" --format prov-json
vg export "$RUN_B" --format prov-json
vg lineage "$MC" --dot

# ---- bad arguments ----
bad "--format 'xml': export writes nemesyst \(the default\) or prov-json" export "$RUN_A" --format xml
bad "--format is for \`export\`, not \`run\`" run "$RUN_A" --format prov-json
bad "--dot is for \`lineage\`, not \`export\`" export "$RUN_A" --dot
bad "--dot and --json together" lineage "$MA" --dot --json
bad "option --format needs a value" export "$RUN_A" --format
bad "no run '20200101T000000Z-00000000'" export 20200101T000000Z-00000000 --format prov-json
bad "no model '000000000000000000000000'" lineage 000000000000000000000000 --dot
echo "prov: ok"
