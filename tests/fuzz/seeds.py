#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into tests/fuzz/corpus/TARGET/ (run it from anywhere; it replaces the
seeds it writes and leaves other files alone: the inputs fuzzing found, crash-* and finding-*, are kept as they
came). The seeds are committed; rerun this after changing it.
  conffile  config files: the examples in examples/configs/ and valid and near-valid lines of every form
  items     [format byte][cut byte] + a script's output: JSON lines and BSON streams with markers
  pipeline  [mode byte] + a pipeline option's value (see fuzz_pipeline.c for the header bytes)
Needs only the standard library (BSON is encoded here)."""
import os
import struct
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(TOP, "tests", "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- a minimal BSON encoder --------------------------------------------------------------------------------------
class Int64(int):
    pass


def cstr(s):
    return s.encode() + b"\0"


def element(key, v):
    k = cstr(key)
    if isinstance(v, bool):
        return b"\x08" + k + (b"\x01" if v else b"\x00")
    if isinstance(v, Int64):
        return b"\x12" + k + struct.pack("<q", v)
    if isinstance(v, int):
        return b"\x10" + k + struct.pack("<i", v)
    if isinstance(v, float):
        return b"\x01" + k + struct.pack("<d", v)
    if isinstance(v, str):
        b = v.encode()
        return b"\x02" + k + struct.pack("<i", len(b) + 1) + b + b"\0"
    if v is None:
        return b"\x0a" + k
    if isinstance(v, bytes):
        return b"\x05" + k + struct.pack("<i", len(v)) + b"\x00" + v
    if isinstance(v, dict):
        return b"\x03" + k + doc(v)
    if isinstance(v, list):
        return b"\x04" + k + doc({str(i): x for i, x in enumerate(v)})
    raise TypeError(type(v))


def doc(d):
    body = b"".join(element(k, v) for k, v in d.items())
    return struct.pack("<i", len(body) + 5) + body + b"\0"


# --- conffile -----------------------------------------------------------------------------------------------------
def conffile():
    ex = os.path.join(TOP, "examples", "configs", "nemesyst")
    for name in sorted(os.listdir(ex)):
        with open(os.path.join(ex, name), "rb") as f:
            write("conffile", "example-" + name, f.read())
    seeds = {
        "forms": "--db-port=65530\ndb-name = data\ndata-collection: mnist\ndl-epochs 3\ndata-clean\n",
        "comments": "# a comment\n; another\n[section]\n--db-name=data   # trailing\ndb-port = 27017 ; trailing\n",
        "lists-bracket": "data-cleaner = [a.py, b.py, c.py]\ndl-epochs = [1, 2, 3]\n",
        "lists-space": "data-collection = one two three\ndl-batch-size 8 16 32\n",
        "list-unclosed": "data-collection = [a, b\n",
        "bool-values": "dl-learn = yes\ni-predict = off\ndb-tls = 1\ndata-clean = maybe\n",
        "bom-crlf": "\ufeff--db-name=data\r\n--db-port=27017\r\n",
        "pipelines": 'dl-data-pipeline = [{"$match": {"a": 1}}, {"$limit": 10}]\n'
                     'dl-input-model-pipeline = {"$sort": {"_id": -1}}\n',
        "pipeline-list": 'dl-data-pipeline = [{"$match": {}}] [{"$limit": 1}]\n',
        "pipeline-bad": 'dl-data-pipeline = [{"$match": \n',
        "pipeline-path": "dl-data-pipeline = pipeline.json\n",
        "include-self": "config = fuzz.conf\ndb-name = x\n",
        "include-missing": "config = no-such-file.conf\n",
        "include-list": "config = [a.conf, b.conf]\n",
        "unknown": "--db-prot=5\n",
        "malformed": "=value\n# ok\n:x\n",
        "needs-value": "db-port\n",
        "quoted": "db-name = \"data\"\ndb-user-name = 'groot'\n",
        "names-bad": "db-name = a.b\ndata-collection = $x\n",
        "ranges": "db-port = 0\nprocess-pool = 1000000000000\nscript-timeout=-1\n",
        "int-words": "db-port = x\ndl-epochs = 1 x\n",
        "staleness": "db-replica-max-staleness = 90\ndb-replica-read-preference = secondary\n",
        "enum-bad": "log-level = loud\ndb-engine = other\n",
        "password": "db-password = secret\ndb-password-file = pw.txt\n",
        "utf8": "db-name = caf\u00e9\ndata-collection = \u6570\u636e\n",
        "utf8-bad": b"db-name = caf\xc3\n",
        "nul": b"db-name = a\0b\n",
        "long-value": "db-user-name = " + "x" * 3000 + "\n",
        "empty": "",
        "blank-lines": "\n\n  \n\t\n",
        "many-keys": "".join("--%s\n" % k for k in ("data-clean", "dl-learn", "i-predict", "db-tls", "db-login")),
        "repeat": "db-name = a\ndb-name = b\ndb-name = c\n",
        "scripts": "data-cleaner = clean.py\ndl-learner = learn.so\ni-predictor = predict\n"
                   "data-cleaner-entry-point = run\n",
        "resume": "resume = 20240101T000000Z-abcdef\nsummary-json = out.json\nkeep-partial\n",
        "tls": "db-tls\ndb-tls-ca-file = ca.pem\ndb-tls-certificate-key-file = key.pem\n",
        "bind-ip": "db-bind-ip = [localhost, 127.0.0.1, ::1]\n",
        "no-newline-at-end": "db-name = data",
    }
    for name, text in seeds.items():
        write("conffile", name, text)


# --- items --------------------------------------------------------------------------------------------------------
DETECT, JSON, BSON = 0, 1, 2


def items_seed(name, fmt, cut, data, refuse=0):
    write("items", name, bytes([fmt + 3 * refuse, cut]) + (data.encode() if isinstance(data, str) else data))


def items():
    model = '{"$nemesyst_model": {"path": "model.bin", "metadata": {"acc": 0.9}, "temp": false}}'
    consumed = '{"$nemesyst_consumed": {"collection": "c", "pipeline": [{"$match": {}}], "count": 3, ' \
               '"digest": "00", "complete": true}}'
    lines = {
        "json-docs": '{"a": 1}\n{"b": "two"}\n{"c": [1, 2, 3]}\n',
        "json-ext": '{"_id": {"$oid": "5f0000000000000000000001"}, "t": {"$date": "2020-01-01T00:00:00Z"}, '
                    '"n": {"$numberLong": "5"}, "d": {"$numberDecimal": "1.5"}, "b": {"$binary": '
                    '{"base64": "AAEC", "subType": "00"}}}\n',
        "json-markers": '{"x": 1}\n' + model + "\n" + consumed + '\n{"$nemesyst_end": {"items": 3}}\n',
        "json-end-only": '{"$nemesyst_end": {"items": 0}}\n',
        "json-end-wrong": '{"$nemesyst_end": {"items": -1}}\n',
        "json-end-twice": '{"$nemesyst_end": {"items": 0}}\n{"$nemesyst_end": {"items": 0}}\n',
        "json-after-end": '{"$nemesyst_end": {"items": 0}}\n{"a": 1}\n',
        "json-model-missing": '{"$nemesyst_model": {"path": "no-such-model.bin"}}\n',
        "json-model-nopath": '{"$nemesyst_model": {"metadata": {}}}\n',
        "json-model-extra": '{"$nemesyst_model": {"path": "model.bin", "other": 1}}\n',
        "json-model-notdoc": '{"$nemesyst_model": "model.bin"}\n',
        "json-consumed-bad": '{"$nemesyst_consumed": {"collection": 1}}\n',
        "json-marker-unknown": '{"$nemesyst_other": {}}\n',
        "json-marker-two-keys": '{"$nemesyst_model": {"path": "model.bin"}, "x": 1}\n',
        "json-two-docs": '{"a": 1}{"b": 2}\n',
        "json-array": '[{"a": 1}]\n',
        "json-not-object": 'hello\n',
        "json-malformed": '{"a": \n',
        "json-blank": '\n  \n\t\r\n{"a": 1}  \r\n\n',
        "json-no-newline": '{"a": 1}\n{"b": 2}',
        "json-crlf": '{"a": 1}\r\n{"b": 2}\r\n',
        "json-nested": '{"a": {"b": {"c": {"d": [[[{"e": null}]]]}}}}\n',
        "json-unicode": '{"s": "caf\\u00e9 \\ud83d\\ude00", "t": "\u00e9"}\n',
    }
    for i, (name, text) in enumerate(sorted(lines.items())):
        items_seed(name, JSON if i % 2 else DETECT, (37 * i) % 256, text)
    items_seed("detect-json-magic", DETECT, 5, "#nemesyst:json\n" + lines["json-markers"])
    items_seed("json-refuse-second", JSON, 128, lines["json-docs"], refuse=2)

    d1 = doc({"a": 1, "s": "x", "f": 1.5, "l": Int64(7), "b": True, "n": None, "bin": b"\x00\x01"})
    d2 = doc({"arr": [1, "two", {"three": 3}]})
    m = doc({"$nemesyst_model": {"path": "model.bin", "metadata": {"acc": 0.5}, "temp": False}})
    c = doc({"$nemesyst_consumed": {"collection": "c", "count": Int64(2), "digest": "ab", "complete": True}})
    end = doc({"$nemesyst_end": {"items": 4}})
    streams = {
        "bson-docs": d1 + d2,
        "bson-markers": d1 + m + c + d2 + end,
        "bson-end-only": doc({"$nemesyst_end": {"items": Int64(0)}}),
        "bson-after-end": end + d1,
        "bson-truncated": d1 + d2[:-3],
        "bson-len-small": struct.pack("<i", 4) + b"\0" * 4,
        "bson-len-huge": struct.pack("<i", 17 * 1024 * 1024) + b"\0" * 8,
        "bson-bad-type": struct.pack("<i", 12) + b"\x7fk\0" + b"\x00" * 4 + b"\0",
        "bson-bad-utf8": doc({"s": "x"})[:-4] + b"\xff\0\0",
        "bson-model-missing": doc({"$nemesyst_model": {"path": "no-such-model.bin"}}),
        "bson-consumed-bad": doc({"$nemesyst_consumed": {"count": 1}}),
        "bson-empty-doc": doc({}),
        "bson-marker-unknown": doc({"$nemesyst_x": 1}),
    }
    for i, (name, data) in enumerate(sorted(streams.items())):
        items_seed(name, BSON, (53 * i + 11) % 256, data)
        if i % 3 == 0:
            items_seed("detect-" + name, DETECT, (29 * i + 3) % 256, b"#nemesyst:bson\n" + data)
    items_seed("bson-refuse-first", BSON, 200, d1 + d2, refuse=1)
    items_seed("detect-partial-magic", DETECT, 255, "#nemesyst:bs")


# --- pipeline -----------------------------------------------------------------------------------------------------
def pipeline():
    inline, via_file, model = 0, 1, 2
    values = {
        "empty-object": "{}",
        "empty-array": "[]",
        "match": '[{"$match": {"a": {"$gt": 1}}}]',
        "stages": '[{"$match": {"x": 1}}, {"$sort": {"_id": -1}}, {"$limit": 10}, {"$project": {"a": 1}}]',
        "object": '{"$match": {"a": 1}}',
        "object-key-0": '{"0": {"$match": {}}}',
        "object-keys-out-of-order": '{"1": {"$limit": 1}, "0": {"$match": {}}}',
        "ext-types": '[{"$match": {"_id": {"$oid": "5f0000000000000000000001"}, "d": {"$date": '
                     '"2020-01-01T00:00:00Z"}, "n": {"$numberLong": "5"}, "x": {"$numberDecimal": "1.5"}, '
                     '"r": {"$regex": "^a", "$options": "i"}, "b": {"$binary": {"base64": "AAEC", "subType": '
                     '"04"}}, "f": {"$numberDouble": "-0.0"}, "i": {"$numberDouble": "Infinity"}}}]',
        "scalars": '[1, "two", 3.5, true, null, {"$minKey": 1}, {"$maxKey": 1}]',
        "nested": '[{"$lookup": {"from": "c", "pipeline": [{"$match": {"$expr": {"$eq": ["$a", "$$b"]}}}], '
                  '"as": "j"}}]',
        "list-of-two": '[{"$match": {}}] [{"$limit": 1}]',
        "list-bracket": '[{"$match": {}}, {"$limit": 1}',
        "bad-json": '[{"$match": ',
        "bad-trailing": '[{"$limit": 1}] x',
        "spaces": '   \t [ { "$limit" : 1 } ]  ',
        "unicode": '[{"$match": {"s": "caf\\u00e9", "t": "\u6570"}}]',
        "path": "pipeline.json",
        "path-missing": "no-such-pipeline.json",
        "quoted": "'[{\"$limit\": 1}]'",
        "numbers": '[{"$limit": 9223372036854775807}, {"$skip": -2147483649}, {"x": 1e308}, {"y": 5e-324}]',
    }
    for i, (name, text) in enumerate(sorted(values.items())):
        write("pipeline", "inline-" + name, bytes([inline | (model if i % 4 == 3 else 0)]) + text.encode())
        if i % 2 == 0:
            write("pipeline", "file-" + name, bytes([via_file]) + text.encode())
    # Found by fuzz_pipeline: an object shaped like an extended-JSON type wrapper becomes the pipeline's first
    # element, and its provenance JSON reads back as another type or not at all (see fuzz_pipeline.c).
    for name, text in (("maxkey", '{"$maxKey": 1}'), ("oid", '{"$oid": "5f0000000000000000000001"}'),
                       ("binary", '{"$binary": 0}'), ("date", '{"$date": 5}')):
        write("pipeline", "finding-object-" + name, bytes([inline]) + text.encode())
    write("pipeline", "file-nul", bytes([via_file]) + b'[{"$limit": 1}]\0')
    write("pipeline", "file-bad-utf8", bytes([via_file]) + b'[{"s": "\xc3"}]')
    write("pipeline", "file-blank", bytes([via_file]) + b" \n\t\r\n")
    write("pipeline", "file-text", bytes([via_file]) + b"hello")
    write("pipeline", "file-newlines", bytes([via_file]) + b'\n[\n  {"$match": {}},\n  {"$limit": 2}\n]\n')


if __name__ == "__main__":
    which = sys.argv[1:] or ["conffile", "items", "pipeline"]
    for t in which:
        globals()[t]()
