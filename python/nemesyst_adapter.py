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

Needs Python 3.8 or later (importlib.metadata) and pymongo 3.11 or later. Its pure parts are tested without a server
by tests/python/test_adapter.py.
"""

from __future__ import annotations

import atexit
import collections.abc
import contextlib
import dataclasses
import datetime
import errno
import hashlib
import importlib.util
import io
import itertools
import os
import random
import sys
import sysconfig
import tempfile
import traceback
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Callable, ClassVar, Iterable, Iterator, Mapping, Sequence

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
MARKER_CHECKPOINT_COMMIT = "$nemesyst_checkpoint_commit"

# What the host is told through the callbacks a Mongo object is given (run() passes an ItemWriter's methods).
OnConsumed = Callable[[str, Sequence[Mapping[str, Any]], int, str, bool], None]
OnModelUsed = Callable[[str, Any], None]
OnMetric = Callable[[str, int, float], None]
OnFlush = Callable[[], None]
OnCheckpoint = Callable[[Any, int], None]


def _log(level: int, text: object) -> None:
    """One or more lines to the host log at an sd-daemon level (3 error, 4 warn, 6 info, 7 debug)."""
    for line in str(text).splitlines() or [""]:
        sys.stderr.write(f"<{level}>{line}\n")
    sys.stderr.flush()


def _check_pipeline(pipeline: object) -> list[Mapping[str, Any]]:
    """MongoDB's rule for a pipeline: a list of stage documents, each with one field that names a stage ('$...').
    Anything else is refused here with a clear error rather than by the server or the connection."""
    if not isinstance(pipeline, (list, tuple)):
        raise ValueError("getCursor: db_pipeline must be a list of stage documents such as [{\"$match\": {}}], "
                         f"got {type(pipeline).__name__}")
    for n, stage in enumerate(pipeline):
        if not isinstance(stage, collections.abc.Mapping) or len(stage) != 1:
            raise ValueError(f"getCursor: db_pipeline stage {n} is not a document with one field")
        name = next(iter(stage))
        if not isinstance(name, str) or not name.startswith("$"):
            raise ValueError(f"getCursor: db_pipeline stage {n} {name!r} does not name a stage (its field must start "
                             "with '$')")
    return list(pipeline)


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _sha256_of(path: str) -> str:
    """The sha256 of a file, computed once per (path, mtime, size)."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def _under(path: str, roots: Iterable[str]) -> bool:
    """path lies inside one of roots (real paths, compared as strings: no file system access)."""
    return any(path.startswith(root + os.sep) for root in roots)


def _package_version(top: str) -> str | None:
    """An installed package's version: its distribution's metadata, else its module's __version__ string."""
    import importlib.metadata  # only when a model is announced: most scripts never need it

    try:
        return importlib.metadata.version(top)
    except Exception:  # noqa: BLE001 - a missing or broken distribution must never fail the script's model
        version = getattr(sys.modules.get(top), "__version__", None)
        return version if isinstance(version, str) else None


def _code_lineage(modules: Mapping[str, ModuleType] | None = None, this: str | None = None) -> dict[str, Any]:
    """{modules: [{name, path, sha256}], packages: {name: version}, python: version} of the modules imported so far
    (the adapter itself and the interpreter's own library left out; installed packages by version). modules
    defaults to sys.modules, this (the adapter's own file, left out) to __file__."""
    modules = sys.modules if modules is None else modules
    this = os.path.realpath(__file__ if this is None else this)
    paths = sysconfig.get_paths()
    # each root as given and as its real path: a module of the interpreter's own may be a link out of its library
    # (Debian's sitecustomize.py is one to /etc/python3.X), so a module is judged by its path before and after
    # links are followed
    def both(dirs: Iterable[str]) -> set[str]:
        return {f(d) for d in dirs for f in (os.path.abspath, os.path.realpath)}
    roots = both(paths[k] for k in ("stdlib", "platstdlib") if paths.get(k))
    installed = both(p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p))
    installed.update(both(paths[k] for k in ("purelib", "platlib") if paths.get(k)))
    found: list[dict[str, str]] = []
    packages: dict[str, str] = {}
    for name, module in sorted(modules.items()):
        path = getattr(module, "__file__", None)
        if not path or name == "__main__":
            continue
        real, given = os.path.realpath(path), os.path.abspath(path)
        if real == this or not os.path.isfile(real):
            continue
        if _under(real, installed) or _under(given, installed):
            top = name.split(".")[0]
            if top not in packages:
                version = _package_version(top)
                if version is not None:
                    packages[top] = version
            continue
        if _under(real, roots) or _under(given, roots):
            continue
        try:
            found.append({"name": name, "path": real, "sha256": _sha256_of(real)})
        except OSError:
            continue
    return {"modules": found, "packages": packages, "python": "{}.{}.{}".format(*sys.version_info[:3])}


class ItemWriter:
    """BSON items to the host over the inherited pipe (or any binary stream, for tests)."""

    def __init__(self, out: int | IO[bytes], workdir: str | None) -> None:
        self._out: IO[bytes] = os.fdopen(out, "wb", buffering=1 << 16) if isinstance(out, int) else out
        self._items = 0
        self._workdir = workdir or tempfile.gettempdir()
        self._reported: set[tuple[str, str, bool]] = set()
        self._code_sent: dict[str, Any] | None = None

    def document(self, doc: Mapping[str, Any]) -> None:
        self._out.write(bson.BSON.encode(doc))
        self._items += 1

    def model(self, metadata: Mapping[str, Any] | None, data: Any) -> None:
        self.code()
        fd, path = tempfile.mkstemp(prefix="model-", dir=self._workdir)
        with os.fdopen(fd, "wb") as f:
            _write_model_data(f, data)
        self.document({MARKER_MODEL: {"path": path, "metadata": dict(metadata or {}), "temp": True}})

    def code(self) -> None:
        """What the script really ran, announced before each model (once per change): every module it imported
        from outside the interpreter's own library and installed packages, with its sha256; the versions of the
        installed packages it imported; the interpreter's version. The host keeps it in the model's lineage and
        nemesyst-registry verify checks it."""
        code = _code_lineage()
        if code != self._code_sent:
            self._code_sent = code
            self.document({MARKER_CODE: code})

    def consumed(self, collection: str, pipeline: Sequence[Mapping[str, Any]] | None, count: int, digest: str,
                 complete: bool) -> None:
        key = (collection, digest, complete)
        if key in self._reported:  # several epochs over the same data: one record
            return
        self._reported.add(key)
        self.document({MARKER_CONSUMED: {"collection": collection, "pipeline": list(pipeline or []),
                                         "count": bson.int64.Int64(count), "digest": digest,
                                         "complete": complete}})

    def model_used(self, bucket: str, file_id: Any) -> None:
        """A predictor loaded a model: the host makes its later predictions reference it."""
        self.document({MARKER_CONSUMED: {"collection": bucket + ".files", "count": bson.int64.Int64(1),
                                         "model": {"bucket": bucket, "id": file_id}}})

    def metric(self, name: str, step: int, value: float) -> None:
        """A metric while the script runs: the host stores it in nemesyst_metrics (in bulk)."""
        if not isinstance(name, str) or not 0 < len(name.encode()) <= 128:
            raise ValueError(f"a metric name is a string of 1-128 bytes, not {name!r}")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"a metric step is a whole number >= 0, not {step!r}")
        self.document({MARKER_METRIC: {"name": name, "step": bson.int64.Int64(step), "value": float(value),
                                       "t": datetime.datetime.now(datetime.timezone.utc)}})

    def item(self, item: Any) -> None:
        if item is None:
            return
        if isinstance(item, dict):
            self.document(item)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], dict):
            self.model(item[0], item[1])
        else:
            raise TypeError("a stage script yields dicts (documents), (metadata, data) tuples (models) or None, "
                            f"not {type(item).__name__}")

    def end(self) -> None:
        """The end-of-output record: without it the host fails the script (it ended before its output was complete,
        e.g. through os._exit), so nothing still buffered can be lost behind exit status 0."""
        self._out.write(bson.BSON.encode({MARKER_END: {"items": bson.int64.Int64(self._items)}}))
        self._out.flush()

    def checkpoint_commit(self, file_id: Any, step: int) -> None:
        """A checkpoint this script stored pending: the host commits it once every item before it is stored."""
        self.document({MARKER_CHECKPOINT_COMMIT: {"id": file_id, "step": bson.int64.Int64(step)}})
        self.flush()

    def flush(self) -> None:
        """Every item given so far to the host (a checkpoint is about to be stored)."""
        if not self._out.closed:
            self._out.flush()

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> ItemWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
        else:  # the script failed: the host is told by the exit status, a broken pipe here would only hide why
            with contextlib.suppress(OSError):
                self.close()


def _write_model_data(f: IO[bytes], data: Any) -> None:
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
        raise TypeError(f"model data must be bytes, str or a file-like object, not {type(data).__name__}")


# Cursor replies are sized by bytes, not by a document count: after the first reply (the server's default size), the
# cursor asks for about this many bytes per reply, from the documents' mean size, which keeps the round trips few
# for small documents and every reply far below the 16 MiB message limit for large ones.
REPLY_BYTES = 4 * 1024 * 1024
REPLY_DOCS_MAX = 100000
# Documents are decoded and hashed this many at a time: one C call each, whatever the batch size a script asks for.
DECODE_CHUNK = 256


def _reply_docs(raws: Sequence[RawBSONDocument]) -> int:
    """The batch size that makes a reply about REPLY_BYTES, from the mean size of raws (at least one document)."""
    per = max(1, sum(len(r.raw) for r in raws) // len(raws))
    return max(1, min(REPLY_DOCS_MAX, REPLY_BYTES // per))


class TrackedCursor:
    """An aggregation cursor that hands out plain dicts while hashing the raw BSON of what it hands out.

    The cursor yields raw documents (RawBSONDocument); a chunk of them is joined, hashed in one piece and decoded in
    one call (bson.decode_all), so the lineage digest (sha256 over every handed-out document's BSON bytes, in order,
    as the C batch API computes it) costs no Python-level decoding or hashing per document. on_end is called once,
    when the cursor is read to its end or abandoned (complete False)."""

    def __init__(self, cursor: Any, collection: str, pipeline: Sequence[Mapping[str, Any]],
                 on_end: OnConsumed) -> None:
        self._cursor = cursor
        self._collection = collection
        self._pipeline = pipeline
        self._on_end = on_end
        self._sha = hashlib.sha256()
        self._count = 0
        self._ended = False
        self._raws: list[RawBSONDocument] = []  # the current chunk, raw
        self._docs: list[dict[str, Any]] = []   # the same, decoded
        self._next = 0                          # the first not handed out yet
        self._sized = False

    def __iter__(self) -> TrackedCursor:
        return self

    def _fill(self) -> bool:
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
            self._cursor.batch_size(_reply_docs(self._raws))
        self._docs = bson.decode_all(b"".join(r.raw for r in self._raws))
        self._next = 0
        return True

    def __next__(self) -> dict[str, Any]:
        if not self._fill():
            raise StopIteration
        doc = self._docs[self._next]
        self._next += 1
        self._count += 1
        return doc

    next = __next__  # 2.0.6 scripts call cursor.next()

    def take(self, n: int) -> list[dict[str, Any]]:
        """Up to n documents as a list (fewer only at the end; empty at the end)."""
        out: list[dict[str, Any]] = []
        while len(out) < n and self._fill():
            k = min(n - len(out), len(self._docs) - self._next)
            out.extend(self._docs[self._next:self._next + k])
            self._next += k
            self._count += k
        return out

    def _handed(self) -> bytes:
        """The bytes of the current chunk's documents handed out so far."""
        return b"".join(r.raw for r in self._raws[:self._next])

    def _end(self, complete: bool) -> None:
        if not self._ended:
            self._ended = True
            if not complete:
                self._sha.update(self._handed())
            self._raws, self._docs, self._next = [], [], 0
            self._on_end(self._collection, self._pipeline, self._count, self._sha.hexdigest(), complete)

    @property
    def count(self) -> int:
        return self._count

    def digest(self) -> str:
        sha = self._sha.copy()
        sha.update(self._handed())
        return sha.hexdigest()

    def close(self) -> None:
        self._cursor.close()

    @property
    def alive(self) -> bool:
        return self._next < len(self._docs) or self._cursor.alive

    def __getattr__(self, name: str) -> Any:  # batch_size, ... of the pymongo cursor
        return getattr(self._cursor, name)


# GridFS chunks are read in replies of about REPLY_BYTES too, as the host reads them (src/store/gridfs.c). pymongo's
# own GridOut opens its chunks cursor without a batch size, so the server picks one by document count: a 255 KiB chunk
# times FerretDB's 250 per getMore is a 65 MB reply, over pymongo's 48 MB message limit, and a 200 MB model cannot be
# read at all (mongod caps its replies at 16 MiB, but nothing in the protocol obliges a server to).
CHUNK_OVERHEAD = 128  # a chunk document's fields besides its data, generously


class ModelReadError(gridfs.errors.GridFSError):
    """Reading a stored model failed in the driver or the server: the message names the model and its bucket and
    quotes the driver's; the driver's exception is the __cause__."""


def _whole(value: object) -> bool:
    """An integral number: files documents written by old drivers and shells may hold length as a double."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _chunk_count(length: int, chunk_size: int) -> int:
    """How many chunks a GridFS file of length bytes has."""
    return (int(length) + int(chunk_size) - 1) // int(chunk_size)


def _chunk_length(length: int, chunk_size: int, n: int) -> int:
    """How long chunk n of a GridFS file of length bytes is (GridFS specification: all full but the last)."""
    return min(int(chunk_size), int(length) - n * int(chunk_size))


class _Chunks:
    """The chunks of one GridFS file from chunk number `first` on, as bytes, checked as they come (GridFS
    specification): n contiguous from `first`, each exactly as long as the file's length implies, none missing and
    none extra at the end. A cursor the server dropped between reads (10 idle minutes) is reopened where it was."""

    def __init__(self, grid: BoundedGridOut, first: int) -> None:
        self._grid = grid
        self._next = first
        self._count = grid.chunk_count()
        self._cursor: Any = None

    def _open(self) -> None:
        per_reply = max(1, REPLY_BYTES // (int(self._grid.chunk_size) + CHUNK_OVERHEAD))
        self._cursor = self._grid.chunks_collection().find(
            {"files_id": self._grid.file_id, "n": {"$gte": self._next}}, sort=[("n", 1)], batch_size=per_reply)

    def _fetch(self) -> Mapping[str, Any] | None:
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

    def __iter__(self) -> _Chunks:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = self._fetch()
        except pymongo.errors.PyMongoError as e:
            self.close()
            raise self._grid.error(ModelReadError, f"reading chunk {self._next} failed: {e}") from e
        if self._next >= self._count:
            self.close()
            if chunk is not None and len(chunk.get("data") or b""):  # empty extra chunks are allowed by the spec
                raise self._grid.error(gridfs.errors.CorruptGridFile,
                                       f"extra chunk n={chunk.get('n')!r} after the last one ({self._count - 1})")
            raise StopIteration
        if chunk is None:
            self.close()
            raise self._grid.error(gridfs.errors.CorruptGridFile, f"chunk {self._next} of {self._count} is missing")
        if chunk.get("n") != self._next:
            self.close()
            raise self._grid.error(gridfs.errors.CorruptGridFile,
                                   f"chunk {self._next} is missing (found n={chunk.get('n')!r})")
        data = chunk.get("data")
        want = self._grid.chunk_length(self._next)
        if not isinstance(data, bytes) or len(data) != want:
            self.close()
            got = len(data) if isinstance(data, bytes) else "no binary"
            raise self._grid.error(gridfs.errors.CorruptGridFile, f"chunk {self._next} has {got} bytes, not {want}")
        self._next += 1
        return data

    next = __next__

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None


class BoundedGridOut(gridfs.GridOut):
    """A GridOut (read, readchunk, readline, seek, tell, iteration, the file's fields: metadata, length, ...) that
    reads its chunks through _Chunks: memory holds one reply of chunks at a time, plus what a read asks for.

    Only GridOut's public API is used: its constructor with the file document already read, and the file's fields
    (_id, length, chunk_size) as its documented properties."""

    def __init__(self, database: Any, bucket: str, file_document: Mapping[str, Any]) -> None:
        super().__init__(database[bucket], file_document=file_document)
        self._database = database
        self._bucket = bucket
        self._reader: _Chunks | None = None  # chunks from the one holding the position on
        self._pending = b""                  # the rest of the last chunk read, not handed out yet
        self._offset = 0                     # how much of _pending was handed out
        self._position = 0

    @classmethod
    def open(cls, database: Any, bucket: str, file_id: Any) -> BoundedGridOut:
        """The model file_id of bucket; NoFile when there is none, ModelReadError when it cannot be read."""
        where = f"model {file_id!r} in GridFS bucket {database.name}.{bucket}"
        try:
            doc = database[bucket + ".files"].find_one({"_id": file_id})
        except pymongo.errors.PyMongoError as e:
            raise ModelReadError(f"cannot read {where}: {e}") from e
        if doc is None:
            raise gridfs.errors.NoFile(f"no {where}")
        length, size = doc.get("length"), doc.get("chunkSize")
        if not (_whole(length) and length >= 0 and _whole(size) and size > 0):
            raise gridfs.errors.CorruptGridFile(f"cannot read {where}: no valid length and chunkSize "
                                                f"({length!r}, {size!r})")
        return cls(database, bucket, doc)

    # --- what _Chunks needs ---
    @property
    def file_id(self) -> Any:
        return self._id  # GridOut's documented property for the file document's _id

    def chunks_collection(self) -> Any:
        return self._database[self._bucket + ".chunks"]

    def chunk_count(self) -> int:
        return _chunk_count(self.length, self.chunk_size)

    def chunk_length(self, n: int) -> int:
        return _chunk_length(self.length, self.chunk_size, n)

    def error(self, kind: type[Exception], why: str) -> Exception:
        return kind(f"cannot read model {self.file_id!r} from GridFS bucket {self._database.name}.{self._bucket}: "
                    f"{why}")

    # --- reading ---
    def _fill(self) -> bool:
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

    def _take(self, limit: int, stop: bytes | None = None) -> bytes:
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

    def _read(self, size: int | None, stop: bytes | None = None) -> bytes:
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

    def _finish(self) -> None:
        """At the end of the file: checks for extra chunks, then closes the cursor."""
        with contextlib.suppress(StopIteration):
            next(self._reader)
        self._reader = None

    def read(self, size: int = -1) -> bytes:
        return self._read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._read(size, b"\n")

    def readchunk(self) -> bytes:
        """The rest of the current chunk (empty at the end), as GridOut.readchunk."""
        if not self._fill():
            return b""
        return self._take(len(self._pending))

    def tell(self) -> int:
        return self._position

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: int(self.length)}.get(whence)
        if base is None:
            raise OSError(errno.EINVAL, "Invalid value for `whence`")
        if base + pos < 0:
            raise OSError(errno.EINVAL, "Invalid value for `pos` - must be positive")
        if base + pos != self._position:
            self.close()
            self._position = base + pos
        return self._position

    def __iter__(self) -> _Chunks:
        """The file's chunks from the first, as bytes (as GridOut's iterator; the position is not used)."""
        return _Chunks(self, 0)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader, self._pending, self._offset = None, b"", 0


@dataclasses.dataclass(frozen=True)
class Unstorable:
    """A value a FerretDB 1.x server cannot store: where (the field's path), what is wrong, and the fix."""
    path: list[str]
    what: str
    fix: str


_MONGOD = "or use MongoDB (--db-engine mongod), which stores it"


def _unstorable(value: Any, path: list[str], in_array: bool = False) -> Unstorable | None:
    """The first value in value (depth first) that a FerretDB 1.x server cannot store, or None."""
    if isinstance(value, float):
        if value != value:
            return Unstorable(path, "holds NaN", "store missing values as null (None), or use MongoDB "
                                                 "(--db-engine mongod), which stores NaN")
        if value in (float("inf"), float("-inf")):
            return Unstorable(path, f"holds {'' if value > 0 else '-'}Infinity",
                              "store a finite number or None, " + _MONGOD)
    elif isinstance(value, bson.Decimal128):
        return Unstorable(path, "holds a Decimal128", "store it as a float or a string, " + _MONGOD)
    elif isinstance(value, bson.Code):
        return Unstorable(path, "holds JavaScript code", "store it as a string, " + _MONGOD)
    elif isinstance(value, (bson.MinKey, bson.MaxKey)):
        return Unstorable(path, f"holds {type(value).__name__}", "store another value, " + _MONGOD)
    elif isinstance(value, (list, tuple)):
        if in_array:
            return Unstorable(path, "is an array inside an array (a nested array)",
                              "store the inner arrays as documents or flatten them, " + _MONGOD)
        for i, v in enumerate(value):
            found = _unstorable(v, path + [str(i)], True)
            if found:
                return found
    elif isinstance(value, dict) or hasattr(value, "items"):
        for k, v in value.items():
            if isinstance(k, str) and (k.startswith("$") or "." in k):
                return Unstorable(path + [k], "has a key that " + ("starts with '$'" if k.startswith("$") else
                                                                   "contains '.'"),
                                  "rename the key, or use MongoDB 5.0 or later (--db-engine mongod), which stores it")
            found = _unstorable(v, path + [str(k)], False)
            if found:
                return found
    return None


def _is_ferretdb_1(build_info: Mapping[str, Any]) -> bool:
    """A buildInfo reply is FerretDB's before 2.0 (1.x says ferretdbVersion; 2.x a ferretdb document)."""
    version = build_info.get("ferretdbVersion")
    if version is None and isinstance(build_info.get("ferretdb"), dict):
        version = build_info["ferretdb"].get("version") or "v2"
    major = str(version or "").lstrip("vV").split(".")[0]
    return version is not None and (not major.isdigit() or int(major) < 2)


def _checkpoint_key(environ: Mapping[str, str] | None = None) -> str:
    """This script's name in the checkpoint store: STAGE-POSITION."""
    environ = os.environ if environ is None else environ
    return f"{environ.get('NEMESYST_STAGE', 'learn')}-{int(environ.get('NEMESYST_POSITION', '0'))}"


def _checkpoint_keep(args: Mapping[str, Any]) -> int:
    """How many checkpoints to keep for this script: its entry of --dl-checkpoint-keep (the last one past the end of
    the list), at least 1."""
    keep = args.get("dl_checkpoint_keep") or [2]
    keep = keep if isinstance(keep, list) else [keep]
    return max(1, int(keep[min(int(args.get("process", 0)), len(keep) - 1)]))


def _check_checkpoint_request(step: object, metadata: object) -> None:
    """save_checkpoint's arguments: a whole step >= 0 and metadata a dict or None."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"save_checkpoint: step must be a whole number >= 0, got {step!r}")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError("save_checkpoint: metadata must be a dict or None")


class Mongo:
    """The original Nemesyst Mongo handler's script-facing API on pymongo.

    Server management (init, start, stop, login) belongs to the nemesyst host: here those calls only log. The host
    is told what the script reads, loads and logs through the callbacks given to the constructor (run() gives an
    ItemWriter's methods); without them, nothing is reported and log_metric refuses."""

    CHECKPOINT_BUCKET = "nemesyst_checkpoints"
    # The random.Random that pymongo's modules draw on instead of the global one (see _checkpoint_own_random).
    _driver_random: ClassVar[random.Random | None] = None

    def __init__(self, args: Mapping[str, Any] | None = None, logger: Callable[..., Any] | None = None, *,
                 on_consumed: OnConsumed | None = None, on_model_used: OnModelUsed | None = None,
                 on_metric: OnMetric | None = None, on_flush: OnFlush | None = None,
                 on_checkpoint: OnCheckpoint | None = None) -> None:
        self.args: dict[str, Any] = dict(args or {})
        self._log = logger if logger is not None else print
        self._client: pymongo.MongoClient | None = None
        self._db: Any = None
        self._cursors: list[TrackedCursor] = []
        self._dumps = 0
        self._ferretdb: tuple[Any, bool] = (None, False)  # (the client it was asked of, a FerretDB 1.x server)
        self.on_consumed = on_consumed
        self.on_model_used = on_model_used
        self.on_metric = on_metric
        self.on_flush = on_flush
        self.on_checkpoint = on_checkpoint
        shard = os.environ.get("NEMESYST_SHARD")
        self._shard = json_util.loads(shard) if shard and os.environ.get("NEMESYST_GROUP_SIZE") else None
        self._shard_collection = os.environ.get("NEMESYST_SHARD_COLLECTION")

    @property
    def group(self) -> tuple[int, int]:
        """(rank, size) of this learner in its group (--dl-data-parallel); (0, 1) alone. torch.distributed's
        MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and LOCAL_RANK are set for init_process_group("gloo")."""
        return (int(os.environ.get("NEMESYST_GROUP_RANK", "0")), int(os.environ.get("NEMESYST_GROUP_SIZE", "1")))

    # the original's dict-like magic on its settings
    def __getitem__(self, key: str) -> Any:
        return self.args[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.args[key] = value

    def __delitem__(self, key: str) -> None:
        del self.args[key]

    def __len__(self) -> int:
        return len(self.args)

    def debug(self) -> None:
        self._log("Mongo state:", {k: v for k, v in self.args.items() if "password" not in k})

    def init(self, *a: Any, **kw: Any) -> None:
        self._log("Mongo.init: the database is managed by nemesyst (--db-init); nothing done")

    start = stop = login = init

    def connect(self, db_name: str | None = None, **overrides: Any) -> Any:
        """Connects (once) with the run's URI and the password from the host's pipe; returns the database."""
        if self._db is not None and db_name in (None, self._db.name):
            return self._db
        uri = overrides.get("db_uri") or os.environ.get("NEMESYST_DB_URI") or "mongodb://127.0.0.1:27017/"
        name = db_name or os.environ.get("NEMESYST_DB_NAME") or self.args.get("db_name") or "nemesyst"
        if self._client is None:
            kwargs: dict[str, Any] = {"appname": "nemesyst-python"}
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

    def _database(self, db: Any) -> Any:
        return db if db is not None else self.connect()

    def dump(self, db_collection_name: str, data: Any, db: Any = None) -> None:
        """Writes directly, as the original did (no provenance, no rollback): prefer yielding items. On a FerretDB 1.x
        server, a value it cannot store (NaN, +/-Infinity, Decimal128, a nested array, a key with '.' or a leading
        '$', ...) raises ValueError naming the dump and the field, where the server would drop the connection."""
        database = self._database(db)
        self._dumps += 1
        client = database.client
        if self._ferretdb[0] is not client:  # asked once per connection
            try:
                info = client.admin.command("buildInfo")
            except pymongo.errors.PyMongoError:
                info = {}
            self._ferretdb = (client, _is_ferretdb_1(info))
        if self._ferretdb[1]:
            found = _unstorable(data[0], ["metadata"]) if isinstance(data, tuple) else _unstorable(data, [])
            if found:
                raise ValueError(f"dump {self._dumps} into {db_collection_name}: field '{'.'.join(found.path)}' "
                                 f"{found.what}, which the FerretDB server cannot store: {found.fix}")
        if isinstance(data, tuple):
            fs = gridfs.GridFS(database, collection=db_collection_name)
            fs.put(data[1], metadata=data[0])
        else:
            database[db_collection_name].insert_one(data)

    def getCursor(self, db: Any = None, db_pipeline: Sequence[Mapping[str, Any]] | None = None,
                  db_collection_name: str | None = None) -> TrackedCursor:
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

    def _consumed(self, collection: str, pipeline: Sequence[Mapping[str, Any]], count: int, digest: str,
                  complete: bool) -> None:
        if self.on_consumed is not None:
            self.on_consumed(collection, pipeline, count, digest, complete)

    def log_metric(self, name: str, step: int, value: float) -> None:
        """Reports a metric while the script runs (a loss per epoch, an accuracy per batch): stored in the
        collection nemesyst_metrics with the run, the script and its model; `nemesyst-registry metrics RUN_ID`
        shows the history. name: 1-128 bytes; step: a whole number >= 0."""
        if self.on_metric is None:
            raise RuntimeError("log_metric: not running under nemesyst")
        self.on_metric(name, step, value)

    def getBatches(self, db_batch_size: int | None = None,
                   db_data_cursor: Iterable[Any] | None = None) -> Iterator[list[Any]]:
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

    def getFiles(self, db_batch_size: int | None = None, db_data_cursor: Iterable[Any] | None = None,
                 db_collection_name: str | None = None, db: Any = None) -> Iterator[list[dict[str, Any]]]:
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
    # The same store as C plugins' nemesyst_checkpoint_* (src/store/ckpt.h): GridFS bucket
    # nemesyst_checkpoints, one file per checkpoint with metadata {run, script, attempt, step, sha256, bytes, host,
    # rank, t, metadata}; the --dl-checkpoint-keep newest are kept, older ones deleted only after a newer is stored.

    def _checkpoint_key(self) -> str:
        return _checkpoint_key()

    @staticmethod
    def _checkpoint_own_random() -> None:
        """pymongo draws on Python's global `random` (random.choice to select a server, random.randint for each
        request id, in the script's thread and in its monitors' threads at each heartbeat, whenever that comes): a
        script that keeps random.getstate() in its checkpoints would find, on resuming, a state that the driver had
        moved on in the uninterrupted run (every save_checkpoint did), and the heartbeats' timing would change its
        numbers from run to run. Before its first save or load, the driver gets a random.Random of its own (seeded
        from the OS), so the global one is the script's alone.

        This rebinds the `random` name inside pymongo's, gridfs' and bson's own modules, which are not their public
        API: pymongo offers no public way to give the driver a random source of its own, and the alternative (saving
        and restoring the global state around every driver call) cannot cover the monitor threads."""
        if Mongo._driver_random is None:
            Mongo._driver_random = random.Random()
        for name, module in list(sys.modules.items()):
            if module is not None and name.split(".")[0] in ("pymongo", "gridfs", "bson") and \
                    getattr(module, "random", None) is random:
                module.random = Mongo._driver_random

    def _checkpoint_items_out(self) -> None:
        """Every item the script gave before a checkpoint (its metrics above all) goes to the host before the
        checkpoint is stored: left in this process's buffer, they would be lost with it if it were then killed (a
        stop whose grace is over), while the stored checkpoint says that their steps are done, so the resumed run
        would never log them again. on_flush (the ItemWriter's flush, from run()) sends them."""
        if self.on_flush is not None:
            self.on_flush()

    def _checkpoint_keep(self) -> int:
        return _checkpoint_keep(self.args)

    def save_checkpoint(self, data: bytes | bytearray | memoryview | IO[bytes], step: int,
                        metadata: Mapping[str, Any] | None = None) -> None:
        """Stores this learner's state: data is bytes, or a file-like object read as it is sent (large states).
        Returns once it is stored; raises on failure (pymongo's errors), the older checkpoints untouched. In a
        learner group only member 0 stores (the others return at once)."""
        _check_checkpoint_request(step, metadata)
        self._checkpoint_items_out()
        if self.group[0] != 0:
            return
        self._checkpoint_own_random()
        run = os.environ.get("NEMESYST_RUN_ID")
        if not run:
            raise RuntimeError("save_checkpoint: no run (NEMESYST_RUN_ID is not set)")
        with contextlib.ExitStack() as cleanup:
            sha = hashlib.sha256()
            if isinstance(data, (bytes, bytearray, memoryview)):
                sha.update(data)
                size, source = len(data), io.BytesIO(bytes(data))
            else:
                if not (hasattr(data, "seek") and hasattr(data, "tell") and data.seekable()):
                    spool = cleanup.enter_context(tempfile.TemporaryFile(dir=os.environ.get("NEMESYST_WORKDIR")))
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
                    "step": step, "sha256": sha.hexdigest(), "bytes": size,
                    "host": os.environ.get("NEMESYST_HOST", ""), "rank": int(os.environ.get("NEMESYST_RANK", "0")),
                    "t": datetime.datetime.now(datetime.timezone.utc), "metadata": dict(metadata or {}),
                    "pending": True}
            database = self.connect()
            bucket = gridfs.GridFSBucket(database, bucket_name=self.CHECKPOINT_BUCKET)
            file_id = bucket.upload_from_stream(f"{run}/{key}/step-{step}", source, metadata=meta)
        # Stored pending: the host commits it (src/store/ckpt.h) once every item before it is stored, so a
        # checkpoint is never loaded whose steps' metrics were lost with a killed host.
        if self.on_checkpoint is not None:
            self.on_checkpoint(file_id, step)
            return
        files = database[self.CHECKPOINT_BUCKET + ".files"]  # no host to commit it (outside nemesyst): at once
        files.update_one({"_id": file_id}, {"$set": {"metadata.pending": False}})
        newest = list(files.find({"metadata.run": run, "metadata.script": key, "metadata.pending": {"$ne": True}},
                                 {"_id": 1}, sort=[("metadata.step", -1), ("uploadDate", -1), ("_id", -1)]))
        for old in newest[self._checkpoint_keep():]:
            bucket.delete(old["_id"])

    def load_checkpoint(self, path: str | None = None) -> tuple[bytes | str, int, dict[str, Any]] | None:
        """The newest complete checkpoint of this learner in this run: None when there is none yet, else
        (data, step, metadata), data the bytes, or with path the file written there (path returned). One whose
        chunks are missing or whose sha256 does not match is passed over with a warning naming it; when none is
        usable, RuntimeError names each one tried."""
        self._checkpoint_own_random()
        run, key = os.environ.get("NEMESYST_RUN_ID"), self._checkpoint_key()
        database = self.connect()
        files = list(database[self.CHECKPOINT_BUCKET + ".files"].find(
            {"metadata.run": run, "metadata.script": key, "metadata.pending": {"$ne": True}},
            sort=[("metadata.step", -1), ("uploadDate", -1), ("_id", -1)]))
        part = Path(path + ".part") if path else None
        tried: list[str] = []
        for doc in files:
            meta = doc.get("metadata") or {}
            name = doc.get("filename", str(doc["_id"]))
            sha = hashlib.sha256()
            try:
                grid = BoundedGridOut.open(database, self.CHECKPOINT_BUCKET, doc["_id"])
                with (part.open("wb") if part else io.BytesIO()) as out:
                    for block in iter(lambda: grid.read(1 << 20), b""):
                        sha.update(block)
                        out.write(block)
                    if sha.hexdigest() != meta.get("sha256"):
                        raise gridfs.errors.CorruptGridFile("its sha256 does not match what was saved")
                    data = path if path else out.getvalue()
            except (gridfs.errors.GridFSError, pymongo.errors.PyMongoError) as e:
                if part and part.exists():
                    part.unlink()
                tried.append(f"'{name}' ({e})")
                _log(4, f"checkpoint: passed over '{name}': {e}")
                continue
            if part:
                os.replace(part, path)
            if tried:  # an older one than the newest: the steps after it are logged again, once
                database["nemesyst_metrics"].delete_many({"run": run, "script": key,
                                                          "step": {"$gt": int(meta.get("step", 0))}})
            return data, int(meta.get("step", 0)), dict(meta.get("metadata") or {})
        if tried:
            raise RuntimeError(f"no usable checkpoint of {key} in run {run}: tried {'; '.join(tried)}")
        return None

    def checkpoint_requested(self) -> bool:
        """True once a stop is coming (a time limit, a preemption, an interrupt): save a checkpoint now."""
        stop = os.environ.get("NEMESYST_STOP_FILE")
        return bool(stop) and os.path.exists(stop)

    def finish(self) -> None:
        """Cursors never read to their end are reported as incomplete."""
        for cursor in self._cursors:
            cursor._end(False)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._db = None


def _quick_exit() -> None:
    """pymongo joins its monitor threads at exit, waiting out their poll interval (about half a second after any use
    of a client): once every item is flushed and the clients are closed, the threads are daemons with nothing left to
    do, so that join is dropped. The script's own exit handlers still run.

    pymongo.monitor._shutdown_resources is private, and kept because no public way exists: MongoClient.close()
    stops the monitors, but that exit handler still joins each of their threads (up to a second each), and os._exit
    would skip the script's own exit handlers too. Where a pymongo lacks it, nothing is done: the exit is only
    slower."""
    try:
        import pymongo.monitor
        atexit.unregister(pymongo.monitor._shutdown_resources)
    except (ImportError, AttributeError):
        pass


_SECRETS: dict[str, str | None] = {}


def _read_password(variable: str = "NEMESYST_PASSWORD_FD") -> str | None:
    """Reads a secret from the inherited descriptor named by variable, once: later Mongo() objects reuse it."""
    if variable not in _SECRETS:
        _SECRETS[variable] = _read_fd(variable)
    return _SECRETS[variable]


def _read_fd(variable: str, environ: Mapping[str, str] | None = None) -> str | None:
    """All of the descriptor named by the environment variable, as text, the descriptor closed; None when the
    variable is unset or empty or the descriptor cannot be read."""
    fd = (os.environ if environ is None else environ).get(variable)
    if not fd:
        return None
    descriptor = int(fd)
    chunks = []
    try:
        while True:
            chunk = os.read(descriptor, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            os.close(descriptor)
    return b"".join(chunks).decode("utf-8")


def build_args(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The original's args dict from the host's resolved options (extended JSON, '-' names) and the script's place
    in the run, from environ (default os.environ)."""
    env = os.environ if environ is None else environ
    args: dict[str, Any] = {}
    path = env.get("NEMESYST_ARGS_FILE")
    if path:
        for key, value in json_util.loads(Path(path).read_text()).items():
            args[key.replace("-", "_")] = value
    args["process"] = int(env.get("NEMESYST_POSITION", "0"))
    args["stage"] = env.get("NEMESYST_STAGE")
    args["run_id"] = env.get("NEMESYST_RUN_ID")
    args["rank"] = int(env.get("NEMESYST_RANK", "0"))
    args["workdir"] = env.get("NEMESYST_WORKDIR")
    args["input_model"] = env.get("NEMESYST_INPUT_MODEL")
    args["input_model_id"] = env.get("NEMESYST_INPUT_MODEL_ID")
    args["group_rank"] = int(env.get("NEMESYST_GROUP_RANK", "0"))
    args["group_size"] = int(env.get("NEMESYST_GROUP_SIZE", "1"))
    return args


def _module_name(path: str) -> str:
    """The module name a script at the absolute path is imported under: unique to that path."""
    return "nemesyst_script_" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:16]


def load_script(path: str) -> ModuleType:
    """Imports path under a name derived from its absolute path, so same-named scripts never collide."""
    path = os.path.abspath(path)
    name = _module_name(path)
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _entry_point(module: ModuleType, script: str, name: str) -> Callable[..., Any]:
    """The script's entry point, or AttributeError naming both."""
    entry = getattr(module, name, None)
    if not callable(entry):
        raise AttributeError(f"{script} has no entry point {name}()")
    return entry


def _give(writer: ItemWriter, result: Any) -> None:
    """What the entry point returned to the host: one item (a dict, a tuple, None) or each one it yields."""
    if isinstance(result, (dict, tuple)) or result is None:
        writer.item(result)
    else:
        for item in result:
            writer.item(item)


def run(script: str) -> None:
    """Runs the script's entry point; its items go to the host, then the end record. On success the clients are
    closed; on a failure they are left to the process's end (closing one ends its sessions on the server, which may
    be what failed)."""
    with ItemWriter(int(os.environ["NEMESYST_ITEM_FD"]), os.environ.get("NEMESYST_WORKDIR")) as writer:
        module = load_script(script)
        entry = _entry_point(module, script, os.environ.get("NEMESYST_ENTRY_POINT") or "main")
        args = build_args()
        db = Mongo(args, on_consumed=writer.consumed, on_model_used=writer.model_used, on_metric=writer.metric,
                   on_flush=writer.flush, on_checkpoint=writer.checkpoint_commit)
        _give(writer, entry(args=args, db=db))
        db.finish()
        writer.end()
    db.close()
    _quick_exit()


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write(f"usage: {argv[0]} SCRIPT.py (run by nemesyst)\n")
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
