"""Benchmark cleaner (original-style Python, run through python/nemesyst_adapter.py): yields $BENCH_STAGE_DOCS dicts,
the documents of bench_stage_ingest's raw baseline."""
import os


def main(**kwargs):
    n = int(os.environ.get("BENCH_STAGE_DOCS", "20000"))
    for i in range(n):
        doc = {"i": i}
        for k in range(7):
            doc["s%d" % k] = "miNVpaKWqm"
        for k in range(7):
            doc["n%d" % k] = k * 7919
        yield doc
