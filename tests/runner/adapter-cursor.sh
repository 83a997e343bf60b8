#!/bin/bash
# The Python adapter's cursor (python/nemesyst_adapter.py) against the test server: getBatches hands out every
# document once, in order, in lists of the asked size (the last one never empty); the consumed record's count and
# sha256 equal those recomputed here over the documents' BSON, for a cursor read to its end and for one abandoned
# after 150 documents (count and digest of those 150 only, marked incomplete); a 2.0.6-style `while cursor.alive`
# loop reads them all; documents of 600 KiB (replies sized by bytes) come through whole.
. ./tests/env.sh
set -u
[ -n "${NEM_TEST_PORT:-}" ] || fail "NEM_TEST_PORT unset: run under tests/fixtures/with-ferretdb.sh"
NEMESYST_DB_URI="mongodb://127.0.0.1:$NEM_TEST_PORT/" NEMESYST_DB_NAME=adapter_cursor PYTHONPATH="$top_srcdir/python" \
    "$PYTHON3" - <<'PY' || fail "adapter cursor checks failed (see above)"
import hashlib, os, bson, bson.codec_options, bson.raw_bson, pymongo
import nemesyst_adapter as na

client = pymongo.MongoClient(os.environ["NEMESYST_DB_URI"])
coll = client.adapter_cursor.x
coll.drop()
coll.insert_many([{"_id": i, "v": "x" * (i % 50), "n": bson.Int64(i)} for i in range(3000)])

def sha(docs):
    # the documents as the server sent them: raw BSON, read back independently
    raw = client.adapter_cursor.get_collection(
        "x", codec_options=bson.codec_options.CodecOptions(document_class=bson.raw_bson.RawBSONDocument))
    raws = {bson.decode(r.raw)["_id"]: r.raw for r in raw.find()}
    return hashlib.sha256(b"".join(raws[d["_id"]] for d in docs)).hexdigest()

def consumer():
    got = []
    db = na.Mongo({"db_batch_size": 32})
    db.on_consumed = lambda *a: got.append(a)
    return db, got

db, got = consumer()
cur = db.getCursor(db_collection_name="x", db_pipeline=[{"$sort": {"_id": 1}}])
batches = list(db.getBatches(db_batch_size=7, db_data_cursor=cur))
docs = [d for b in batches for d in b]
assert [d["_id"] for d in docs] == list(range(3000)), "every document once, in order"
assert all(len(b) == 7 for b in batches[:-1]) and 0 < len(batches[-1]) <= 7, "batch sizes"
assert isinstance(docs[5]["n"], int) and docs[5] == {"_id": 5, "v": "xxxxx", "n": 5}, docs[5]
assert len(got) == 1 and got[0][2:] == (3000, sha(docs), True), got[0][2:]
db.finish()
assert len(got) == 1, "a cursor read to its end is reported once"

db, got = consumer()
cur = db.getCursor(db_collection_name="x", db_pipeline=[{"$sort": {"_id": 1}}])
first = [next(cur) for _ in range(150)]
assert cur.count == 150 and cur.digest() == sha(first), "digest so far"
db.finish()
assert len(got) == 1 and got[0][2:] == (150, sha(first), False), got[0][2:]

db, got = consumer()
cur, n = db.getCursor(db_collection_name="x"), 0
while cur.alive:
    try:
        cur.next()
        n += 1
    except StopIteration:
        break
assert n == 3000, n

big = client.adapter_cursor.big
big.drop()
big.insert_many([{"_id": i, "blob": os.urandom(600 * 1024)} for i in range(40)])
db, got = consumer()
docs = [d for b in db.getBatches(db_batch_size=3, db_data_cursor=db.getCursor(db_collection_name="big"))
        for d in b]
assert sorted(d["_id"] for d in docs) == list(range(40)) and all(len(d["blob"]) == 600 * 1024 for d in docs)
assert got[0][2] == 40 and got[0][4] is True
print("adapter cursor: ok")
PY
