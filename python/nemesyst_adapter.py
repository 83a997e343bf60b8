#!/usr/bin/python3
"""Runs one original-style Nemesyst Python stage script for the C host.

Usage (by the runner, src/stage/runner.h): python3 nemesyst_adapter.py SCRIPT.py

The script is loaded by path under a module name unique to that path (two scripts called cleaner.py in different
folders stay distinct), its directory first on sys.path so its own helper modules are found, and its entry point
(NEMESYST_ENTRY_POINT, default main) is called as main(args=args, db=db), as Nemesyst 2.0.6 did:

  args  the resolved options as the original's dict: option names with '_' (args["dl_epochs"][args["process"]]),
        per-script options as lists, plus "process" (this script's position), "stage", "run_id", "rank",
        "workdir", "input_model" (path of the model to retrain, or None) and "input_model_id".
  db    a Mongo object with the original's API on pymongo: connect, dump, getCursor, getBatches (never an empty
        last batch), getFiles / GetFiles (batches of dicts with a "gridout", a GridOut whose chunks are read in
        replies sized by bytes, so models of any size can be read).

What the entry point yields (or returns) goes back to the host as BSON on the pipe NEMESYST_ITEM_FD, not stdout
(print() output is logged): a dict is a document; a (metadata, data) tuple is a model, written to a file in
NEMESYST_WORKDIR and announced with {"$nemesyst_model": {"path", "metadata", "temp": true}}; None is skipped.
Documents read through getCursor/getBatches are counted and hashed (sha256 over each document's BSON bytes, in
order); each cursor read to its end is reported once as {"$nemesyst_consumed": {...}} so the host can record in a
model's metadata the data it was trained on. An exception fails the script: traceback in the log, exit status 1.
"""

import atexit
import collections.abc
import datetime
import hashlib
import importlib.util
import io
import itertools
import os
import sys
import tempfile
import traceback

import bson
import gridfs
import gridfs.errors
import pymongo
import pymongo.errors
from bson import json_util
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

MARKER_MODEL = "$nemesyst_model"
MARKER_CONSUMED = "$nemesyst_consumed"
MARKER_END = "$nemesyst_end"
MARKER_METRIC = "$nemesyst_metric"
MARKER_CODE = "$nemesyst_code"


def _log(level, text):
    """One or more lines to the host log at an sd-daemon level (3 error, 4 warn, 6 info, 7 debug)."""
    for line in str(text).splitlines() or [""]:
        sys.stderr.write("<%d>%s\n" % (level, line))
    sys.stderr.flush()



def _check_pipeline(pipeline):
    """MongoDB's rule for a pipeline: a list of stage documents, each with one field that names a stage ('$...').
    Anything else is refused here with a clear error rather than by the server or the connection."""
    if not isinstance(pipeline, (list, tuple)):
        raise ValueError("getCursor: db_pipeline must be a list of stage documents such as [{\"$match\": {}}], "
                         "got %s" % type(pipeline).__name__)
    for n, stage in enumerate(pipeline):
        if not isinstance(stage, collections.abc.Mapping) or len(stage) != 1:
            raise ValueError("getCursor: db_pipeline stage %d is not a document with one field" % n)
        name = next(iter(stage))
        if not isinstance(name, str) or not name.startswith("$"):
            raise ValueError("getCursor: db_pipeline stage %d %r does not name a stage (its field must start with "
                             "'$')" % (n, name))
    return list(pipeline)

_SHA_CACHE = {}


def _sha256_of(path):
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def _code_lineage():
    """{modules: [{name, path, sha256}], packages: {name: version}, python: version} of the modules imported so far
    (the adapter itself and the interpreter's own library left out; installed packages by version)."""
    import importlib.metadata
    import sysconfig
    roots = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib") if sysconfig.get_paths().get(k)}
    installed = {os.path.realpath(p) for p in sys.path if p and ("site-packages" in p or "dist-packages" in p)}
    for k in ("purelib", "platlib"):
        if sysconfig.get_paths().get(k):
            installed.add(os.path.realpath(sysconfig.get_paths()[k]))
    this = os.path.realpath(__file__)
    modules, packages = [], {}
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or name == "__main__":
            continue
        real = os.path.realpath(path)
        if real == this or not os.path.isfile(real):
            continue
        if any(real.startswith(r + os.sep) for r in installed):
            top = name.split(".")[0]
            if top not in packages:
                try:
                    packages[top] = importlib.metadata.version(top)
                except Exception:
                    version = getattr(sys.modules.get(top), "__version__", None)
                    if isinstance(version, str):
                        packages[top] = version
            continue
        if any(real.startswith(r + os.sep) for r in roots):
            continue
        try:
            modules.append({"name": name, "path": real, "sha256": _sha256_of(real)})
        except OSError:
            continue
    return {"modules": modules, "packages": packages, "python": "%d.%d.%d" % sys.version_info[:3]}


class ItemWriter(object):
    """BSON items to the host over the inherited pipe."""

    def __init__(self, fd, workdir):
        self._out = os.fdopen(fd, "wb", buffering=1 << 16)
        self._items = 0
        self._workdir = workdir or tempfile.gettempdir()
        self._reported = set()

    def document(self, doc):
        self._out.write(bson.BSON.encode(doc))
        self._items += 1

    def model(self, metadata, data):
        self.code()
        fd, path = tempfile.mkstemp(prefix="model-", dir=self._workdir)
        with os.fdopen(fd, "wb") as f:
            _write_model_data(f, data)
        self.document({MARKER_MODEL: {"path": path, "metadata": dict(metadata or {}), "temp": True}})

    def code(self):
        """What the script really ran, announced before each model (once per change): every module it imported
        from outside the interpreter's own library and installed packages, with its sha256; the versions of the
        installed packages it imported; the interpreter's version. The host keeps it in the model's lineage and
        nemesyst-registry verify checks it."""
        code = _code_lineage()
        if code != getattr(self, "_code_sent", None):
            self._code_sent = code
            self.document({MARKER_CODE: code})

    def consumed(self, collection, pipeline, count, digest, complete):
        key = (collection, digest, complete)
        if key in self._reported:  # several epochs over the same data: one record
            return
        self._reported.add(key)
        self.document({MARKER_CONSUMED: {"collection": collection, "pipeline": list(pipeline or []),
                                         "count": bson.int64.Int64(count), "digest": digest,
                                         "complete": complete}})

    def model_used(self, bucket, file_id):
        """A predictor loaded a model: the host makes its later predictions reference it."""
        self.document({MARKER_CONSUMED: {"collection": bucket + ".files", "count": bson.int64.Int64(1),
                                         "model": {"bucket": bucket, "id": file_id}}})

    def metric(self, name, step, value):
        """A metric while the script runs: the host stores it in nemesyst_metrics (in bulk)."""
        if not isinstance(name, str) or not 0 < len(name.encode()) <= 128:
            raise ValueError("a metric name is a string of 1-128 bytes, not %r" % (name,))
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError("a metric step is a whole number >= 0, not %r" % (step,))
        self.document({MARKER_METRIC: {"name": name, "step": bson.int64.Int64(step), "value": float(value),
                                       "t": datetime.datetime.now(datetime.timezone.utc)}})

    def item(self, item):
        if item is None:
            return
        if isinstance(item, dict):
            self.document(item)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], dict):
            self.model(item[0], item[1])
        else:
            raise TypeError("a stage script yields dicts (documents), (metadata, data) tuples (models) or None, "
                            "not %s" % type(item).__name__)

    def end(self):
        """The end-of-output record: without it the host fails the script (it ended before its output was complete,
        e.g. through os._exit), so nothing still buffered can be lost behind exit status 0."""
        self._out.write(bson.BSON.encode({MARKER_END: {"items": bson.int64.Int64(self._items)}}))
        self._out.flush()

    def close(self):
        self._out.close()


def _write_model_data(f, data):
    """GridFS put() in the original took bytes, str or a file-like object: so do we."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        f.write(data)
    elif isinstance(data, str):
        f.write(data.encode("utf-8"))
    elif hasattr(data, "read"):
        while True:
            chunk = data.read(1 << 20)
            if not chunk:
                break
            f.write(chunk if isinstance(chunk, bytes) else chunk.encode("utf-8"))
    else:
        raise TypeError("model data must be bytes, str or a file-like object, not %s" % type(data).__name__)


# Cursor replies are sized by bytes, not by a document count: after the first reply (the server's default size), the
# cursor asks for about this many bytes per reply, from the documents' mean size, which keeps the round trips few
# for small documents and every reply far below the 16 MiB message limit for large ones.
REPLY_BYTES = 4 * 1024 * 1024
REPLY_DOCS_MAX = 100000
# Documents are decoded and hashed this many at a time: one C call each, whatever the batch size a script asks for.
DECODE_CHUNK = 256


class TrackedCursor(object):
    """An aggregation cursor that hands out plain dicts while hashing the raw BSON of what it hands out.

    The cursor yields raw documents (RawBSONDocument); a chunk of them is joined, hashed in one piece and decoded in
    one call (bson.decode_all), so the lineage digest (sha256 over every handed-out document's BSON bytes, in order,
    as the C batch API computes it) costs no Python-level decoding or hashing per document."""

    def __init__(self, cursor, collection, pipeline, on_end):
        self._cursor = cursor
        self._collection = collection
        self._pipeline = pipeline
        self._on_end = on_end
        self._sha = hashlib.sha256()
        self._count = 0
        self._ended = False
        self._raws = []      # the current chunk, raw
        self._docs = []      # the same, decoded
        self._next = 0       # the first not handed out yet
        self._sized = False

    def __iter__(self):
        return self

    def _fill(self):
        """Makes the current chunk hold a document not handed out yet; False at the end."""
        if self._next < len(self._docs):
            return True
        if self._ended:
            return False
        self._sha.update(b"".join(r.raw for r in self._raws))  # all of the previous chunk was handed out
        self._raws = list(itertools.islice(self._cursor, DECODE_CHUNK))
        if not self._raws:
            self._docs, self._next = [], 0
            self._end(True)
            return False
        if not self._sized:
            self._sized = True
            per = max(1, sum(len(r.raw) for r in self._raws) // len(self._raws))
            self._cursor.batch_size(max(1, min(REPLY_DOCS_MAX, REPLY_BYTES // per)))
        self._docs = bson.decode_all(b"".join(r.raw for r in self._raws))
        self._next = 0
        return True

    def __next__(self):
        if not self._fill():
            raise StopIteration
        doc = self._docs[self._next]
        self._next += 1
        self._count += 1
        return doc

    next = __next__

    def take(self, n):
        """Up to n documents as a list (fewer only at the end; empty at the end)."""
        out = []
        while len(out) < n and self._fill():
            k = min(n - len(out), len(self._docs) - self._next)
            out.extend(self._docs[self._next:self._next + k])
            self._next += k
            self._count += k
        return out

    def _handed(self):
        """The bytes of the current chunk's documents handed out so far."""
        return b"".join(r.raw for r in self._raws[:self._next])

    def _end(self, complete):
        if not self._ended:
            self._ended = True
            if not complete:
                self._sha.update(self._handed())
            self._raws, self._docs, self._next = [], [], 0
            self._on_end(self._collection, self._pipeline, self._count, self._sha.hexdigest(), complete)

    @property
    def count(self):
        return self._count

    def digest(self):
        sha = self._sha.copy()
        sha.update(self._handed())
        return sha.hexdigest()

    def close(self):
        self._cursor.close()

    @property
    def alive(self):
        return self._next < len(self._docs) or self._cursor.alive

    def __getattr__(self, name):  # batch_size, ... of the pymongo cursor
        return getattr(self._cursor, name)


# GridFS chunks are read in replies of about REPLY_BYTES too, as the host reads them (src/store/gridfs.c). pymongo's
# own GridOut opens its chunks cursor without a batch size, so the server picks one by document count: a 255 KiB chunk
# times FerretDB's 250 per getMore is a 65 MB reply, over pymongo's 48 MB message limit, and a 200 MB model cannot be
# read at all (mongod caps its replies at 16 MiB, but nothing in the protocol obliges a server to).
CHUNK_OVERHEAD = 128  # a chunk document's fields besides its data, generously


class ModelReadError(gridfs.errors.GridFSError):
    """Reading a stored model failed in the driver or the server: the message names the model and its bucket and
    quotes the driver's; the driver's exception is the __cause__."""


def _whole(value):
    """An integral number: files documents written by old drivers and shells may hold length as a double."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


class _Chunks(object):
    """The chunks of one GridFS file from chunk number `first` on, as bytes, checked as they come (GridFS
    specification): n contiguous from `first`, each exactly as long as the file's length implies, none missing and
    none extra at the end. A cursor the server dropped between reads (10 idle minutes) is reopened where it was."""

    def __init__(self, grid, first):
        self._grid = grid
        self._next = first
        self._count = grid.chunk_count()
        self._cursor = None

    def _open(self):
        per_reply = max(1, REPLY_BYTES // (int(self._grid.chunk_size) + CHUNK_OVERHEAD))
        self._cursor = self._grid.chunks_collection().find(
            {"files_id": self._grid.file_id, "n": {"$gte": self._next}}, sort=[("n", 1)], batch_size=per_reply)

    def _fetch(self):
        """The next chunk document, or None at the end of the cursor."""
        for attempt in (0, 1):
            if self._cursor is None:
                self._open()
            try:
                return next(self._cursor, None)
            except pymongo.errors.CursorNotFound:
                self.close()
                if attempt:
                    raise
        return None

    def __iter__(self):
        return self

    def __next__(self):
        try:
            chunk = self._fetch()
        except pymongo.errors.PyMongoError as e:
            self.close()
            raise self._grid.error(ModelReadError, "reading chunk %d failed: %s" % (self._next, e)) from e
        if self._next >= self._count:
            self.close()
            if chunk is not None and len(chunk.get("data") or b""):  # empty extra chunks are allowed by the spec
                raise self._grid.error(gridfs.errors.CorruptGridFile, "extra chunk n=%r after the last one (%d)"
                                       % (chunk.get("n"), self._count - 1))
            raise StopIteration
        if chunk is None:
            self.close()
            raise self._grid.error(gridfs.errors.CorruptGridFile, "chunk %d of %d is missing"
                                   % (self._next, self._count))
        if chunk.get("n") != self._next:
            self.close()
            raise self._grid.error(gridfs.errors.CorruptGridFile, "chunk %d is missing (found n=%r)"
                                   % (self._next, chunk.get("n")))
        data = chunk.get("data")
        want = self._grid.chunk_length(self._next)
        if not isinstance(data, bytes) or len(data) != want:
            self.close()
            raise self._grid.error(gridfs.errors.CorruptGridFile, "chunk %d has %s bytes, not %d" % (
                self._next, len(data) if isinstance(data, bytes) else "no binary", want))
        self._next += 1
        return data

    next = __next__

    def close(self):
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None


class BoundedGridOut(gridfs.GridOut):
    """A GridOut (read, readchunk, readline, seek, tell, iteration, the file's fields: metadata, length, ...) that
    reads its chunks through _Chunks: memory holds one reply of chunks at a time, plus what a read asks for."""

    def __init__(self, database, bucket, file_document):
        super(BoundedGridOut, self).__init__(database[bucket], file_document=file_document)
        self._database = database
        self._bucket = bucket
        self._reader = None     # chunks from the one holding the position on
        self._pending = b""     # the rest of the last chunk read, not handed out yet
        self._offset = 0        # how much of _pending was handed out
        self._position = 0

    @classmethod
    def open(cls, database, bucket, file_id):
        """The model file_id of bucket; NoFile when there is none, ModelReadError when it cannot be read."""
        where = "model %r in GridFS bucket %s.%s" % (file_id, database.name, bucket)
        try:
            doc = database[bucket + ".files"].find_one({"_id": file_id})
        except pymongo.errors.PyMongoError as e:
            raise ModelReadError("cannot read %s: %s" % (where, e)) from e
        if doc is None:
            raise gridfs.errors.NoFile("no %s" % where)
        length, size = doc.get("length"), doc.get("chunkSize")
        if not (_whole(length) and length >= 0 and _whole(size) and size > 0):
            raise gridfs.errors.CorruptGridFile("cannot read %s: no valid length and chunkSize (%r, %r)"
                                                % (where, length, size))
        return cls(database, bucket, doc)

    # --- what _Chunks needs ---
    @property
    def file_id(self):
        return self._file["_id"]

    def chunks_collection(self):
        return self._database[self._bucket + ".chunks"]

    def chunk_count(self):
        return (int(self.length) + int(self.chunk_size) - 1) // int(self.chunk_size)

    def chunk_length(self, n):
        return min(int(self.chunk_size), int(self.length) - n * int(self.chunk_size))

    def error(self, kind, why):
        return kind("cannot read model %r from GridFS bucket %s.%s: %s"
                    % (self.file_id, self._database.name, self._bucket, why))

    # --- reading ---
    def _fill(self):
        """Makes _pending hold bytes not handed out yet; False at the end of the file."""
        if self._offset < len(self._pending):
            return True
        if self._position >= int(self.length):
            return False
        if self._reader is None:
            size = int(self.chunk_size)
            self._reader = _Chunks(self, self._position // size)
            self._pending, self._offset = next(self._reader), self._position % size
        else:
            self._pending, self._offset = next(self._reader), 0
        return True

    def _take(self, limit, stop=None):
        """Up to limit bytes of _pending (up to and including stop, when it occurs)."""
        end = min(len(self._pending), self._offset + limit)
        if stop is not None:
            at = self._pending.find(stop, self._offset, end)
            if at >= 0:
                end = at + 1
        piece = self._pending[self._offset:end]
        self._offset = end
        self._position += len(piece)
        return piece

    def _read(self, size, stop=None):
        remainder = int(self.length) - self._position
        if size is None or size < 0 or size > remainder:
            size = remainder
        # Written piece by piece into a BytesIO, whose buffer grows in place and is handed out without a copy:
        # read() of a whole model holds it about once, not twice.
        out, got = io.BytesIO(), 0
        while got < size and self._fill():
            piece = self._take(size - got, stop)
            out.write(piece)
            got += len(piece)
            if stop is not None and piece.endswith(stop):
                break
        if self._position >= int(self.length) and self._reader is not None:
            self._finish()
        return out.getvalue()

    def _finish(self):
        """At the end of the file: checks for extra chunks, then closes the cursor."""
        try:
            next(self._reader)
        except StopIteration:
            pass
        self._reader = None

    def read(self, size=-1):
        return self._read(size)

    def readline(self, size=-1):
        return self._read(size, b"\n")

    def readchunk(self):
        """The rest of the current chunk (empty at the end), as GridOut.readchunk."""
        if not self._fill():
            return b""
        return self._take(len(self._pending))

    def tell(self):
        return self._position

    def seek(self, pos, whence=os.SEEK_SET):
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: int(self.length)}.get(whence)
        if base is None:
            raise IOError(22, "Invalid value for `whence`")
        if base + pos < 0:
            raise IOError(22, "Invalid value for `pos` - must be positive")
        if base + pos != self._position:
            self.close()
            self._position = base + pos
        return self._position

    def __iter__(self):
        """The file's chunks from the first, as bytes (as GridOut's iterator; the position is not used)."""
        return _Chunks(self, 0)

    def close(self):
        if self._reader is not None:
            self._reader.close()
        self._reader, self._pending, self._offset = None, b"", 0


class Mongo(object):
    """The original Nemesyst Mongo handler's script-facing API on pymongo.

    Server management (init, start, stop, login) belongs to the nemesyst host: here those calls only log."""

    def __init__(self, args=None, logger=None):
        self.args = dict(args or {})
        self._log = logger if logger is not None else print
        self._client = None
        self._db = None
        self._cursors = []
        self.on_consumed = None
        self.on_model_used = None
        self.on_metric = None
        shard = os.environ.get("NEMESYST_SHARD")
        self._shard = json_util.loads(shard) if shard and os.environ.get("NEMESYST_GROUP_SIZE") else None
        self._shard_collection = os.environ.get("NEMESYST_SHARD_COLLECTION")

    @property
    def group(self):
        """(rank, size) of this learner in its group (--dl-data-parallel); (0, 1) alone. torch.distributed's
        MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and LOCAL_RANK are set for init_process_group("gloo")."""
        return (int(os.environ.get("NEMESYST_GROUP_RANK", "0")), int(os.environ.get("NEMESYST_GROUP_SIZE", "1")))

    # the original's dict-like magic on its settings
    def __getitem__(self, key):
        return self.args[key]

    def __setitem__(self, key, value):
        self.args[key] = value

    def __delitem__(self, key):
        del self.args[key]

    def __len__(self):
        return len(self.args)

    def debug(self):
        self._log("Mongo state:", {k: v for k, v in self.args.items() if "password" not in k})

    def init(self, *a, **kw):
        self._log("Mongo.init: the database is managed by nemesyst (--db-init); nothing done")

    start = stop = login = init

    def connect(self, db_name=None, **overrides):
        """Connects (once) with the run's URI and the password from the host's pipe; returns the database."""
        if self._db is not None and db_name in (None, self._db.name):
            return self._db
        uri = overrides.get("db_uri") or os.environ.get("NEMESYST_DB_URI") or "mongodb://127.0.0.1:27017/"
        name = db_name or os.environ.get("NEMESYST_DB_NAME") or self.args.get("db_name") or "nemesyst"
        if self._client is None:
            kwargs = {"appname": "nemesyst-python"}
            password = _read_password()
            if password:
                kwargs["password"] = password
            if "tls=true" in uri.lower():
                key_password = _read_password("NEMESYST_TLS_KEY_PASSWORD_FD")
                if key_password:
                    kwargs["tlsCertificateKeyFilePassword"] = key_password
                crl = self.args.get("db_tls_crl_file")
                if crl:
                    kwargs["tlsCRLFile"] = os.path.expanduser(crl)
            self._checkpoint_own_random()  # the driver's random draws never move the script's random state
            self._client = pymongo.MongoClient(uri, **kwargs)
        self._db = self._client[name]
        return self._db

    def _database(self, db):
        return db if db is not None else self.connect()

    def dump(self, db_collection_name, data, db=None):
        """Writes directly, as the original did (no provenance, no rollback): prefer yielding items. On a FerretDB 1.x
        server, a value it cannot store (NaN, +/-Infinity, Decimal128, a nested array, a key with '.' or a leading
        '$', ...) raises ValueError naming the dump and the field, where the server would drop the connection."""
        database = self._database(db)
        self._dumps = getattr(self, "_dumps", 0) + 1
        client = database.client
        if getattr(self, "_ferretdb", (None,))[0] is not client:  # asked once per connection
            try:
                info = client.admin.command("buildInfo")
            except pymongo.errors.PyMongoError:
                info = {}
            version = info.get("ferretdbVersion")
            if version is None and isinstance(info.get("ferretdb"), dict):
                version = info["ferretdb"].get("version") or "v2"
            major = str(version or "").lstrip("vV").split(".")[0]
            self._ferretdb = (client, version is not None and (not major.isdigit() or int(major) < 2))
        mongod = "or use MongoDB (--db-engine mongod), which stores it"

        def unstorable(value, path, in_array):
            if isinstance(value, float):
                if value != value:
                    return path, "holds NaN", ("store missing values as null (None), or use MongoDB "
                                               "(--db-engine mongod), which stores NaN")
                if value in (float("inf"), float("-inf")):
                    return path, "holds %sInfinity" % ("" if value > 0 else "-"), \
                        "store a finite number or None, " + mongod
            elif isinstance(value, bson.Decimal128):
                return path, "holds a Decimal128", "store it as a float or a string, " + mongod
            elif isinstance(value, bson.Code):
                return path, "holds JavaScript code", "store it as a string, " + mongod
            elif isinstance(value, (bson.MinKey, bson.MaxKey)):
                return path, "holds %s" % type(value).__name__, "store another value, " + mongod
            elif isinstance(value, (list, tuple)):
                if in_array:
                    return path, "is an array inside an array (a nested array)", \
                        "store the inner arrays as documents or flatten them, " + mongod
                for i, v in enumerate(value):
                    found = unstorable(v, path + [str(i)], True)
                    if found:
                        return found
            elif isinstance(value, dict) or hasattr(value, "items"):
                for k, v in value.items():
                    if isinstance(k, str) and (k.startswith("$") or "." in k):
                        return path + [k], "has a key that %s" % ("starts with '$'" if k.startswith("$") else
                                                                  "contains '.'"), \
                            "rename the key, or use MongoDB 5.0 or later (--db-engine mongod), which stores it"
                    found = unstorable(v, path + [str(k)], False)
                    if found:
                        return found
            return None

        if self._ferretdb[1]:
            found = unstorable(data[0], ["metadata"], False) if isinstance(data, tuple) else unstorable(data, [], False)
            if found:
                raise ValueError("dump %d into %s: field '%s' %s, which the FerretDB server cannot store: %s"
                                 % (self._dumps, db_collection_name, ".".join(found[0]), found[1], found[2]))
        if isinstance(data, tuple):
            fs = gridfs.GridFS(database, collection=db_collection_name)
            fs.put(data[1], metadata=data[0])
        else:
            database[db_collection_name].insert_one(data)

    def getCursor(self, db=None, db_pipeline=None, db_collection_name=None):
        """An aggregation cursor over db_collection_name through db_pipeline. As in 2.0.6 the server sizes the first
        reply; later replies are sized by bytes (REPLY_BYTES), whatever db_batch_size, which only sizes getBatches'
        lists."""
        database = self._database(db)
        name = db_collection_name or self.args.get("db_collection_name")
        pipeline = _check_pipeline(db_pipeline) if db_pipeline is not None else [{"$match": {}}]
        if self._shard is not None and name == self._shard_collection:
            # a learner group's member reads its own shard of the group's collection (README: "Learner groups")
            pipeline = [{"$match": self._shard}] + pipeline
        raw = database.get_collection(name, codec_options=CodecOptions(document_class=RawBSONDocument))
        cursor = TrackedCursor(raw.aggregate(pipeline, allowDiskUse=True), name, pipeline, self._consumed)
        self._cursors.append(cursor)
        return cursor

    def _consumed(self, collection, pipeline, count, digest, complete):
        if self.on_consumed is not None:
            self.on_consumed(collection, pipeline, count, digest, complete)

    def log_metric(self, name, step, value):
        """Reports a metric while the script runs (a loss per epoch, an accuracy per batch): stored in the
        collection nemesyst_metrics with the run, the script and its model; `nemesyst-registry metrics RUN_ID`
        shows the history. name: 1-128 bytes; step: a whole number >= 0."""
        if self.on_metric is None:
            raise RuntimeError("log_metric: not running under nemesyst")
        self.on_metric(name, step, value)

    def getBatches(self, db_batch_size=None, db_data_cursor=None):
        """Yields lists of at most db_batch_size documents; the last one holds the remainder and is never empty
        (the original's bug: its last batch always failed)."""
        size = int(db_batch_size or self.args.get("db_batch_size") or 1)
        if isinstance(db_data_cursor, TrackedCursor):
            batch = db_data_cursor.take(size)
            while batch:
                yield batch
                batch = db_data_cursor.take(size)
            return
        batch = []
        for doc in db_data_cursor:
            batch.append(doc)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def getFiles(self, db_batch_size=None, db_data_cursor=None, db_collection_name=None, db=None):
        """Batches of GridFS files picked by a cursor over BUCKET.files: each entry is the cursor's document with
        "gridout" added (a GridOut: .read(), .metadata). Its chunks come in replies of about REPLY_BYTES, so a model
        of any size can be read, in pieces (read(n), iteration) within bounded memory."""
        database = self._database(db)
        bucket = db_collection_name or self.args.get("db_collection_name") or "fs"
        for batch in self.getBatches(db_batch_size=db_batch_size, db_data_cursor=db_data_cursor):
            for doc in batch:
                doc["gridout"] = BoundedGridOut.open(database, bucket, doc["_id"])
                if self.on_model_used is not None:
                    self.on_model_used(bucket, doc["_id"])
            yield batch

    GetFiles = getFiles

    # --- checkpoints: training that outlives its job (README "Long training") -------------------------------------
    # The same store as C plugins' nemesyst_checkpoint_* (src/store/checkpoint.h): GridFS bucket
    # nemesyst_checkpoints, one file per checkpoint with metadata {run, script, attempt, step, sha256, bytes, host,
    # rank, t, metadata}; the --dl-checkpoint-keep newest are kept, older ones deleted only after a newer is stored.

    CHECKPOINT_BUCKET = "nemesyst_checkpoints"

    def _checkpoint_key(self):
        return "%s-%d" % (os.environ.get("NEMESYST_STAGE", "learn"), int(os.environ.get("NEMESYST_POSITION", "0")))

    @staticmethod
    def _checkpoint_own_random():
        """pymongo draws on Python's global `random` (random.choice to select a server, random.randint for each
        request id, in the script's thread and in its monitors' threads at each heartbeat, whenever that comes): a
        script that keeps random.getstate() in its checkpoints would find, on resuming, a state that the driver had
        moved on in the uninterrupted run (every save_checkpoint did), and the heartbeats' timing would change its
        numbers from run to run. Before its first save or load, the driver gets a random.Random of its own (seeded
        from the OS), so the global one is the script's alone."""
        import random
        if getattr(Mongo, "_driver_random", None) is None:
            Mongo._driver_random = random.Random()
        for name, module in list(sys.modules.items()):
            if module is not None and name.split(".")[0] in ("pymongo", "gridfs", "bson") and \
                    getattr(module, "random", None) is random:
                module.random = Mongo._driver_random

    def _checkpoint_items_out(self):
        """Every item the script gave before a checkpoint (its metrics above all) goes to the host before the
        checkpoint is stored: left in this process's buffer, they would be lost with it if it were then killed (a
        stop whose grace is over), while the stored checkpoint says that their steps are done, so the resumed run
        would never log them again. The items go through the ItemWriter that run() gave log_metric."""
        out = getattr(getattr(self.on_metric, "__self__", None), "_out", None)
        if out is not None and not out.closed:
            out.flush()

    def _checkpoint_keep(self):
        keep = self.args.get("dl_checkpoint_keep") or [2]
        keep = keep if isinstance(keep, list) else [keep]
        return max(1, int(keep[min(int(self.args.get("process", 0)), len(keep) - 1)]))

    def save_checkpoint(self, data, step, metadata=None):
        """Stores this learner's state: data is bytes, or a file-like object read as it is sent (large states).
        Returns once it is stored; raises on failure (pymongo's errors), the older checkpoints untouched. In a
        learner group only member 0 stores (the others return at once)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError("save_checkpoint: step must be a whole number >= 0, got %r" % (step,))
        if metadata is not None and not isinstance(metadata, dict):
            raise ValueError("save_checkpoint: metadata must be a dict or None")
        self._checkpoint_items_out()
        if self.group[0] != 0:
            return
        self._checkpoint_own_random()
        run = os.environ.get("NEMESYST_RUN_ID")
        if not run:
            raise RuntimeError("save_checkpoint: no run (NEMESYST_RUN_ID is not set)")
        sha, spool = hashlib.sha256(), None
        if isinstance(data, (bytes, bytearray, memoryview)):
            sha.update(data)
            size, source = len(data), io.BytesIO(bytes(data))
        else:
            if not (hasattr(data, "seek") and hasattr(data, "tell") and data.seekable()):
                spool = tempfile.TemporaryFile(dir=os.environ.get("NEMESYST_WORKDIR"))
                for block in iter(lambda: data.read(1 << 20), b""):
                    spool.write(block)
                data = spool
            data.seek(0)
            size = 0
            for block in iter(lambda: data.read(1 << 20), b""):
                sha.update(block)
                size += len(block)
            data.seek(0)
            source = data
        key = self._checkpoint_key()
        meta = {"run": run, "script": key, "attempt": int(os.environ.get("NEMESYST_ATTEMPT", "1")),
                "step": step, "sha256": sha.hexdigest(), "bytes": size, "host": os.environ.get("NEMESYST_HOST", ""),
                "rank": int(os.environ.get("NEMESYST_RANK", "0")),
                "t": datetime.datetime.now(datetime.timezone.utc), "metadata": dict(metadata or {})}
        database = self.connect()
        bucket = gridfs.GridFSBucket(database, bucket_name=self.CHECKPOINT_BUCKET)
        try:
            bucket.upload_from_stream("%s/%s/step-%d" % (run, key, step), source, metadata=meta)
        finally:
            if spool is not None:
                spool.close()
        files = database[self.CHECKPOINT_BUCKET + ".files"]
        newest = list(files.find({"metadata.run": run, "metadata.script": key}, {"_id": 1},
                                 sort=[("metadata.step", -1), ("uploadDate", -1), ("_id", -1)]))
        for old in newest[self._checkpoint_keep():]:
            bucket.delete(old["_id"])

    def load_checkpoint(self, path=None):
        """The newest complete checkpoint of this learner in this run: None when there is none yet, else
        (data, step, metadata), data the bytes, or with path the file written there (path returned). One whose
        chunks are missing or whose sha256 does not match is passed over with a warning naming it; when none is
        usable, RuntimeError names each one tried."""
        self._checkpoint_own_random()
        run, key = os.environ.get("NEMESYST_RUN_ID"), self._checkpoint_key()
        database = self.connect()
        files = list(database[self.CHECKPOINT_BUCKET + ".files"].find(
            {"metadata.run": run, "metadata.script": key}, sort=[("metadata.step", -1), ("uploadDate", -1), ("_id", -1)]))
        tried = []
        for doc in files:
            meta = doc.get("metadata") or {}
            name = doc.get("filename", str(doc["_id"]))
            sha = hashlib.sha256()
            try:
                grid = BoundedGridOut.open(database, self.CHECKPOINT_BUCKET, doc["_id"])
                out = open(path + ".part", "wb") if path else io.BytesIO()
                try:
                    for block in iter(lambda: grid.read(1 << 20), b""):
                        sha.update(block)
                        out.write(block)
                    if sha.hexdigest() != meta.get("sha256"):
                        raise gridfs.errors.CorruptGridFile("its sha256 does not match what was saved")
                    data = path if path else out.getvalue()
                finally:
                    out.close()
            except (gridfs.errors.GridFSError, pymongo.errors.PyMongoError) as e:
                if path and os.path.exists(path + ".part"):
                    os.unlink(path + ".part")
                tried.append("'%s' (%s)" % (name, e))
                _log(4, "checkpoint: passed over '%s': %s" % (name, e))
                continue
            if path:
                os.replace(path + ".part", path)
            if tried:  # an older one than the newest: the steps after it are logged again, once
                database["nemesyst_metrics"].delete_many({"run": run, "script": key,
                                                          "step": {"$gt": int(meta.get("step", 0))}})
            return data, int(meta.get("step", 0)), dict(meta.get("metadata") or {})
        if tried:
            raise RuntimeError("no usable checkpoint of %s in run %s: tried %s" % (key, run, "; ".join(tried)))
        return None

    def checkpoint_requested(self):
        """True once a stop is coming (a time limit, a preemption, an interrupt): save a checkpoint now."""
        stop = os.environ.get("NEMESYST_STOP_FILE")
        return bool(stop) and os.path.exists(stop)

    def finish(self):
        """Cursors never read to their end are reported as incomplete."""
        for cursor in self._cursors:
            cursor._end(False)

    def close(self):
        if self._client is not None:
            self._client.close()
        self._client = self._db = None


def _quick_exit():
    """pymongo joins its monitor threads at exit, waiting out their poll interval (about half a second after any use
    of a client): once every item is flushed and the clients are closed, the threads are daemons with nothing left to
    do, so that join is dropped. The script's own exit handlers still run."""
    try:
        import pymongo.monitor
        atexit.unregister(pymongo.monitor._shutdown_resources)
    except (ImportError, AttributeError):
        pass


_SECRETS = {}


def _read_password(variable="NEMESYST_PASSWORD_FD"):
    """Reads a secret from the inherited descriptor named by variable, once: later Mongo() objects reuse it."""
    if variable not in _SECRETS:
        _SECRETS[variable] = _read_fd(variable)
    return _SECRETS[variable]


def _read_fd(variable):
    fd = os.environ.get(variable)
    if not fd:
        return None
    chunks = []
    try:
        while True:
            chunk = os.read(int(fd), 4096)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(int(fd))
    except OSError:
        return None
    return b"".join(chunks).decode("utf-8")


def build_args():
    """The original's args dict from the host's resolved options (extended JSON, '-' names)."""
    args = {}
    path = os.environ.get("NEMESYST_ARGS_FILE")
    if path:
        with open(path) as f:
            for key, value in json_util.loads(f.read()).items():
                args[key.replace("-", "_")] = value
    args["process"] = int(os.environ.get("NEMESYST_POSITION", "0"))
    args["stage"] = os.environ.get("NEMESYST_STAGE")
    args["run_id"] = os.environ.get("NEMESYST_RUN_ID")
    args["rank"] = int(os.environ.get("NEMESYST_RANK", "0"))
    args["workdir"] = os.environ.get("NEMESYST_WORKDIR")
    args["input_model"] = os.environ.get("NEMESYST_INPUT_MODEL")
    args["input_model_id"] = os.environ.get("NEMESYST_INPUT_MODEL_ID")
    args["group_rank"], args["group_size"] = (int(os.environ.get("NEMESYST_GROUP_RANK", "0")),
                                              int(os.environ.get("NEMESYST_GROUP_SIZE", "1")))
    return args


def load_script(path):
    """Imports path under a name derived from its absolute path, so same-named scripts never collide."""
    path = os.path.abspath(path)
    name = "nemesyst_script_" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:16]
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ImportError("cannot load %s" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run(script):
    writer = ItemWriter(int(os.environ["NEMESYST_ITEM_FD"]), os.environ.get("NEMESYST_WORKDIR"))
    module = load_script(script)
    entry_name = os.environ.get("NEMESYST_ENTRY_POINT") or "main"
    entry = getattr(module, entry_name, None)
    if not callable(entry):
        raise AttributeError("%s has no entry point %s()" % (script, entry_name))
    args = build_args()
    db = Mongo(args)
    db.on_consumed = writer.consumed
    db.on_model_used = writer.model_used
    db.on_metric = writer.metric
    result = entry(args=args, db=db)
    if isinstance(result, (dict, tuple)) or result is None:
        writer.item(result)
    else:
        for item in result:
            writer.item(item)
    db.finish()
    writer.end()
    writer.close()
    db.close()
    _quick_exit()


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s SCRIPT.py (run by nemesyst)\n" % argv[0])
        return 2
    # print() progress is logged line by line, as it happens
    sys.stdout.reconfigure(line_buffering=True)
    try:
        run(argv[1])
    except BaseException:  # SystemExit and KeyboardInterrupt from a script fail it too
        _log(3, traceback.format_exc().rstrip())
        sys.stdout.flush()
        _quick_exit()
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
