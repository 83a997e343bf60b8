#!/usr/bin/python3
"""Python feed benchmark: the adapter's Mongo.getCursor + getBatches (python/nemesyst_adapter.py, which hashes each
document's raw BSON for lineage and never hands out an empty batch) against a pymongo loop doing what Nemesyst 2.0.6
did: an aggregate cursor (allowDiskUse) read with cursor.next() per document into batches while cursor.alive.
Same collection, same server, same batch size, no cursor batchSize on either (the server's default), alternating;
prints medians and the ratio ours/original in documents/s, and the client CPU seconds of each (FerretDB bounds the
wall times; the CPU shows the adapter's own cost: raw BSON, sha256, decode).

Usage: /usr/bin/python3 feed.py --port P --adapter-dir DIR [--docs 20000] [--reps 3] [--batch 32,1024]"""
import argparse
import os
import statistics
import sys
import time

import pymongo

DB = "bench_stage"
COLL = "pyfeed"


def make_doc(i):
    doc = {"i": i}
    for k in range(7):
        doc["s%d" % k] = "miNVpaKWqm"
    for k in range(7):
        doc["n%d" % k] = k * 7919
    return doc


def feed_ours(nemesyst_adapter, batch):
    db = nemesyst_adapter.Mongo({})  # as the adapter builds it: args without db_batch_size
    db._log = lambda *a, **kw: None
    c, t = time.process_time(), time.perf_counter()
    cursor = db.getCursor(db_collection_name=COLL, db_pipeline=[{"$match": {}}])
    n = 0
    for b in db.getBatches(db_batch_size=batch, db_data_cursor=cursor):
        n += len(b)
    t, c = time.perf_counter() - t, time.process_time() - c
    db._client.close()
    return n, t, c


def feed_original(client, batch):
    """Nemesyst 2.0.6's getCursor/getBatches/_nextBatch: next() per document."""
    c, t = time.process_time(), time.perf_counter()
    cursor = client[DB][COLL].aggregate([{"$match": {}}], allowDiskUse=True)
    n = 0
    while cursor.alive:
        data = []
        for _ in range(batch):
            try:
                data.append(cursor.next())
            except StopIteration:
                break
        if data:
            n += len(data)
    t, c = time.perf_counter() - t, time.process_time() - c
    return n, t, c


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--adapter-dir", required=True)
    p.add_argument("--docs", type=int, default=20000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batch", default="32,1024")
    a = p.parse_args()
    sizes = [int(x) for x in a.batch.split(",") if x]
    uri = "mongodb://127.0.0.1:%d/" % a.port
    os.environ["NEMESYST_DB_URI"] = uri
    os.environ["NEMESYST_DB_NAME"] = DB
    os.environ.pop("NEMESYST_PASSWORD_FD", None)
    sys.path.insert(0, a.adapter_dir)
    import nemesyst_adapter

    client = pymongo.MongoClient(uri)
    coll = client[DB][COLL]
    coll.drop()
    coll.insert_many([make_doc(i) for i in range(a.docs)])

    feed_ours(nemesyst_adapter, sizes[0])  # warm-up
    feed_original(client, sizes[0])
    ours = {s: [] for s in sizes}
    orig = {s: [] for s in sizes}
    cpu = {("adapter", s): [] for s in sizes}
    cpu.update({("original", s): [] for s in sizes})
    for _ in range(a.reps):
        for s in sizes:
            for name, fn, out in (("adapter", lambda: feed_ours(nemesyst_adapter, s), ours),
                                  ("original", lambda: feed_original(client, s), orig)):
                n, t, c = fn()
                if n != a.docs:
                    sys.exit("feed.py: %s read %d of %d documents" % (name, n, a.docs))
                out[s].append(t)
                cpu[name, s].append(c)
    coll.drop()
    print("Python feed (adapter getCursor+getBatches vs 2.0.6-style next() loop, pymongo %s): %d documents, median of "
          "%d run(s); ratio = ours/original in documents/s" % (pymongo.version, a.docs, a.reps))
    print("%-10s %12s %12s %12s %12s %7s   %10s %10s %9s" % ("batch", "ours s", "ours docs/s", "orig s", "orig docs/s",
                                                           "ratio", "ours CPU s", "orig CPU s", "CPU x orig"))
    for s in sizes:
        mo, mr = statistics.median(ours[s]), statistics.median(orig[s])
        co, cr = statistics.median(cpu["adapter", s]), statistics.median(cpu["original", s])
        print("%-10d %12.3f %12.0f %12.3f %12.0f %7.2f   %10.3f %10.3f %9.2f" % (
            s, mo, a.docs / mo, mr, a.docs / mr, mr / mo, co, cr, co / cr if cr > 0 else 0.0))


if __name__ == "__main__":
    main()
