"""Checks of --openlineage's events for tests/stage/stage-openlineage.sh: the official JSON schema, the lifecycle of
the run's and each script's runs, their ids, and secrets.

validate(events, spec_dir): each event against spec 2-0-2's RunEvent, and each facet whose name has a schema in
spec_dir/facets against it; every other facet is a custom one with _producer and _schemaURL (the spec's BaseFacet).
spec_dir "none": only the structural checks below."""
import glob
import json
import os
import re
import uuid

from stagecheck import eq, ok

NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/nemesyst/nemesyst#openlineage")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def load(path):
    with open(path, encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if l.strip()]
    events = [json.loads(l) for l in lines]
    ok(len(events) > 0, "%d events in %s" % (len(events), path))
    return events


def _validators(spec):
    import jsonschema
    with open(os.path.join(spec, "OpenLineage.json"), encoding="utf-8") as f:
        core = json.load(f)
    schemas = {core["$id"]: core}
    facets = {}
    for path in sorted(glob.glob(os.path.join(spec, "facets", "*.json"))):
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
        schemas[s["$id"]] = s
        for name in s.get("properties", {}):
            facets[name] = s
    cls = jsonschema.Draft202012Validator
    checker = getattr(cls, "FORMAT_CHECKER", None) or jsonschema.FormatChecker()
    try:  # jsonschema >= 4.18: a registry of the schemas by their $id
        from referencing import Registry, Resource
        registry = Registry().with_resources([(k, Resource.from_contents(v)) for k, v in schemas.items()])

        def make(schema):
            return cls(schema, registry=registry, format_checker=checker)
    except ImportError:  # older (Debian 12's 4.10): a RefResolver with the same store
        def make(schema):
            return cls(schema, resolver=jsonschema.RefResolver.from_schema(schema, store=schemas),
                       format_checker=checker)
    event = make({"$ref": core["$id"] + "#/$defs/RunEvent"})
    return core, event, {name: (s, make(s)) for name, s in facets.items()}


def _facets(e):
    """Every facet of the event: (where, name, facet)."""
    yield from (("run", k, v) for k, v in e["run"].get("facets", {}).items())
    yield from (("job", k, v) for k, v in e["job"].get("facets", {}).items())
    for side, key in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for d in e.get(side, []):
            for group in ("facets", key):
                yield from (("%s %s" % (side, d["name"]), k, v) for k, v in d.get(group, {}).items())


OWN = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "doc",
                             "openlineage-facets.json"), encoding="utf-8"))


def validate(events, spec):
    if spec != "none":
        import jsonschema
        core, event, facets = _validators(spec)
        used = set()
    for e in events:
        eq(e["schemaURL"], "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent", "schemaURL")
        ok(UUID.match(e["run"]["runId"]), "runId %s is a UUID (version 5)" % e["run"]["runId"])
        ok(TIME.match(e["eventTime"]), "eventTime %s is ISO 8601 UTC" % e["eventTime"])
        if spec != "none":
            errors = list(event.iter_errors(e))
            if errors:
                raise AssertionError("event %s does not validate: %s" % (json.dumps(e)[:400], errors[0]))
        for where, name, facet in _facets(e):
            ok(facet.get("_producer", "").startswith("https://") and facet.get("_schemaURL", "").startswith("https://"),
               "facet %s of %s has _producer and _schemaURL" % (name, where))
            if spec == "none":
                continue
            if name in facets:
                s, v = facets[name]
                eq(facet["_schemaURL"].split("#")[0], s["$id"], "facet %s's _schemaURL names its schema" % name)
                errors = list(v.iter_errors({name: facet}))
                if errors:
                    raise AssertionError("facet %s of %s does not validate: %s" % (name, where, errors[0]))
                used.add(name)
            else:
                ok(name.startswith("nemesyst"), "facet %s is nemesyst's own (a custom facet)" % name)
                url, _, ref = facet["_schemaURL"].partition("#")
                eq(url, OWN["$id"], "custom facet %s's _schemaURL names doc/openlineage-facets.json" % name)
                errors = list(jsonschema.Draft202012Validator({**OWN, "$ref": "#" + ref}).iter_errors(facet))
                if errors:
                    raise AssertionError("facet %s of %s does not validate: %s" % (name, where, errors[0]))
    if spec != "none":
        print("ok: %d events valid against %s; standard facets checked: %s" % (len(events), core["$id"],
                                                                               ", ".join(sorted(used))))


def secrets(path, words):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for w in words:
        ok(w not in text and json.dumps(w)[1:-1] not in text, "a secret is not in the events")


def lifecycle(events, run, ns, db, ok_types):
    """START then one end, for the run and for each script of its record; ids derived from the run id; scripts'
    parent is the run."""
    run_id = run["_id"]
    run_uuid = str(uuid.uuid5(NS, run_id))
    by_run = {}
    for e in events:
        eq(e["job"]["namespace"], ns, "job namespace")
        by_run.setdefault(e["run"]["runId"], []).append(e)
    mine = by_run.get(run_uuid, [])
    eq([e["eventType"] for e in mine][:1], ["START"], "the run's first event")
    eq(len(mine), 2, "the run's events")
    ok(mine[1]["eventType"] in ok_types, "the run's end is %s" % mine[1]["eventType"])
    eq(mine[0]["job"]["name"], db, "the run's job name")
    eq(mine[0]["run"]["facets"]["nemesyst"]["runId"], run_id, "the nemesyst run id in its facet")
    keys = sorted(run["scripts"])
    ok(keys, "the run has scripts")
    for key in keys:
        u = str(uuid.uuid5(NS, "%s/%s" % (run_id, key)))
        evs = by_run.get(u, [])
        eq([e["eventType"] for e in evs][:1], ["START"], "script %s's first event" % key)
        eq(len(evs), 2, "script %s's events" % key)
        want = "COMPLETE" if run["scripts"][key]["status"] == "succeeded" else "FAIL"
        eq(evs[1]["eventType"], want, "script %s's end" % key)
        stage, pos = key.rsplit("-", 1)
        ok(evs[0]["job"]["name"].startswith("%s/%s[%s] " % (db, stage, pos)), "script %s's job name" % key)
        for e in evs:
            p = e["run"]["facets"]["parent"]
            eq((p["run"]["runId"], p["job"]["namespace"], p["job"]["name"]), (run_uuid, ns, db),
               "script %s's parent run" % key)
    eq(len(events), 2 + 2 * len(keys), "events of the run")


def _keys(events, run):
    """Each event's key: "run" for the run's, the script's key (clean-0, ...) for a script's, by their runIds."""
    run_id = run["_id"]
    names = {str(uuid.uuid5(NS, run_id)): "run"}
    for e in events:
        f = e["run"]["facets"].get("nemesyst", {})
        if f.get("script"):
            names[str(uuid.uuid5(NS, "%s/%s" % (run_id, f["script"])))] = f["script"]
    for e in events:
        ok(e["run"]["runId"] in names, "event of runId %s is the run's or one of its scripts'" % e["run"]["runId"])
        yield names[e["run"]["runId"]], e


def sequences(events, run):
    """{"run": [eventType, ...], "clean-0": [...], ...} in the order sent; eventTimes never go back within one."""
    out, last = {}, {}
    for key, e in _keys(events, run):
        out.setdefault(key, []).append(e["eventType"])
        ok(e["eventTime"] >= last.get(key, ""), "%s's events in time order" % key)
        last[key] = e["eventTime"]
    return out


def ends(events, run):
    """{"run": the run's last end event, "clean-0": ...}: each one's last event other than START."""
    return {key: e for key, e in _keys(events, run) if e["eventType"] != "START"}


def attempts(events, run):
    """{"run": [the nemesyst facet's attempt of each event], ...}."""
    out = {}
    for key, e in _keys(events, run):
        out.setdefault(key, []).append(e["run"]["facets"]["nemesyst"]["attempt"])
    return out
