"""The informer cache: a thread-safe, indexed store of raw Kubernetes objects kept as compact JSON.

Each cached object is held as its exact-size ``orjson`` bytes plus the few strings the store needs
(key, UID, resourceVersion, index values) in one plain tuple; ``StoredObject`` is its read-only
view. Bytes, strings and (once the collector has seen them) tuples of them are ignored by the
GC, so a large cache neither slows inserts nor causes long collection pauses, and every read
decodes a fresh dict that the caller owns: nothing a reader does can corrupt the cache. One writer at a time (writes are serialised by a lock, so extra
writers are safe but wait); any number of readers in threads or on an event loop, who never wait
for a write's computation, only for a short publish step.
Invariant: readers always see a consistent state — every key in an index resolves to a cached
object filed under that value, and a ``replace`` is visible all at once or not at all.

Why bytes and not dicts (measured in ``bench/store_forms.py``; figures in bench/README.md, "The
store's storage form"): kept dicts are GC-tracked, so a large cache makes inserts about 3x slower
and full collections ~100x longer, and a safe read must deep-copy them; exact-size bytes avoid
both at the price of a decode per read (~17 us for a 4 KB pod), so hot readers that only need a
field or two should use indexes or ``get_raw``. The store keeps what it is given: transforms are
the informer's (one owner). An index function that raises, or returns something that is not
strings, files that object under no value of that index; the failure is logged with the index
and the key and counted (``statistics().index_errors``), and the object is still stored.

Opt-in compressed form: given a ``codec`` (``informers.compression``), an entry holds what the
codec made of the JSON (zstd with a trained dictionary: ~11x smaller) and every read decodes
through it; keys, index values and the diff of a relist are the same in both forms.
"""

from __future__ import annotations

import builtins
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import orjson

from ._log import get_logger
from .errors import InformerdError
from .events import DeletedFinalStateUnknown
from .indexers import (
    NAMESPACE_INDEX,
    UID_INDEX,
    IndexerError,
    IndexFunc,
    index_by_namespace,
    index_by_uid,
    index_values,
)
from .objects import RawObject, object_key, resource_version, uid

if TYPE_CHECKING:
    from ._listbody import RawItem
    from .compression import CodecStatistics, StoreCodec

__all__ = [
    "IndexConflictError",
    "IndexNotFoundError",
    "ReplaceBuffer",
    "ReplaceBufferClosedError",
    "ReplaceResult",
    "Store",
    "StoreStatistics",
    "StoredObject",
]

_log = get_logger(__name__)


class IndexNotFoundError(InformerdError, LookupError):
    """A read named an index the store does not have."""


class IndexConflictError(InformerdError, ValueError):
    """``add_indexers`` named an index that already exists."""


class ReplaceBufferClosedError(InformerdError):
    """A replace buffer was used after commit/abort, or after a newer ``begin_replace``."""


class StoredObject(NamedTuple):
    """A read-only view of one cached object; decode it to get a dict the caller owns."""

    data: bytes
    """The bytes held by the cache: the exact JSON, or its compressed form if the store has a codec
    (``to_json()`` gives the JSON either way)."""
    key: str
    uid: str
    resource_version: str
    codec: StoreCodec | None = None
    """The store's codec (``informers.compression``), or ``None`` when ``data`` is plain JSON."""

    def decode(self) -> RawObject:
        """A fresh dict of the object; the caller owns it and may mutate it freely."""
        if self.codec is None:
            return orjson.loads(self.data)  # type: ignore[no-any-return]
        return self.codec.loads(self.data)

    def to_json(self) -> bytes:
        """The object's JSON bytes (decompressed if the store compresses)."""
        return self.data if self.codec is None else self.codec.decode(self.data)


# A cache entry is a *plain* tuple (data, key, uid, resourceVersion, index values): CPython stops
# GC-tracking exact tuples of untracked items, but never instances of tuple subclasses such as
# NamedTuple, which measured ~0.6 us per cached object on every full collection.
# ``index values`` holds one tuple of values per index, in the store's indexer order.
_Entry = tuple[bytes, str, str, str, tuple[tuple[str, ...], ...]]
_DATA: Final = 0
_KEY: Final = 1
_UID: Final = 2
_RV: Final = 3
_IDX: Final = 4


@dataclass(frozen=True, slots=True)
class ReplaceResult:
    """What a ``replace``/``commit`` changed; objects are ``StoredObject`` views (decode lazily).

    Decoding is left to the caller so a relist of 10,000 objects does not hold 10,000 dicts at once.
    """

    resource_version: str
    added: tuple[StoredObject, ...]
    updated: tuple[tuple[StoredObject, StoredObject], ...]
    """``(old, new)`` pairs of one object (same UID) whose resourceVersion changed."""
    unchanged: tuple[StoredObject, ...]
    """Relisted objects with the same UID and resourceVersion: the cached entry was kept as is."""
    deleted: tuple[DeletedFinalStateUnknown, ...]
    """Objects cached before but missing from the new list, with their last known state; also an
    object whose name now belongs to a new UID (deleted and re-created meanwhile: the new one is
    in ``added``)."""


@dataclass(frozen=True, slots=True)
class StoreStatistics:
    count: int
    bytes_held: int
    """Sum of the cached payloads, compressed ones as held (excludes per-entry and index overhead,
    ~0.3 KB/object)."""
    index_sizes: Mapping[str, int]
    """Distinct values per index."""
    upserts: int
    deletes: int
    replaces: int
    reused_on_last_replace: int
    """Entries a relist kept because UID and resourceVersion were unchanged."""
    resource_version: str | None
    index_errors: int
    """Objects an index function failed on (raised, or returned non-strings): stored, unindexed there."""
    codec: CodecStatistics | None = None
    """The compressed form's state (``informers.compression``); ``None`` for plain JSON."""


# An index maps a value to the key filed under it, or to a set once there are two or more.
# Most index values (UIDs, owner UIDs, many labels) have one key; a str instead of a set saves
# ~200 bytes and a GC-tracked object per value.
_Bucket = str | set[str]
_Index = dict[str, _Bucket]


def _bucket_add(index: _Index, value: str, key: str) -> None:
    bucket = index.get(value)
    if bucket is None:
        index[value] = key
    elif isinstance(bucket, str):
        if bucket != key:
            index[value] = {bucket, key}
    else:
        bucket.add(key)


def _bucket_remove(index: _Index, value: str, key: str) -> None:
    bucket = index.get(value)
    if bucket is None:
        return
    if isinstance(bucket, str):
        if bucket == key:
            del index[value]
        return
    bucket.discard(key)
    if len(bucket) == 1:
        index[value] = next(iter(bucket))
    elif not bucket:
        del index[value]


def _bucket_keys(bucket: _Bucket | None) -> list[str]:
    if bucket is None:
        return []
    if isinstance(bucket, str):
        return [bucket]
    return list(bucket)


_BUILTIN_FNS: tuple[IndexFunc, ...] = (index_by_namespace, index_by_uid)


class Store:
    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None, *, codec: StoreCodec | None = None) -> None:
        """``indexers``: extra named index functions; ``namespace`` and ``uid`` are always present.
        ``codec``: hold objects compressed (``informers.compression.store_codec``); default plain JSON."""
        self._names: tuple[str, ...] = (NAMESPACE_INDEX, UID_INDEX)
        self._fns: tuple[IndexFunc, ...] = _BUILTIN_FNS
        self._items: dict[str, _Entry] = {}
        self._indices: dict[str, _Index] = {NAMESPACE_INDEX: {}, UID_INDEX: {}}
        self._bytes = 0
        self._rv: str | None = None
        self._upserts = 0
        self._deletes = 0
        self._replaces = 0
        self._reused_last = 0
        self._index_errors = 0
        self._buffer_generation = 0
        # _write_lock serialises writers (long: decoding, dumping, index building);
        # _lock guards the published state and is held only for short pointer/index updates.
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        # --- the compressed form's hook (informers/compression.py); plain JSON when codec is None
        self._codec = codec
        self._loads: Any = orjson.loads if codec is None else codec.loads
        if indexers:
            self.add_indexers(indexers)

    def _decode(self, entry: _Entry) -> RawObject:
        return self._loads(entry[_DATA])  # type: ignore[no-any-return]

    def _view(self, entry: _Entry) -> StoredObject:
        return StoredObject(entry[_DATA], entry[_KEY], entry[_UID], entry[_RV], self._codec)

    def _compress_buffered(self, entries: dict[str, _Entry]) -> None:
        """A codec that trained on this list: compress the entries buffered before it did.

        Entries reused from the cache stay as they are, so the relist still reports them unchanged.
        """
        assert self._codec is not None
        reencode, cached = self._codec.reencode, self._items
        for key, e in entries.items():
            if e is not cached.get(key):
                entries[key] = (reencode(e[_DATA]), e[_KEY], e[_UID], e[_RV], e[_IDX])
        # --- end of the compressed form's hook

    # --- entry building (no shared state touched) ---------------------------------------------

    def _index_values(
        self, obj: RawObject, names: tuple[str, ...], fns: tuple[IndexFunc, ...]
    ) -> tuple[tuple[str, ...], ...]:
        intern = sys.intern  # index values repeat a lot (namespaces, labels): share the strings
        out: list[tuple[str, ...]] = []
        for name, fn in zip(names, fns, strict=True):
            try:
                out.append(tuple(intern(v) for v in index_values(name, fn, obj)))
            except IndexerError as exc:
                # One bad index function must not keep the object out of the cache.
                self._index_errors += 1
                out.append(())
                _log.error(
                    "index function failed; object stored without this index",
                    index=name,
                    key=_key_or_none(obj),
                    error=str(exc),
                )
        return tuple(out)

    def _entry(self, obj: RawObject, key: str, prev: _Entry | None) -> _Entry:
        obj_uid = uid(obj) or ""
        rv = resource_version(obj) or ""
        if prev is not None and rv and prev[_RV] == rv and prev[_UID] == obj_uid:
            return prev  # same object version: keep the cached bytes, hold no second copy
        values = self._index_values(obj, self._names, self._fns)
        # orjson over-allocates its output buffer; an exact copy saves ~3 KB per cached pod.
        data = bytes(memoryview(orjson.dumps(obj)))
        if self._codec is not None:
            data = self._codec.encode(data)
        return (data, key, obj_uid, rv, values)

    def _raw_entry(self, item: RawItem, prev: _Entry | None) -> _Entry:
        """``_entry`` for an object still as JSON (``informers._listbody.RawItem``): its bytes are
        kept as they are; only index functions beyond the built-in two need the dict."""
        rv = item.resource_version
        if prev is not None and prev[_RV] == rv and prev[_UID] == item.uid:
            return prev
        if self._fns == _BUILTIN_FNS:
            values: tuple[tuple[str, ...], ...] = ((sys.intern(item.namespace),), (item.uid,) if item.uid else ())
        else:
            values = self._index_values(item.decode(), self._names, self._fns)
        data = item.data if self._codec is None else self._codec.encode(item.data)
        return (data, item.key, item.uid, rv, values)

    def _file(self, key: str, old: _Entry | None, new: _Entry | None) -> None:
        """Move ``key`` from ``old``'s index values to ``new``'s; caller holds ``_lock``."""
        for i, name in enumerate(self._names):
            index = self._indices[name]
            old_vals = old[_IDX][i] if old is not None else ()
            new_vals = new[_IDX][i] if new is not None else ()
            if old_vals == new_vals:
                continue
            for v in old_vals:
                if v not in new_vals:
                    _bucket_remove(index, v, key)
            for v in new_vals:
                if v not in old_vals:
                    _bucket_add(index, v, key)

    # --- writes -----------------------------------------------------------------------------

    def upsert(self, obj: RawObject) -> RawObject | None:
        """Add or replace ``obj``; return the previous state, or ``None``."""
        old = self.upsert_view(obj)
        return old.decode() if old is not None else None

    def upsert_view(self, obj: RawObject) -> StoredObject | None:
        """``upsert`` returning the previous entry undecoded (the informer's hot path decodes it
        only if, and where, a handler needs it)."""
        key = object_key(obj)
        with self._write_lock:
            old = self._items.get(key)
            entry = self._entry(obj, key, old)
            with self._lock:
                self._items[key] = entry
                if entry is not old:
                    self._file(key, old, entry)
                    self._bytes += len(entry[_DATA]) - (len(old[_DATA]) if old is not None else 0)
                self._rv = entry[_RV] or self._rv
                self._upserts += 1
        return self._view(old) if old is not None else None

    def delete(self, obj_or_key: RawObject | DeletedFinalStateUnknown | str) -> RawObject | None:
        """Remove an object (given as object, tombstone or key); return its cached state or ``None``.

        Given an object, the store's resourceVersion advances to the object's (the deletion's).
        """
        old = self.delete_view(obj_or_key)
        return old.decode() if old is not None else None

    def delete_view(self, obj_or_key: RawObject | DeletedFinalStateUnknown | str) -> StoredObject | None:
        """``delete`` returning the removed entry undecoded."""
        if isinstance(obj_or_key, str):
            key, rv = obj_or_key, None
        elif isinstance(obj_or_key, DeletedFinalStateUnknown):
            key, rv = obj_or_key.key, None
        else:
            key, rv = object_key(obj_or_key), resource_version(obj_or_key)
        with self._write_lock:
            with self._lock:
                old = self._items.pop(key, None)
                if old is not None:
                    self._file(key, old, None)
                    self._bytes -= len(old[_DATA])
                    self._deletes += 1
                if rv:
                    self._rv = rv
        return self._view(old) if old is not None else None

    def replace(self, objects: Iterable[RawObject], resource_version: str) -> ReplaceResult:
        """Swap the whole content for ``objects`` at once; see ``ReplaceResult`` for the diff."""
        buffer = self.begin_replace()
        try:
            for obj in objects:
                buffer.add(obj)
        except BaseException:
            buffer.abort()
            raise
        return buffer.commit(resource_version)

    def begin_replace(self) -> ReplaceBuffer:
        """Start a buffered replace (for a list streamed page by page); invisible until commit.

        A newer ``begin_replace`` supersedes an open buffer, whose ``commit`` then fails.
        """
        with self._write_lock:
            self._buffer_generation += 1
            return ReplaceBuffer(self, self._buffer_generation)

    def _commit(self, buffer: ReplaceBuffer, resource_version: str) -> ReplaceResult:
        with self._write_lock:
            if buffer._generation != self._buffer_generation:
                raise ReplaceBufferClosedError("replace buffer was superseded by a newer one")
            self._buffer_generation += 1  # closes this buffer
            names, fns = self._names, self._fns
            entries = buffer._entries
            for key, e in entries.items():  # indexers added while the buffer was open
                done = len(e[_IDX])
                if done != len(names):
                    extra = self._index_values(self._decode(e), names[done:], fns[done:])
                    entries[key] = (e[_DATA], e[_KEY], e[_UID], e[_RV], e[_IDX] + extra)
            if self._codec is not None and self._codec.end_of_list():
                self._compress_buffered(entries)
            indices: dict[str, _Index] = {name: {} for name in names}
            index_list = [indices[name] for name in names]
            total = 0
            for key, e in entries.items():
                total += len(e[_DATA])
                for index, values in zip(index_list, e[_IDX], strict=True):
                    for v in values:
                        _bucket_add(index, v, key)
            old_items = self._items
            added: list[StoredObject] = []
            updated: list[tuple[StoredObject, StoredObject]] = []
            unchanged: list[StoredObject] = []
            view = self._view
            replaced: list[_Entry] = []
            for key, e in entries.items():
                old = old_items.get(key)
                if old is None:
                    added.append(view(e))
                elif old[_DATA] is e[_DATA]:  # the relist reused the cached entry
                    unchanged.append(view(e))
                elif old[_UID] != e[_UID]:  # deleted and re-created meanwhile: two objects
                    replaced.append(old)
                    added.append(view(e))
                else:
                    updated.append((view(old), view(e)))
            gone = [old for key, old in old_items.items() if key not in entries] + replaced
            with self._lock:
                self._items = entries
                self._indices = indices
                self._bytes = total
                self._rv = resource_version
                self._replaces += 1
                self._reused_last = len(unchanged)
            buffer._entries = {}
        return ReplaceResult(
            resource_version=resource_version,
            added=tuple(added),
            updated=tuple(updated),
            unchanged=tuple(unchanged),
            deleted=tuple(DeletedFinalStateUnknown(old[_KEY], self._decode(old)) for old in gone),
        )

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add named indexes and file every cached object under them (decodes each object once).

        Adding an index again with the very same function is a no-op (several consumers of one shared
        informer may each ask for it); the same name with another function raises.
        """
        with self._write_lock:
            existing = dict(zip(self._names, self._fns, strict=True))
            clash = sorted(n for n in indexers if n in existing and existing[n] is not indexers[n])
            if clash:
                raise IndexConflictError(f"indexes already exist with other functions: {', '.join(clash)}")
            indexers = {n: f for n, f in indexers.items() if n not in existing}
            if not indexers:
                return
            new_names = tuple(indexers)
            new_fns = tuple(indexers[n] for n in new_names)
            new_indices: dict[str, _Index] = {n: {} for n in new_names}
            items: dict[str, _Entry] = {}
            for key, e in self._items.items():
                extra = self._index_values(self._decode(e), new_names, new_fns)
                items[key] = (e[_DATA], e[_KEY], e[_UID], e[_RV], e[_IDX] + extra)
                for name, values in zip(new_names, extra, strict=True):
                    for v in values:
                        _bucket_add(new_indices[name], v, key)
            with self._lock:
                self._names += new_names
                self._fns += new_fns
                self._items = items
                self._indices = {**self._indices, **new_indices}

    # --- reads ------------------------------------------------------------------------------

    def get(self, key: str) -> RawObject | None:
        """A fresh dict of the object under ``key`` ("namespace/name" or "name"), or ``None``."""
        entry = self._items.get(key)  # one dict lookup on an immutable entry: atomic, no lock
        return self._decode(entry) if entry is not None else None

    def get_raw(self, key: str) -> bytes | None:
        """The cached JSON bytes of the object under ``key`` (immutable; no decoding cost unless
        the store compresses)."""
        entry = self._items.get(key)
        if entry is None:
            return None
        return entry[_DATA] if self._codec is None else self._codec.decode(entry[_DATA])

    def get_by_uid(self, object_uid: str) -> RawObject | None:
        with self._lock:
            keys = _bucket_keys(self._indices[UID_INDEX].get(object_uid))
            entry = self._items.get(keys[0]) if keys else None
        return self._decode(entry) if entry is not None else None

    def list(self) -> builtins.list[RawObject]:
        """Fresh dicts of every cached object, in no particular order."""
        with self._lock:
            entries = list(self._items.values())
        decode = self._decode
        return [decode(e) for e in entries]

    def list_views(self) -> builtins.list[StoredObject]:
        """Every cached object as an undecoded ``StoredObject`` (cheap: shares the cached bytes)."""
        with self._lock:
            entries = list(self._items.values())
        view = self._view
        return [view(e) for e in entries]

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._items)

    def _index(self, name: str) -> _Index:
        try:
            return self._indices[name]
        except KeyError:
            raise IndexNotFoundError(f"no index named {name!r}; have {', '.join(sorted(self._indices))}") from None

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        """Keys of the objects filed under ``value`` in index ``name``, in no particular order."""
        with self._lock:
            return _bucket_keys(self._index(name).get(value))

    def by_index(self, name: str, value: str) -> builtins.list[RawObject]:
        """Fresh dicts of the objects filed under ``value`` in index ``name``."""
        with self._lock:
            items = self._items
            entries = [items[k] for k in _bucket_keys(self._index(name).get(value))]
        decode = self._decode
        return [decode(e) for e in entries]

    def list_index_values(self, name: str) -> builtins.list[str]:
        """The values of index ``name`` that have at least one object."""
        with self._lock:
            return list(self._index(name))

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    @property
    def resource_version(self) -> str | None:
        """The resourceVersion of the last applied write (upsert, delete with object, replace)."""
        return self._rv

    @property
    def index_names(self) -> tuple[str, ...]:
        return self._names

    def statistics(self) -> StoreStatistics:
        with self._lock:
            return StoreStatistics(
                count=len(self._items),
                bytes_held=self._bytes,
                index_sizes=MappingProxyType({n: len(i) for n, i in self._indices.items()}),
                upserts=self._upserts,
                deletes=self._deletes,
                replaces=self._replaces,
                reused_on_last_replace=self._reused_last,
                resource_version=self._rv,
                index_errors=self._index_errors,
                codec=self._codec.statistics() if self._codec is not None else None,
            )


class ReplaceBuffer:
    """Collects a streamed (re)list; ``commit`` swaps it into the store atomically.

    Objects are turned into compact entries as they arrive (the dicts are not kept), and an object
    whose UID and resourceVersion match the cached one reuses the cached entry. Usable as a context
    manager: leaving the block without ``commit`` aborts the buffer.
    """

    def __init__(self, store: Store, generation: int) -> None:
        self._store = store
        self._generation = generation
        self._entries: dict[str, _Entry] = {}
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ReplaceBufferClosedError("replace buffer already committed or aborted")
        if self._generation != self._store._buffer_generation:
            raise ReplaceBufferClosedError("replace buffer was superseded by a newer one")

    def add(self, obj: RawObject) -> None:
        """Add one listed object; a later object with the same key wins."""
        self._check_open()
        store = self._store
        key = object_key(obj)
        self._entries[key] = store._entry(obj, key, store._items.get(key))

    def add_raw(self, item: RawItem) -> None:
        """``add`` for an object still as JSON (the initial list's fast path, ``_listbody``)."""
        self._check_open()
        store = self._store
        key = item.key
        self._entries[key] = store._raw_entry(item, store._items.get(key))

    def commit(self, resource_version: str) -> ReplaceResult:
        """Make the buffered objects the store's whole content, at ``resource_version``."""
        self._check_open()
        try:
            return self._store._commit(self, resource_version)
        finally:
            self._closed = True

    def abort(self) -> None:
        """Drop the buffer; the store is unchanged. Safe to call more than once."""
        self._closed = True
        self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __enter__(self) -> ReplaceBuffer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self._closed:
            self.abort()


def _key_or_none(obj: RawObject) -> str | None:
    try:
        return object_key(obj)
    except InformerdError:
        return None
