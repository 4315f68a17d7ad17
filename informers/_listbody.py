"""A LIST answer split into its items' raw JSON, so the items are decoded one at a time.

``orjson.loads`` of a one-piece list of 10,000 pods builds the whole tree of dicts at once: it is
slow (the cyclic GC walks the growing tree) and the strings the store keeps get allocated among
the tree's blocks, so after the tree is freed ~1 MiB pymalloc arenas stay pinned by a few live
blocks each (~390 MB retained for a 67 MB body; bench/README.md, "Optimisations (issue 11)").
``decode_list_body`` instead validates the body and hands out each item as a ``memoryview`` of
its JSON (msgspec ``Raw``: spans of the body, no copy); the informer decodes, transforms and
stores one item before it decodes the next. This is the one module that imports msgspec.
Invariant: a body that is not valid JSON, not a List object, or has an item that is not an
object with ``metadata.name``, raises ``MalformedResponseError`` before anything is handed out.

The initial list also skips building dicts at all where it can: ``parse_item`` reads only an
object's identity (msgspec skips the rest) and cuts ``metadata.managedFields`` out of the JSON
bytes, which then go into the store as they are (``RawItem``); the dict, ``strip`` and re-encode
of the general path cost about twice as much per pod (bench/peers/optimisations.md, entry 4).
``split_watch_line`` does the same for a streaming list's ADDED events. Either returns ``None``
for anything unusual (odd types, a duplicated or re-spelled key, whitespace), and the caller
takes the general path, whose checks and errors are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import orjson

from .errors import MalformedResponseError
from .objects import RawObject, make_key

__all__ = [
    "InitApplyItem",
    "RawInitApply",
    "RawItem",
    "RawListPage",
    "decode_list_body",
    "parse_item",
    "split_watch_line",
]


class _Metadata(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1)]


class _ItemHead(msgspec.Struct):
    metadata: _Metadata


class _ListBody(msgspec.Struct):
    metadata: dict[str, Any]
    items: list[msgspec.Raw] | None = None
    kind: Any = None
    apiVersion: Any = None


class _Identity(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    namespace: str = ""
    uid: str = ""
    resourceVersion: Annotated[str, msgspec.Meta(min_length=1)] = "-"  # "-": absent (rejected below)
    managedFields: msgspec.Raw = msgspec.Raw()  # empty: absent


class _Object(msgspec.Struct):
    metadata: _Identity
    kind: str | None = None
    apiVersion: str | None = None


class _Event(msgspec.Struct):
    type: str
    object: msgspec.Raw


_BODY = msgspec.json.Decoder(_ListBody)
_HEAD = msgspec.json.Decoder(_ItemHead)
_OBJECT = msgspec.json.Decoder(_Object)
_EVENT = msgspec.json.Decoder(_Event)
_MANAGED_FIELDS = b'"managedFields":'


@dataclass(frozen=True, slots=True)
class RawItem:
    """One object as compact JSON bytes (``managedFields`` already cut out if asked), with the
    identity the store files it under; ``decode()`` builds the dict."""

    data: bytes
    name: str
    namespace: str
    uid: str
    resource_version: str

    @property
    def key(self) -> str:
        return make_key(self.namespace, self.name)

    def decode(self) -> RawObject:
        return orjson.loads(self.data)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class InitApplyItem:
    """An ``InitApply`` of a streaming list whose object was parsed by ``parse_item``."""

    item: RawItem


def parse_item(
    data: bytes | memoryview, *, strip_managed_fields: bool, kind: str | None = None, api_version: str | None = None
) -> RawItem | None:
    """Read an object's identity without decoding it; ``None`` sends the caller down the general
    path (module docstring). ``kind``/``api_version`` are added when the object lacks them (list
    items omit them)."""
    try:
        head = _OBJECT.decode(data)
    except msgspec.DecodeError:
        return None
    meta = head.metadata
    if meta.resourceVersion == "-":
        return None
    raw = bytes(data)
    managed = meta.managedFields
    if strip_managed_fields and len(managed):
        cut = _cut_managed_fields(raw, managed)
        if cut is None:
            return None
        raw = cut
    missing: list[bytes] = []
    if head.kind is None and kind:
        missing.append(b'"kind":' + orjson.dumps(kind))
    if head.apiVersion is None and api_version:
        missing.append(b'"apiVersion":' + orjson.dumps(api_version))
    if missing:
        if not raw.startswith(b"{"):
            return None
        joined = b",".join(missing)
        raw = b"{" + joined + (b"," if raw[1:2] != b"}" else b"") + raw[1:]
    return RawItem(raw, meta.name, meta.namespace, meta.uid, meta.resourceVersion)


def _cut_managed_fields(raw: bytes, value: msgspec.Raw) -> bytes | None:
    """``raw`` without its one ``"managedFields":<value>`` member, or ``None`` if that member is not
    found exactly once, spelled compactly, with the bytes msgspec gave for its value."""
    at = raw.find(_MANAGED_FIELDS)
    if at < 0:
        return None  # spelled otherwise (escaped, spaced): take the general path
    span = memoryview(value)
    start = at + len(_MANAGED_FIELDS)
    end = start + len(span)
    # startswith, not ==: comparing bytes with a memoryview goes item by item (~20x slower).
    if not raw.startswith(span, start) or raw.find(_MANAGED_FIELDS, end) >= 0:
        return None  # not that member's value, or a second such member: ambiguous
    whole = memoryview(raw)  # join views: one copy, not three
    if raw[end : end + 1] == b",":
        return b"".join((whole[:at], whole[end + 1 :]))
    if raw[at - 1 : at] == b",":
        return b"".join((whole[: at - 1], whole[end:]))
    return b"".join((whole[:at], whole[end:]))  # the object's only member


def split_watch_line(line: bytes) -> tuple[str, memoryview] | None:
    """A watch line's ``type`` and its ``object`` as raw JSON; ``None`` if it is not that shape."""
    try:
        event = _EVENT.decode(line)
    except msgspec.DecodeError:
        return None
    return event.type, memoryview(event.object)


@dataclass(frozen=True, slots=True)
class RawListPage:
    """One LIST page: its ``kind``, ``apiVersion`` and ``metadata``; each item still as raw JSON,
    or already read by ``parse_item`` when the caller asked for that."""

    kind: Any
    api_version: Any
    metadata: dict[str, Any]
    items: list[memoryview | RawItem]

    @property
    def item_kind(self) -> str | None:
        """The items' ``kind`` (``PodList`` -> ``Pod``), which list items omit."""
        kind = self.kind
        return kind[:-4] if isinstance(kind, str) and kind.endswith("List") else None

    @property
    def item_api_version(self) -> str | None:
        return self.api_version if isinstance(self.api_version, str) else None


@dataclass(frozen=True, slots=True)
class RawInitApply:
    """An ``InitApply`` whose object is still JSON: ``decode()`` builds it (with the ``kind`` and
    ``apiVersion`` that list items omit) where it is stored, one item at a time."""

    data: memoryview
    kind: str | None
    api_version: str | None

    def decode(self) -> RawObject:
        obj: RawObject = orjson.loads(self.data)
        if self.kind and "kind" not in obj:
            obj["kind"] = self.kind
        if self.api_version and "apiVersion" not in obj:
            obj["apiVersion"] = self.api_version
        return obj


def decode_list_body(data: bytes, *, raw_initial: bool | None = None) -> RawListPage:
    """Validate a LIST answer and split out its items (see the module invariant). ``raw_initial``
    ``True``/``False``: hand each item out as ``parse_item`` reads it (``managedFields`` cut out or
    kept) where it can, so no item's head is decoded twice; ``None``: raw JSON only."""
    try:
        body = _BODY.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise MalformedResponseError(f"list body is not a List object: {exc}") from None
    page = RawListPage(kind=body.kind, api_version=body.apiVersion, metadata=body.metadata, items=[])
    kind, api_version = page.item_kind, page.item_api_version
    items = page.items
    for index, raw in enumerate(body.items or []):
        view = memoryview(raw)
        if raw_initial is not None:
            item = parse_item(view, strip_managed_fields=raw_initial, kind=kind, api_version=api_version)
            if item is not None:  # it has a name: validated
                items.append(item)
                continue
        try:
            _HEAD.decode(view)
        except msgspec.DecodeError as exc:
            raise MalformedResponseError(f"list item {index} is not an object with metadata.name: {exc}") from None
        items.append(view)
    return page
