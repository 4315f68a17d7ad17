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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import orjson

from .errors import MalformedResponseError
from .objects import RawObject

__all__ = ["RawInitApply", "RawListPage", "decode_list_body"]


class _Metadata(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1)]


class _ItemHead(msgspec.Struct):
    metadata: _Metadata


class _ListBody(msgspec.Struct):
    metadata: dict[str, Any]
    items: list[msgspec.Raw] | None = None
    kind: Any = None
    apiVersion: Any = None


_BODY = msgspec.json.Decoder(_ListBody)
_HEAD = msgspec.json.Decoder(_ItemHead)


@dataclass(frozen=True, slots=True)
class RawListPage:
    """One LIST page: its ``kind``, ``apiVersion`` and ``metadata``, items still as raw JSON."""

    kind: Any
    api_version: Any
    metadata: dict[str, Any]
    items: list[memoryview]


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


def decode_list_body(data: bytes) -> RawListPage:
    """Validate a LIST answer and split out its items (see the module invariant)."""
    try:
        body = _BODY.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise MalformedResponseError(f"list body is not a List object: {exc}") from None
    raws = body.items or []
    items: list[memoryview] = []
    for index, raw in enumerate(raws):
        view = memoryview(raw)
        try:
            _HEAD.decode(view)
        except msgspec.DecodeError as exc:
            raise MalformedResponseError(f"list item {index} is not an object with metadata.name: {exc}") from None
        items.append(view)
    return RawListPage(kind=body.kind, api_version=body.apiVersion, metadata=body.metadata, items=items)
