"""Identity and metadata accessors on raw Kubernetes objects (plain dicts decoded by orjson).

informerd never turns API objects into model classes on the hot path; everything downstream of the
decoder works on the ``dict`` the JSON became. This module is the one place that knows where the
identity fields live (``metadata.namespace``, ``metadata.name``, ``metadata.uid``, ...), so the
store, indexers, watcher and handlers never spell those paths themselves.
Invariant: the accessors never mutate their argument and never raise on a missing optional field
(they return ``None`` or an empty value); only ``object_key``/``split_key`` raise, and only
``ObjectKeyError``. ``strip_managed_fields`` is the one deliberate mutator (a transform).
"""

# No ``from __future__ import annotations`` here: it would clash with the ``annotations`` accessor.
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .errors import InformerdError

__all__ = [
    "ObjectKeyError",
    "RawObject",
    "annotations",
    "controller_owner",
    "deletion_timestamp",
    "generation",
    "labels",
    "make_key",
    "name",
    "namespace",
    "object_key",
    "owner_references",
    "resource_version",
    "split_key",
    "strip_managed_fields",
    "uid",
]

RawObject = dict[str, Any]
"""A Kubernetes object as decoded from JSON: ``{"apiVersion", "kind", "metadata", ...}``."""

# Shared empty results: returned for missing fields so callers can iterate without None checks.
# They are immutable on purpose, so a caller cannot fill the shared instance by accident.
_EMPTY_MAPPING: Mapping[str, str] = MappingProxyType({})
_NO_OWNERS: tuple[Mapping[str, Any], ...] = ()


class ObjectKeyError(InformerdError, ValueError):
    """An object has no usable identity (no ``metadata.name``) or a key string is malformed."""


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    # ``type(x) is dict`` first: orjson always yields dicts, and the ABC check costs ~1 us a call.
    meta = obj.get("metadata") if type(obj) is dict or isinstance(obj, Mapping) else None
    if type(meta) is dict or isinstance(meta, Mapping):
        return meta
    return _EMPTY_MAPPING


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def object_key(obj: Mapping[str, Any]) -> str:
    """``"namespace/name"``, or ``"name"`` for cluster-scoped objects (client-go's key format)."""
    meta = _metadata(obj)
    obj_name = meta.get("name")
    if not isinstance(obj_name, str) or not obj_name:
        raise ObjectKeyError(f"object has no metadata.name, cannot make a key: {_describe(obj)}")
    ns = meta.get("namespace")
    return make_key(ns if isinstance(ns, str) else "", obj_name)


def make_key(namespace: str, name: str) -> str:
    """The key of ``name`` in ``namespace`` (``""``: cluster-scoped), as ``object_key`` makes it."""
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str, str]:
    """Split a key into ``(namespace, name)``; namespace is ``""`` for cluster-scoped keys."""
    parts = key.split("/")
    if len(parts) == 1 and parts[0]:
        return "", parts[0]
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    raise ObjectKeyError(f"unexpected key format {key!r}: want 'namespace/name' or 'name'")


def uid(obj: Mapping[str, Any]) -> str | None:
    return _str_or_none(_metadata(obj).get("uid"))


def resource_version(obj: Mapping[str, Any]) -> str | None:
    return _str_or_none(_metadata(obj).get("resourceVersion"))


def generation(obj: Mapping[str, Any]) -> int | None:
    value = _metadata(obj).get("generation")
    # bool is an int subclass; a JSON true is not a generation.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def namespace(obj: Mapping[str, Any]) -> str | None:
    """The namespace, or ``None`` for cluster-scoped objects."""
    return _str_or_none(_metadata(obj).get("namespace"))


def name(obj: Mapping[str, Any]) -> str | None:
    return _str_or_none(_metadata(obj).get("name"))


def labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """The labels mapping (the object's own, not a copy); an empty read-only mapping if absent."""
    value = _metadata(obj).get("labels")
    return value if type(value) is dict or isinstance(value, Mapping) else _EMPTY_MAPPING


def annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """The annotations mapping (the object's own, not a copy); an empty read-only one if absent."""
    value = _metadata(obj).get("annotations")
    return value if type(value) is dict or isinstance(value, Mapping) else _EMPTY_MAPPING


def owner_references(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The ``metadata.ownerReferences`` entries that are mappings, in order."""
    value = _metadata(obj).get("ownerReferences")
    if not isinstance(value, list) or not value:
        return _NO_OWNERS
    return tuple(ref for ref in value if isinstance(ref, Mapping))


def controller_owner(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The owner reference with ``controller: true`` (at most one is allowed by the API)."""
    for ref in owner_references(obj):
        if ref.get("controller") is True:
            return ref
    return None


def deletion_timestamp(obj: Mapping[str, Any]) -> str | None:
    """The RFC 3339 ``metadata.deletionTimestamp`` if the object is being deleted."""
    return _str_or_none(_metadata(obj).get("deletionTimestamp"))


def strip_managed_fields(obj: RawObject) -> RawObject:
    """Drop ``metadata.managedFields`` in place and return the same dict (the default transform).

    Like controller-runtime's ``TransformStripManagedFields`` this edits the object it is given:
    the informer owns the freshly decoded dict, and copying it would cost more than it saves.
    Nothing else is removed (``last-applied-configuration`` annotations stay).
    """
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def _describe(obj: Any) -> str:
    if not isinstance(obj, Mapping):
        return f"<{type(obj).__name__}>"
    return f"kind={obj.get('kind')!r} metadata keys={sorted(_metadata(obj))!r}"
