"""Helpers for the stage tests' checks: the run's database and run record, and assertions that say what differed.

Names exported to the check snippets: db, RUN, run (the run record, or None), argv, eq, ok, docs, count, models,
script, interval, digest_of, stamp, of_run."""
import hashlib
import os
import sys

import pymongo
from bson import ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

if os.environ.get("NEM_T_USER"):  # a server of the test's own, with authentication
    _client = pymongo.MongoClient("127.0.0.1", int(os.environ["NEM_T_PORT"]), username=os.environ["NEM_T_USER"],
                                  password=os.environ["NEM_T_PASSWORD"], authSource=os.environ["NEM_T_DB"])
else:
    _client = pymongo.MongoClient("mongodb://127.0.0.1:%s/" % os.environ["NEM_TEST_PORT"])
db = _client[os.environ["NEM_T_DB"]]
RUN = os.environ.get("NEM_T_RUN") or None
run = db.nemesyst_runs.find_one({"_id": RUN}) if RUN else None
argv = sys.argv[1:]


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))
    print("ok: %s == %r" % (what, want))


def ok(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok: %s" % what)


def docs(coll, flt=None, sort=None):
    return list(db[coll].find(flt or {}, sort=sort))


def count(coll, flt=None):
    return db[coll].count_documents(flt or {})


def models(bucket, flt=None):
    return list(db[bucket + ".files"].find(flt or {}, sort=[("uploadDate", 1)]))


def script(key, record=None):
    """The run record's entry for a script key ("clean-0")."""
    record = record or run
    entry = (record or {}).get("scripts", {}).get(key)
    if entry is None:
        raise AssertionError("run %s has no entry %s: %r" % (RUN, key, (record or {}).get("scripts")))
    return entry


def stamp(key, run_id=None):
    """A script's provenance stamp in a run, computed here from its documented definition (provenance.h): the first
    12 bytes of sha256("nemesyst-stamp" NUL RUN_ID NUL KEY)."""
    run_id = run_id or RUN
    return ObjectId(hashlib.sha256(b"nemesyst-stamp\0" + run_id.encode() + b"\0" + key.encode()).digest()[:12])


def of_run(run_id=None, keys=None):
    """The filter of a run's documents (or of some of its scripts): their stamps, from the run record's scripts,
    each checked against the stamp the record holds."""
    run_id = run_id or RUN
    record = db.nemesyst_runs.find_one({"_id": run_id})
    if record is None:
        raise AssertionError("no run record %s" % run_id)
    eq(record.get("stamp_format"), 2, "stamp format of run %s" % run_id)
    keys = keys or sorted(record["scripts"])
    for k in keys:
        if k in record["scripts"]:
            eq(record["scripts"][k].get("stamp"), stamp(k, run_id), "the run record's stamp of %s" % k)
    return {"_nemesyst.s": {"$in": [stamp(k, run_id) for k in keys]}}


def interval(key):
    e = script(key)
    return e["started"], e["ended"]


def digest_of(coll, pipeline):
    """count and sha256 over the raw BSON of each document the pipeline yields, in cursor order."""
    raw = db.get_collection(coll, codec_options=CodecOptions(document_class=RawBSONDocument))
    sha, n = hashlib.sha256(), 0
    for d in raw.aggregate(pipeline):
        sha.update(d.raw)
        n += 1
    return n, sha.hexdigest()
