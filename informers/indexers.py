"""Index functions for the store: map an object to the index values it is filed under.

An ``IndexFunc`` takes a raw object and returns the values to file it under in one named index;
it may return several values (an object with two owners, a list of node names) or none (the object
is not in that index). The store calls it once per write and keeps the results, so index reads
never call it. Built-ins cover the usual lookups: by namespace, by UID, by controller-owner UID and
by the value of one label.
Invariant: ``index_values`` always yields a tuple of distinct ``str`` in first-seen order, whatever
the function returned (``None``, one ``str``, or any iterable of ``str``), or raises ``IndexerError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from .errors import InformerdError
from .objects import controller_owner, labels, namespace, uid

__all__ = [
    "NAMESPACE_INDEX",
    "OWNER_UID_INDEX",
    "UID_INDEX",
    "IndexFunc",
    "IndexerError",
    "index_by_label",
    "index_by_namespace",
    "index_by_owner_uid",
    "index_by_uid",
    "index_values",
]

IndexFunc: TypeAlias = Callable[[dict[str, Any]], Iterable[str]]

NAMESPACE_INDEX = "namespace"
"""Name of the default namespace index (cluster-scoped objects are filed under ``""``)."""
UID_INDEX = "uid"
"""Name of the default UID index (backs ``Store.get_by_uid``)."""
OWNER_UID_INDEX = "owner-uid"
"""Suggested name for ``index_by_owner_uid`` (not installed by default)."""


class IndexerError(InformerdError):
    """An index function raised or returned something other than strings."""


def index_by_namespace(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The namespace; ``""`` for cluster-scoped objects (as client-go's namespace index)."""
    return (namespace(obj) or "",)


def index_by_uid(obj: Mapping[str, Any]) -> tuple[str, ...]:
    value = uid(obj)
    return (value,) if value else ()


def index_by_owner_uid(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The UID of the controlling owner (``controller: true``); none if there is no controller."""
    owner = controller_owner(obj)
    owner_uid = owner.get("uid") if owner is not None else None
    return (owner_uid,) if isinstance(owner_uid, str) and owner_uid else ()


def index_by_label(key: str) -> IndexFunc:
    """An index function filing each object under the value of its label ``key`` (if set)."""

    def by_label(obj: Mapping[str, Any]) -> tuple[str, ...]:
        value = labels(obj).get(key)
        return (value,) if isinstance(value, str) else ()

    by_label.__name__ = by_label.__qualname__ = f"index_by_label[{key}]"
    return by_label


def index_values(index_name: str, fn: IndexFunc, obj: dict[str, Any]) -> tuple[str, ...]:
    """Call ``fn`` and normalise its result; a bare ``str`` counts as one value, not characters."""
    try:
        result = fn(obj)
    except Exception as exc:
        raise IndexerError(f"index function for {index_name!r} raised {exc!r}") from exc
    if result is None:
        return ()
    if isinstance(result, str):
        return (result,)
    if isinstance(result, tuple) and len(result) <= 1:
        values: tuple[Any, ...] = result  # the common fast path: built-ins return 0/1-tuples
    else:
        try:
            values = tuple(dict.fromkeys(result))  # de-duplicate, keep order
        except TypeError as exc:
            raise IndexerError(
                f"index function for {index_name!r} returned {type(result).__name__}, want an iterable of str"
            ) from exc
    for value in values:
        if not isinstance(value, str):
            raise IndexerError(
                f"index function for {index_name!r} returned a {type(value).__name__} value "
                f"({value!r}); index values must be str"
            )
    return values
