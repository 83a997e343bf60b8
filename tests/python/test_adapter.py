"""The pure parts of python/nemesyst_adapter.py, with no server and no MPI: pipeline checks, the items written to the
host (documents, models, markers, the end record), the cursor's lineage digest, batching, the GridFS chunk reader's
checks, FerretDB's unstorable values, checkpoint arguments, args and secrets from the environment, script loading,
code lineage, and a whole run() over a pipe. Run by tests/python/pytest.sh (make check)."""

import datetime
import hashlib
import io
import os
import sys
import textwrap

import bson
import gridfs.errors
import pymongo
import pymongo.errors
import pytest
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument

import nemesyst_adapter as na


def decode_items(data):
    return bson.decode_all(bytes(data))


def raw(doc):
    return RawBSONDocument(bson.BSON.encode(doc))


# --- _log ------------------------------------------------------------------------------------------------------------

def test_log_prefixes_every_line_with_its_level(capsys):
    na._log(4, "one\ntwo")
    na._log(3, "")
    na._log(6, 42)
    assert capsys.readouterr().err == "<4>one\n<4>two\n<3>\n<6>42\n"


# --- _check_pipeline -------------------------------------------------------------------------------------------------

def test_pipeline_of_stages_is_returned_as_a_list():
    stages = ({"$match": {"a": 1}}, {"$limit": 5})
    got = na._check_pipeline(stages)
    assert got == [{"$match": {"a": 1}}, {"$limit": 5}] and isinstance(got, list)
    assert na._check_pipeline([]) == []


@pytest.mark.parametrize("pipeline, message", [
    ({"$match": {}}, r"must be a list of stage documents such as \[\{\"\$match\": \{\}\}\], got dict"),
    ("[]", r"got str"),
    (None, r"got NoneType"),
    ([{"$match": {}}, {"$limit": 1, "$skip": 2}], r"^getCursor: db_pipeline stage 1 is not a document with one field$"),
    ([{}], r"stage 0 is not a document with one field"),
    ([["$match", {}]], r"stage 0 is not a document with one field"),
    ([{"match": {}}],
     r"^getCursor: db_pipeline stage 0 'match' does not name a stage \(its field must start with '\$'\)$"),
    ([{"$match": {}}, {1: 2}], r"stage 1 1 does not name a stage"),
])
def test_bad_pipelines_are_refused_with_a_clear_message(pipeline, message):
    with pytest.raises(ValueError, match=message):
        na._check_pipeline(pipeline)


# --- ItemWriter: what goes to the host --------------------------------------------------------------------------------

def writer(tmp_path):
    out = io.BytesIO()
    return out, na.ItemWriter(out, str(tmp_path))


def test_documents_and_the_end_record(tmp_path):
    out, w = writer(tmp_path)
    w.document({"a": 1})
    w.item({"b": "x"})
    w.item(None)
    w.end()
    items = decode_items(out.getvalue())
    assert items == [{"a": 1}, {"b": "x"}, {"$nemesyst_end": {"items": 2}}]
    assert isinstance(items[-1]["$nemesyst_end"]["items"], Int64)


def test_the_wire_bytes_are_plain_bson(tmp_path):
    out, w = writer(tmp_path)
    w.document({"k": 1})
    w.end()
    first = bson.BSON.encode({"k": 1})
    assert out.getvalue()[:len(first)] == first
    assert out.getvalue()[len(first):] == bson.BSON.encode({"$nemesyst_end": {"items": Int64(1)}})


def test_a_model_is_a_file_announced_after_its_code(tmp_path):
    out, w = writer(tmp_path)
    w.item(({"acc": 0.5}, b"weights"))
    w.item(({"acc": 0.6}, "text model"))
    w.end()
    items = decode_items(out.getvalue())
    assert list(items[0]) == ["$nemesyst_code"]
    code = items[0]["$nemesyst_code"]
    assert set(code) == {"modules", "packages", "python"}
    assert code["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert "pymongo" in code["packages"]
    # the code did not change between the models: announced once
    assert [list(i)[0] for i in items] == ["$nemesyst_code", "$nemesyst_model", "$nemesyst_model", "$nemesyst_end"]
    first, second = items[1]["$nemesyst_model"], items[2]["$nemesyst_model"]
    assert first["metadata"] == {"acc": 0.5} and first["temp"] is True
    assert os.path.dirname(first["path"]) == str(tmp_path)
    assert os.path.basename(first["path"]).startswith("model-")
    with open(first["path"], "rb") as f:
        assert f.read() == b"weights"
    with open(second["path"], "rb") as f:
        assert f.read() == b"text model"
    assert items[3] == {"$nemesyst_end": {"items": 3}}


def test_a_model_without_metadata_gets_an_empty_document(tmp_path):
    out, w = writer(tmp_path)
    w.model(None, io.BytesIO(b"x" * 3000000))
    model = decode_items(out.getvalue())[-1]["$nemesyst_model"]
    assert model["metadata"] == {}
    assert os.path.getsize(model["path"]) == 3000000


@pytest.mark.parametrize("item", [[1, 2], "text", 3, ({"a": 1},), ("meta", b"data"), ({"a": 1}, b"x", 3)])
def test_anything_else_yielded_is_refused(tmp_path, item):
    out, w = writer(tmp_path)
    with pytest.raises(TypeError, match="a stage script yields dicts .* not " + type(item).__name__):
        w.item(item)
    assert out.getvalue() == b""


def test_consumed_is_reported_once_per_data(tmp_path):
    out, w = writer(tmp_path)
    w.consumed("c", [{"$match": {}}], 3, "d1", True)
    w.consumed("c", [{"$match": {}}], 3, "d1", True)  # a second epoch over the same data
    w.consumed("c", None, 2, "d2", False)
    items = decode_items(out.getvalue())
    assert items == [
        {"$nemesyst_consumed": {"collection": "c", "pipeline": [{"$match": {}}], "count": 3, "digest": "d1",
                                "complete": True}},
        {"$nemesyst_consumed": {"collection": "c", "pipeline": [], "count": 2, "digest": "d2", "complete": False}}]
    assert isinstance(items[0]["$nemesyst_consumed"]["count"], Int64)


def test_a_model_used_names_its_bucket_and_id(tmp_path):
    out, w = writer(tmp_path)
    w.model_used("models", 7)
    assert decode_items(out.getvalue()) == [
        {"$nemesyst_consumed": {"collection": "models.files", "count": 1, "model": {"bucket": "models", "id": 7}}}]


def test_metrics(tmp_path):
    out, w = writer(tmp_path)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    w.metric("loss", 3, 1)
    w.metric("é" * 64, 0, 0.25)
    items = decode_items(out.getvalue())
    m = items[0]["$nemesyst_metric"]
    assert (m["name"], m["step"], m["value"]) == ("loss", 3, 1.0)
    assert isinstance(m["step"], Int64) and isinstance(m["value"], float)
    assert m["t"].replace(tzinfo=datetime.timezone.utc) >= before
    assert items[1]["$nemesyst_metric"]["name"] == "é" * 64


@pytest.mark.parametrize("name, step, message", [
    ("", 0, "a metric name is a string of 1-128 bytes, not ''"),
    ("x" * 129, 0, "1-128 bytes"),
    ("é" * 65, 0, "1-128 bytes"),  # 130 bytes
    (b"loss", 0, "not b'loss'"),
    ("loss", -1, "a metric step is a whole number >= 0, not -1"),
    ("loss", 1.0, "not 1.0"),
    ("loss", True, "not True"),
])
def test_bad_metrics_are_refused(tmp_path, name, step, message):
    out, w = writer(tmp_path)
    with pytest.raises(ValueError) as e:
        w.metric(name, step, 1.0)
    assert message in str(e.value)
    assert out.getvalue() == b""


def test_flush_and_close(tmp_path):
    r, wfd = os.pipe()
    try:
        w = na.ItemWriter(wfd, str(tmp_path))
        w.document({"a": 1})
        w.flush()
        assert bson.decode(os.read(r, 1000)) == {"a": 1}
        w.close()
        w.flush()  # closed: nothing to do
        assert os.read(r, 1000) == b""  # the end of the pipe
    finally:
        os.close(r)


def test_the_writer_closes_as_a_context_and_hides_a_broken_pipe_behind_a_failure(tmp_path):
    with na.ItemWriter(io.BytesIO(), str(tmp_path)) as w:
        pass
    assert w._out.closed

    class Broken(io.BytesIO):
        def close(self):
            raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(KeyError):  # the script's failure, not the pipe's
        with na.ItemWriter(Broken(), str(tmp_path)):
            raise KeyError("x")
    with pytest.raises(BrokenPipeError):  # without a failure, a pipe that cannot be closed is one
        with na.ItemWriter(Broken(), str(tmp_path)):
            pass


def test_model_data_forms():
    for data, want in [(b"ab", b"ab"), (bytearray(b"cd"), b"cd"), (memoryview(b"ef"), b"ef"), ("é", "é".encode()),
                       (io.BytesIO(b"gh" * 700000), b"gh" * 700000), (io.StringIO("ij"), b"ij")]:
        f = io.BytesIO()
        na._write_model_data(f, data)
        assert f.getvalue() == want
    with pytest.raises(TypeError, match="model data must be bytes, str or a file-like object, not int"):
        na._write_model_data(io.BytesIO(), 5)


# --- TrackedCursor and getBatches ------------------------------------------------------------------------------------

class FakeCursor:
    """What TrackedCursor uses of a pymongo cursor: iteration over raw documents, batch_size, alive, close."""

    def __init__(self, docs):
        self._raws = iter([raw(d) for d in docs])
        self._left = len(docs)
        self.sizes = []
        self.closed = False
        self.comment = "delegated"

    def __iter__(self):
        return self

    def __next__(self):
        self._left = max(0, self._left - 1)
        return next(self._raws)

    def batch_size(self, n):
        self.sizes.append(n)
        return self

    @property
    def alive(self):
        return self._left > 0

    def close(self):
        self.closed = True


def docs(n, pad=0):
    return [{"_id": i, "v": "x" * (pad or i % 7)} for i in range(n)]


def sha(ds):
    return hashlib.sha256(b"".join(bson.BSON.encode(d) for d in ds)).hexdigest()


def tracked(ds, pipeline=None):
    ends = []
    cursor = FakeCursor(ds)
    return na.TrackedCursor(cursor, "coll", pipeline or [{"$match": {}}], lambda *a: ends.append(a)), cursor, ends


def test_a_cursor_read_to_its_end_is_reported_once_with_its_digest():
    ds = docs(600)
    t, cursor, ends = tracked(ds)
    got = list(t)
    assert got == ds and all(type(d) is dict for d in got)
    assert ends == [("coll", [{"$match": {}}], 600, sha(ds), True)]
    assert t.count == 600 and t.digest() == sha(ds)
    t._end(False)  # finish() after the end: nothing more
    assert len(ends) == 1
    assert list(t) == [] and t.take(5) == []


def test_replies_are_sized_by_bytes_once():
    t, cursor, _ = tracked(docs(300, pad=1000))
    next(t)
    size = len(bson.BSON.encode(docs(1, pad=1000)[0]))
    assert cursor.sizes == [na.REPLY_BYTES // size]
    list(t)
    assert len(cursor.sizes) == 1


def test_reply_size_bounds():
    assert na._reply_docs([raw({"a": 1})]) == na.REPLY_DOCS_MAX
    assert na._reply_docs([raw({"b": b"x" * (8 << 20)})]) == 1
    two = [raw({"b": b"x" * 1000}), raw({"b": b"x" * 3000})]
    assert na._reply_docs(two) == na.REPLY_BYTES // (sum(len(r.raw) for r in two) // 2)


def test_an_abandoned_cursor_reports_what_was_handed_out():
    ds = docs(1000)
    t, cursor, ends = tracked(ds, [{"$sort": {"_id": 1}}])
    first = [next(t) for _ in range(300)] + t.take(7)
    assert first == ds[:307]
    assert t.count == 307 and t.digest() == sha(ds[:307])
    assert ends == []
    t._end(False)
    assert ends == [("coll", [{"$sort": {"_id": 1}}], 307, sha(ds[:307]), False)]
    t._end(False)
    assert len(ends) == 1


def test_cursor_next_alive_and_delegation():
    t, cursor, ends = tracked(docs(3))
    assert t.alive
    seen = []
    while t.alive:
        try:
            seen.append(t.next()["_id"])
        except StopIteration:
            break
    assert seen == [0, 1, 2] and not t.alive
    assert t.comment == "delegated"
    t.close()
    assert cursor.closed


@pytest.mark.parametrize("n, size", [(10, 3), (9, 3), (1, 5), (0, 4), (700, 256), (700, 1)])
def test_batches_are_never_empty_and_keep_the_order(n, size):
    for make in (lambda ds: iter(ds), lambda ds: tracked(ds)[0]):
        ds = docs(n)
        batches = list(na.Mongo().getBatches(db_batch_size=size, db_data_cursor=make(ds)))
        assert [d for b in batches for d in b] == ds
        assert all(len(b) == size for b in batches[:-1])
        assert all(0 < len(b) <= size for b in batches)
        assert len(batches) == (n + size - 1) // size


def test_the_batch_size_defaults_to_the_args_then_one():
    assert [len(b) for b in na.Mongo({"db_batch_size": 4}).getBatches(db_data_cursor=range(10))] == [4, 4, 2]
    assert [len(b) for b in na.Mongo().getBatches(db_data_cursor=range(3))] == [1, 1, 1]


# --- Mongo without a server: fakes of the collections it uses ---------------------------------------------------------

class FakeCollection:
    def __init__(self, docs=()):
        self.docs = list(docs)
        self.inserted = []
        self.pipelines = []

    def aggregate(self, pipeline, allowDiskUse=False):
        assert allowDiskUse is True
        self.pipelines.append(pipeline)
        return FakeCursor(self.docs)

    def insert_one(self, doc):
        self.inserted.append(doc)

    def find_one(self, query):
        return next((d for d in self.docs if d["_id"] == query["_id"]), None)


class FakeAdmin:
    def __init__(self, info):
        self.info = info
        self.asked = 0

    def command(self, name):
        assert name == "buildInfo"
        self.asked += 1
        if isinstance(self.info, Exception):
            raise self.info
        return self.info


class FakeClient:
    def __init__(self, info):
        self.admin = FakeAdmin(info)


class FakeDatabase:
    name = "fakedb"

    def __init__(self, info=None, collections=None):
        self.client = FakeClient(info if info is not None else {"version": "7.0.0"})
        self.collections = collections or {}

    def __getitem__(self, name):
        return self.collections.setdefault(name, FakeCollection())

    def get_collection(self, name, codec_options=None):
        assert codec_options.document_class is RawBSONDocument
        return self[name]


def test_callbacks_are_given_to_the_constructor():
    seen = []
    db = na.Mongo({"db_collection_name": "c"}, on_consumed=lambda *a: seen.append(("consumed",) + a),
                  on_metric=lambda *a: seen.append(("metric",) + a))
    database = FakeDatabase(collections={"c": FakeCollection(docs(5))})
    cursor = db.getCursor(db=database)
    assert [d["_id"] for d in cursor] == [0, 1, 2, 3, 4]
    db.log_metric("loss", 1, 0.5)
    assert seen == [("consumed", "c", [{"$match": {}}], 5, sha(docs(5)), True), ("metric", "loss", 1, 0.5)]
    assert database["c"].pipelines == [[{"$match": {}}]]


def test_finish_reports_cursors_never_read_to_their_end():
    seen = []
    db = na.Mongo(on_consumed=lambda *a: seen.append(a))
    database = FakeDatabase(collections={"c": FakeCollection(docs(50))})
    cursor = db.getCursor(db=database, db_collection_name="c", db_pipeline=[{"$limit": 50}])
    part = cursor.take(10)
    db.finish()
    assert seen == [("c", [{"$limit": 50}], 10, sha(part), False)]


def test_a_bad_pipeline_is_refused_before_the_server():
    with pytest.raises(ValueError, match="stage 0 is not a document with one field"):
        na.Mongo().getCursor(db=FakeDatabase(), db_collection_name="c", db_pipeline=[{"$a": 1, "$b": 2}])


def test_a_group_member_reads_its_shard(monkeypatch):
    monkeypatch.setenv("NEMESYST_SHARD", '{"_id": {"$mod": [2, 1]}}')
    monkeypatch.setenv("NEMESYST_SHARD_COLLECTION", "train")
    monkeypatch.setenv("NEMESYST_GROUP_SIZE", "2")
    monkeypatch.setenv("NEMESYST_GROUP_RANK", "1")
    db, database = na.Mongo(), FakeDatabase()
    db.getCursor(db=database, db_collection_name="train", db_pipeline=[{"$limit": 3}])
    db.getCursor(db=database, db_collection_name="other")
    assert database["train"].pipelines == [[{"$match": {"_id": {"$mod": [2, 1]}}}, {"$limit": 3}]]
    assert database["other"].pipelines == [[{"$match": {}}]]
    assert db.group == (1, 2)
    monkeypatch.delenv("NEMESYST_GROUP_SIZE")  # a shard without a group is ignored
    na.Mongo().getCursor(db=database, db_collection_name="train")
    assert database["train"].pipelines[-1] == [{"$match": {}}]


def test_log_metric_needs_nemesyst():
    with pytest.raises(RuntimeError, match="log_metric: not running under nemesyst"):
        na.Mongo().log_metric("loss", 0, 1.0)


def test_the_original_dict_api_and_the_server_calls_that_only_log():
    logged = []
    db = na.Mongo({"a": 1, "db_password": "secret"}, logger=lambda *a: logged.append(a))
    db["b"] = 2
    assert db["a"] == 1 and db["b"] == 2 and len(db) == 3
    del db["b"]
    assert len(db) == 2
    db.init()
    db.start(1, x=2)
    db.stop()
    db.login()
    db.debug()
    assert logged[:4] == [("Mongo.init: the database is managed by nemesyst (--db-init); nothing done",)] * 4
    assert logged[4] == ("Mongo state:", {"a": 1})
    assert db.group == (0, 1)


def test_dump_on_ferretdb_1_refuses_what_it_cannot_store():
    db, database = na.Mongo(), FakeDatabase({"ferretdbVersion": "v1.24.2"})
    db.dump("ok", {"a": [1, {"b": 2}]}, db=database)
    assert database["ok"].inserted == [{"a": [1, {"b": 2}]}]
    with pytest.raises(ValueError) as e:
        db.dump("bad", {"x": {"y": float("nan")}}, db=database)
    assert str(e.value) == ("dump 2 into bad: field 'x.y' holds NaN, which the FerretDB server cannot store: store "
                            "missing values as null (None), or use MongoDB (--db-engine mongod), which stores NaN")
    with pytest.raises(ValueError, match=r"^dump 3 into m: field 'metadata.k\.1' has a key that contains '\.'"):
        db.dump("m", ({"k.1": 1}, b"model"), db=database)
    assert database.client.admin.asked == 1  # asked once per connection
    assert database["bad"].inserted == []


def test_dump_elsewhere_stores_anything():
    for info in ({"version": "7.0.0"}, {"ferretdb": {"version": "v2.1.0"}}, pymongo.errors.OperationFailure("no")):
        db, database = na.Mongo(), FakeDatabase(info)
        db.dump("c", {"x": float("nan")}, db=database)
        assert len(database["c"].inserted) == 1


@pytest.mark.parametrize("value, path, what", [
    ({"a": float("nan")}, "a", "holds NaN"),
    ({"a": float("inf")}, "a", "holds Infinity"),
    ({"a": [0, float("-inf")]}, "a.1", "holds -Infinity"),
    ({"d": bson.Decimal128("1.5")}, "d", "holds a Decimal128"),
    ({"c": bson.Code("f()")}, "c", "holds JavaScript code"),
    ({"m": bson.MinKey()}, "m", "holds MinKey"),
    ({"m": bson.MaxKey()}, "m", "holds MaxKey"),
    ({"n": [1, [2]]}, "n.1", "is an array inside an array (a nested array)"),
    ({"n": ({"x": [[1]]},)}, "n.0.x.0", "is an array inside an array (a nested array)"),
    ({"s": {"$set": 1}}, "s.$set", "has a key that starts with '$'"),
    ({"s": {"a.b": 1}}, "s.a.b", "has a key that contains '.'"),
])
def test_unstorable_values_are_found_with_their_path(value, path, what):
    found = na._unstorable(value, [])
    assert found is not None and ".".join(found.path) == path and found.what == what
    assert "MongoDB" in found.fix and "--db-engine mongod" in found.fix


def test_storable_values_pass():
    ok = {"a": 1.5, "b": [1, {"c": [2, 3]}], "d": None, "e": "x.y", "f": b"$", "g": datetime.datetime(2020, 1, 1),
          "h": {"i": {"j": -0.0}}, "_id": bson.ObjectId()}
    assert na._unstorable(ok, []) is None


@pytest.mark.parametrize("info, one", [
    ({"ferretdbVersion": "v1.24.2"}, True),
    ({"ferretdbVersion": "1.0"}, True),
    ({"ferretdbVersion": "dev"}, True),
    ({"ferretdbVersion": "v2.0.0"}, False),
    ({"ferretdb": {"version": "v2.0.0"}}, False),
    ({"ferretdb": {}}, False),
    ({"ferretdb": {"version": "v1.9"}}, True),
    ({"version": "7.0.2"}, False),
    ({}, False),
])
def test_ferretdb_1_is_told_by_its_build_info(info, one):
    assert na._is_ferretdb_1(info) is one


# --- checkpoints: what is checked before the store -------------------------------------------------------------------

def test_checkpoint_key(monkeypatch):
    assert na._checkpoint_key({}) == "learn-0"
    assert na._checkpoint_key({"NEMESYST_STAGE": "clean", "NEMESYST_POSITION": "3"}) == "clean-3"
    monkeypatch.setenv("NEMESYST_POSITION", "2")
    assert na.Mongo()._checkpoint_key() == "learn-2"


@pytest.mark.parametrize("args, keep", [
    ({}, 2), ({"dl_checkpoint_keep": [5]}, 5), ({"dl_checkpoint_keep": 4}, 4), ({"dl_checkpoint_keep": [0]}, 1),
    ({"dl_checkpoint_keep": [3, 7], "process": 1}, 7), ({"dl_checkpoint_keep": [3, 7], "process": 5}, 7),
    ({"dl_checkpoint_keep": [3, 7], "process": 0}, 3),
])
def test_checkpoint_keep(args, keep):
    assert na._checkpoint_keep(args) == keep
    assert na.Mongo(args)._checkpoint_keep() == keep


@pytest.mark.parametrize("step, metadata, message", [
    (-1, None, "save_checkpoint: step must be a whole number >= 0, got -1"),
    (1.5, None, "got 1.5"),
    (True, None, "got True"),
    ("3", None, "got '3'"),
    (1, [1], "save_checkpoint: metadata must be a dict or None"),
])
def test_bad_checkpoint_arguments_are_refused_first(step, metadata, message):
    flushed = []
    with pytest.raises(ValueError) as e:
        na.Mongo(on_flush=lambda: flushed.append(1)).save_checkpoint(b"x", step, metadata)
    assert message in str(e.value)
    assert flushed == []


def test_only_member_0_stores_but_every_member_flushes(monkeypatch):
    flushed = []
    monkeypatch.setenv("NEMESYST_GROUP_RANK", "1")
    monkeypatch.setenv("NEMESYST_GROUP_SIZE", "2")
    assert na.Mongo(on_flush=lambda: flushed.append(1)).save_checkpoint(b"x", 1) is None
    assert flushed == [1]


def test_a_checkpoint_needs_a_run():
    flushed = []
    with pytest.raises(RuntimeError, match=r"save_checkpoint: no run \(NEMESYST_RUN_ID is not set\)"):
        na.Mongo(on_flush=lambda: flushed.append(1)).save_checkpoint(b"x", 0, {"a": 1})
    assert flushed == [1]


def test_the_driver_draws_on_a_random_of_its_own():
    import random
    import pymongo.topology
    na.Mongo._checkpoint_own_random()
    if hasattr(pymongo.topology, "random"):
        assert pymongo.topology.random is na.Mongo._driver_random
        assert pymongo.topology.random is not random
    state = random.getstate()
    na.Mongo._driver_random.random()
    assert random.getstate() == state


def test_a_requested_checkpoint_is_the_stop_file(monkeypatch, tmp_path):
    db = na.Mongo()
    assert db.checkpoint_requested() is False
    monkeypatch.setenv("NEMESYST_STOP_FILE", str(tmp_path / "stop"))
    assert db.checkpoint_requested() is False
    (tmp_path / "stop").touch()
    assert db.checkpoint_requested() is True


# --- GridFS: the chunk reader's checks -----------------------------------------------------------------------------

class FakeChunks:
    """A chunks collection: find() answers the chunks of one file from n on, failing as told."""

    def __init__(self, chunks, fail=None):
        self.chunks = chunks
        self.fail = fail  # an exception raised by the first read of the first cursor
        self.finds = []

    def find(self, query, sort=None, batch_size=None):
        assert sort == [("n", 1)] and batch_size >= 1
        self.finds.append((query, batch_size))
        selected = [c for c in self.chunks if c["files_id"] == query["files_id"] and c["n"] >= query["n"]["$gte"]]
        fail, self.fail = self.fail, None
        return FakeChunkCursor(selected, fail)


class FakeChunkCursor:
    def __init__(self, chunks, fail):
        self.chunks, self.fail, self.closed = iter(chunks), fail, False

    def __iter__(self):
        return self

    def __next__(self):
        if self.fail is not None:
            raise self.fail
        return next(self.chunks)

    def close(self):
        self.closed = True


@pytest.fixture
def database():
    """A real pymongo Database (GridOut checks its type) that is never connected."""
    client = pymongo.MongoClient("mongodb://127.0.0.1:9/", connect=False, serverSelectionTimeoutMS=1)
    yield client["fake"]
    client.close()


def grid(database, data, chunk_size=4, chunks=None, fail=None, file_id=11):
    if chunks is None:
        chunks = [{"files_id": file_id, "n": n, "data": data[o:o + chunk_size]}
                  for n, o in enumerate(range(0, len(data), chunk_size))]
    fake = FakeChunks(chunks, fail)

    class Grid(na.BoundedGridOut):
        def chunks_collection(self):
            return fake

    g = Grid(database, "models", {"_id": file_id, "length": len(data), "chunkSize": chunk_size,
                                  "metadata": {"m": 1}})
    return g, fake


def test_chunk_arithmetic():
    assert [na._chunk_count(n, 4) for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
    assert [na._chunk_length(10, 4, n) for n in range(3)] == [4, 4, 2]
    assert na._chunk_count(10.0, 4.0) == 3


@pytest.mark.parametrize("value, whole", [(3, True), (3.0, True), (3.5, False), (True, False), ("3", False),
                                          (None, False), (Int64(5), True)])
def test_whole(value, whole):
    assert na._whole(value) is whole


def test_a_model_reads_whole_in_pieces_and_by_line(database):
    data = b"line one\nline two\nend"
    g, fake = grid(database, data)
    assert g.file_id == 11 and g.metadata == {"m": 1} and g.length == len(data)
    assert g.read(3) == b"lin" and g.tell() == 3
    assert g.readline() == b"e one\n"
    assert g.readline(4) == b"line"
    assert g.readchunk() == b" tw"  # the rest of chunk 4 (bytes 16..19)
    assert g.read() == b"o\nend" and g.read() == b""
    assert g.seek(-3, os.SEEK_END) == len(data) - 3 and g.read() == b"end"
    assert g.seek(5) == 5 and g.read(4) == b"one\n"
    assert fake.finds[-1][0] == {"files_id": 11, "n": {"$gte": 1}}  # reopened at the chunk holding the position
    assert g.seek(2, os.SEEK_CUR) == 11 and g.read(1) == b"n"
    assert b"".join(iter(g)) == data
    g.seek(0)
    assert g.read() == data
    with pytest.raises(OSError, match="whence"):
        g.seek(0, 7)
    with pytest.raises(OSError, match="must be positive"):
        g.seek(-1)
    assert fake.finds[0][1] == na.REPLY_BYTES // (4 + na.CHUNK_OVERHEAD)


def test_an_empty_model(database):
    g, _ = grid(database, b"")
    assert g.read() == b"" and list(g) == [] and g.readchunk() == b""


def chunk(n, data):
    return {"files_id": 11, "n": n, "data": data}


@pytest.mark.parametrize("chunks, message", [
    ([chunk(0, b"abcd")], "chunk 1 of 2 is missing"),
    ([chunk(0, b"abcd"), chunk(2, b"ef")], r"chunk 1 is missing \(found n=2\)"),
    ([chunk(0, b"abc"), chunk(1, b"ef")], "chunk 0 has 3 bytes, not 4"),
    ([chunk(0, b"abcd"), chunk(1, "ef")], "chunk 1 has no binary bytes, not 2"),
    ([chunk(0, b"abcd"), chunk(1, b"ef"), chunk(2, b"zz")], r"extra chunk n=2 after the last one \(1\)"),
])
def test_a_corrupt_model_is_refused_naming_it(database, chunks, message):
    g, _ = grid(database, b"abcdef", chunks=chunks)
    with pytest.raises(gridfs.errors.CorruptGridFile, match=r"^cannot read model 11 from GridFS bucket fake\.models: "
                                                            + message):
        g.read()


def test_an_empty_extra_chunk_is_allowed(database):
    chunks = [{"files_id": 11, "n": 0, "data": b"abcd"}, {"files_id": 11, "n": 1, "data": b"ef"},
              {"files_id": 11, "n": 2, "data": b""}]
    g, _ = grid(database, b"abcdef", chunks=chunks)
    assert g.read() == b"abcdef"


def test_a_cursor_the_server_dropped_is_reopened_once(database):
    g, fake = grid(database, b"abcdef", fail=pymongo.errors.CursorNotFound("gone"))
    assert g.read() == b"abcdef"
    assert len(fake.finds) == 2


def test_a_driver_error_is_a_model_read_error_with_its_cause(database):
    cause = pymongo.errors.AutoReconnect("connection closed")
    g, _ = grid(database, b"abcdef", fail=cause)
    with pytest.raises(na.ModelReadError, match="reading chunk 0 failed: connection closed") as e:
        g.read()
    assert e.value.__cause__ is cause
    assert isinstance(e.value, gridfs.errors.GridFSError)


def test_open_checks_the_files_document(database):
    class Db:
        name = "fake"

        def __init__(self, files):
            self.files = files

        def __getitem__(self, name):
            return self.files if name.endswith(".files") else database[name]

    files = FakeCollection([{"_id": 1, "length": 3, "chunkSize": 2.0}, {"_id": 2, "length": -1, "chunkSize": 4},
                            {"_id": 3, "length": 3, "chunkSize": 0}, {"_id": 4, "length": 1.5, "chunkSize": 4}])
    g = na.BoundedGridOut.open(Db(files), "models", 1)
    assert g.file_id == 1 and g.chunk_count() == 2 and g.chunk_length(1) == 1
    with pytest.raises(gridfs.errors.NoFile, match=r"^no model 9 in GridFS bucket fake\.models$"):
        na.BoundedGridOut.open(Db(files), "models", 9)
    for bad in (2, 3, 4):
        with pytest.raises(gridfs.errors.CorruptGridFile, match="no valid length and chunkSize"):
            na.BoundedGridOut.open(Db(files), "models", bad)

    class Failing:
        def find_one(self, query):
            raise pymongo.errors.ServerSelectionTimeoutError("no server")

    with pytest.raises(na.ModelReadError, match=r"^cannot read model 1 in GridFS bucket fake\.models: no server"):
        na.BoundedGridOut.open(Db(Failing()), "models", 1)


def test_get_files_adds_a_gridout_and_reports_the_model_used(database, monkeypatch):
    opened, used = [], []
    monkeypatch.setattr(na.BoundedGridOut, "open", classmethod(lambda cls, db, bucket, i: opened.append((bucket, i))
                                                                or "grid%d" % i))
    db = na.Mongo({"db_collection_name": "models"}, on_model_used=lambda *a: used.append(a))
    batches = list(db.GetFiles(db_batch_size=2, db_data_cursor=iter([{"_id": 1}, {"_id": 2}, {"_id": 3}]),
                               db=FakeDatabase()))
    assert batches == [[{"_id": 1, "gridout": "grid1"}, {"_id": 2, "gridout": "grid2"}],
                       [{"_id": 3, "gridout": "grid3"}]]
    assert opened == used == [("models", 1), ("models", 2), ("models", 3)]


# --- args, secrets, scripts ----------------------------------------------------------------------------------------

def test_build_args_from_the_options_file_and_the_environment(tmp_path):
    options = tmp_path / "args.json"
    options.write_text('{"dl-epochs": [{"$numberLong": "2"}, 3], "db-name": "n", "dl_batch_size": 5}')
    args = na.build_args({"NEMESYST_ARGS_FILE": str(options), "NEMESYST_POSITION": "1", "NEMESYST_STAGE": "learn",
                          "NEMESYST_RUN_ID": "r1", "NEMESYST_RANK": "2", "NEMESYST_WORKDIR": "/w",
                          "NEMESYST_INPUT_MODEL": "/m", "NEMESYST_INPUT_MODEL_ID": "id",
                          "NEMESYST_GROUP_RANK": "1", "NEMESYST_GROUP_SIZE": "4"})
    assert args == {"dl_epochs": [2, 3], "db_name": "n", "dl_batch_size": 5, "process": 1, "stage": "learn",
                    "run_id": "r1", "rank": 2, "workdir": "/w", "input_model": "/m", "input_model_id": "id",
                    "group_rank": 1, "group_size": 4}
    assert args["dl_epochs"][args["process"]] == 3


def test_build_args_defaults_and_the_process_environment(monkeypatch):
    assert na.build_args({}) == {"process": 0, "stage": None, "run_id": None, "rank": 0, "workdir": None,
                                 "input_model": None, "input_model_id": None, "group_rank": 0, "group_size": 1}
    monkeypatch.setenv("NEMESYST_POSITION", "4")
    assert na.build_args()["process"] == 4


def test_a_secret_is_read_from_its_descriptor_and_closed():
    r, w = os.pipe()
    os.write(w, "pässword\n".encode())
    os.close(w)
    assert na._read_fd("V", {"V": str(r)}) == "pässword\n"
    with pytest.raises(OSError):
        os.fstat(r)  # closed
    assert na._read_fd("V", {}) is None and na._read_fd("V", {"V": ""}) is None
    r, w = os.pipe()
    os.close(r)
    try:
        assert na._read_fd("V", {"V": str(w)}) is None  # a write end cannot be read
    finally:
        with pytest.raises(OSError):
            os.close(w)  # closed all the same


def test_a_secret_is_read_once(monkeypatch):
    r, w = os.pipe()
    os.write(w, b"s3")
    os.close(w)
    monkeypatch.setattr(na, "_SECRETS", {})
    monkeypatch.setenv("NEMESYST_TEST_FD", str(r))
    assert na._read_password("NEMESYST_TEST_FD") == "s3"
    assert na._read_password("NEMESYST_TEST_FD") == "s3"  # the descriptor is closed: from the cache


def test_same_named_scripts_stay_distinct_and_find_their_helpers(tmp_path):
    paths = []
    for folder, value in (("a", 1), ("b", 2)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"helper_{folder}.py").write_text(f"VALUE = {value}\n")
        (tmp_path / folder / "cleaner.py").write_text(f"from helper_{folder} import VALUE\n")
        paths.append(str(tmp_path / folder / "cleaner.py"))
    saved = list(sys.path)
    try:
        a, b = na.load_script(paths[0]), na.load_script(paths[1])
        assert (a.VALUE, b.VALUE) == (1, 2)
        assert a.__name__ != b.__name__ and a.__name__ == na._module_name(paths[0])
        assert a.__name__.startswith("nemesyst_script_") and len(a.__name__) == len("nemesyst_script_") + 16
        assert sys.modules[a.__name__] is a
        assert sys.path[0] == str(tmp_path / "b")
    finally:
        sys.path[:] = saved


def test_an_entry_point_must_be_callable(tmp_path):
    module = type(sys)("m")
    module.main, module.other = (lambda **kw: kw), 3
    assert na._entry_point(module, "s.py", "main")(a=1) == {"a": 1}
    with pytest.raises(AttributeError, match=r"^s\.py has no entry point other\(\)$"):
        na._entry_point(module, "s.py", "other")
    with pytest.raises(AttributeError, match=r"has no entry point absent\(\)"):
        na._entry_point(module, "s.py", "absent")


def test_what_an_entry_point_returns_or_yields(tmp_path):
    out, w = writer(tmp_path)
    na._give(w, {"one": 1})
    na._give(w, None)
    na._give(w, (d for d in [{"two": 2}, None, {"three": 3}]))
    na._give(w, [{"four": 4}])
    assert decode_items(out.getvalue()) == [{"one": 1}, {"two": 2}, {"three": 3}, {"four": 4}]


# --- code lineage -----------------------------------------------------------------------------------------------------

def test_code_lineage_lists_the_scripts_own_modules_and_the_installed_packages(tmp_path):
    mine = tmp_path / "mine.py"
    mine.write_text("X = 1\n")
    fake = type(sys)("mine")
    fake.__file__ = str(mine)
    gone = type(sys)("gone")
    gone.__file__ = str(tmp_path / "gone.py")
    this = type(sys)("adapter")
    this.__file__ = na.__file__
    main = type(sys)("__main__")
    main.__file__ = str(mine)
    modules = {"mine": fake, "gone": gone, "adapter": this, "__main__": main, "json": sys.modules["json"],
               "pymongo.collection": sys.modules["pymongo.collection"], "builtins": sys.modules["builtins"]}
    code = na._code_lineage(modules)
    assert code["modules"] == [{"name": "mine", "path": os.path.realpath(mine),
                                "sha256": hashlib.sha256(b"X = 1\n").hexdigest()}]
    assert code["packages"] == {"pymongo": pymongo.version}
    assert code["python"] == "%d.%d.%d" % sys.version_info[:3]
    mine.write_text("X = 2\n")  # a changed file: a new sha256
    assert na._code_lineage(modules)["modules"][0]["sha256"] == hashlib.sha256(b"X = 2\n").hexdigest()


def test_code_lineage_leaves_out_a_module_of_the_interpreters_library_linked_from_elsewhere(tmp_path, monkeypatch):
    # Debian's sitecustomize.py: in the interpreter's library, a link to /etc/python3.X
    lib, etc = tmp_path / "stdlib", tmp_path / "etc"
    lib.mkdir()
    etc.mkdir()
    (etc / "sitecustomize.py").write_text("X = 1\n")
    (lib / "sitecustomize.py").symlink_to(etc / "sitecustomize.py")
    (etc / "mine.py").write_text("Y = 1\n")
    real_paths = na.sysconfig.get_paths()
    monkeypatch.setattr(na.sysconfig, "get_paths", lambda: dict(real_paths, stdlib=str(lib), platstdlib=str(lib)))
    site, mine = type(sys)("sitecustomize"), type(sys)("mine")
    site.__file__, mine.__file__ = str(lib / "sitecustomize.py"), str(etc / "mine.py")
    code = na._code_lineage({"sitecustomize": site, "mine": mine})
    assert [m["name"] for m in code["modules"]] == ["mine"]


def test_code_lineage_leaves_out_the_adapter_itself():
    assert all(m["path"] != os.path.realpath(na.__file__) for m in na._code_lineage()["modules"])


# --- a whole run over a pipe, as the host runs it ---------------------------------------------------------------------

def run_script(tmp_path, monkeypatch, body, entry=None):
    script = tmp_path / "stage.py"
    script.write_text(textwrap.dedent(body))
    r, w = os.pipe()
    monkeypatch.setenv("NEMESYST_ITEM_FD", str(w))
    monkeypatch.setenv("NEMESYST_WORKDIR", str(tmp_path))
    monkeypatch.setenv("NEMESYST_POSITION", "0")
    monkeypatch.setenv("NEMESYST_STAGE", "learn")
    if entry:
        monkeypatch.setenv("NEMESYST_ENTRY_POINT", entry)
    saved = list(sys.path)
    try:
        rc = na.main(["nemesyst_adapter.py", str(script)])
    finally:
        sys.path[:] = saved
        with pytest.raises(OSError):
            os.close(w)  # the adapter closed it, on success and on failure
    with os.fdopen(r, "rb") as f:
        return rc, decode_items(f.read())


def test_run_gives_the_items_then_the_end(tmp_path, monkeypatch, capsys):
    rc, items = run_script(tmp_path, monkeypatch, """
        def main(args, db):
            print("progress", args["process"], args["stage"])
            db.log_metric("loss", 0, 0.5)
            yield {"doc": 1}
            yield None
            yield {"epochs": 1}, b"model bytes"
    """)
    assert rc == 0
    assert capsys.readouterr().out == "progress 0 learn\n"
    kinds = [next(iter(i)) for i in items]
    assert kinds == ["$nemesyst_metric", "doc", "$nemesyst_code", "$nemesyst_model", "$nemesyst_end"]
    assert items[-1] == {"$nemesyst_end": {"items": 4}}
    model = items[3]["$nemesyst_model"]
    with open(model["path"], "rb") as f:
        assert f.read() == b"model bytes"
    assert any(m["path"] == os.path.realpath(tmp_path / "stage.py") for m in items[2]["$nemesyst_code"]["modules"])


def test_run_of_another_entry_point_returning_one_document(tmp_path, monkeypatch):
    rc, items = run_script(tmp_path, monkeypatch, """
        def train(**kwargs):
            return {"keys": sorted(kwargs)}
    """, entry="train")
    assert rc == 0 and items == [{"keys": ["args", "db"]}, {"$nemesyst_end": {"items": 1}}]


@pytest.mark.parametrize("body, error", [
    ("def main(args, db):\n    yield {'a': 1}\n    raise KeyError('boom')\n", "KeyError: 'boom'"),
    ("import sys\ndef main(args, db):\n    sys.exit(0)\n", "SystemExit: 0"),
    ("def main(args, db):\n    yield [1]\n", "TypeError: a stage script yields dicts"),
    ("x = 1\n", "has no entry point main()"),
    ("def main(args, db):\n    db.getCursor(db_pipeline={'$match': {}})\n", "ValueError: getCursor: db_pipeline"),
])
def test_a_failing_script_is_exit_1_with_its_traceback_and_no_end(tmp_path, monkeypatch, capsys, body, error):
    rc, items = run_script(tmp_path, monkeypatch, body)
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("<3>Traceback (most recent call last):\n") and error in err
    assert all(line.startswith("<3>") for line in err.splitlines())
    assert not any("$nemesyst_end" in i for i in items)


def test_main_needs_one_script(capsys):
    assert na.main(["adapter"]) == 2
    assert capsys.readouterr().err == "usage: adapter SCRIPT.py (run by nemesyst)\n"
