"""The fake apiserver's storage: objects by resource, one cluster-wide resourceVersion, history.

``FakeStore`` plays etcd for the fake kit. Every committed change takes the next value of one
cluster-wide counter as its resourceVersion (as etcd's revision does), is kept in a per-resource
change log, and is offered at once to the open watches of that resource (``Listener.offer``), under
the same lock, so a watch registered together with its replay can see no gap and no duplicate.
The log answers lists at an exact version and paginated lists (each page reads the snapshot of
its first page), and replays watches from an old version; ``compact(rv)`` makes versions older
than ``rv`` unavailable (410), as an etcd compaction does.
Invariant: ``commit`` is the only writer; the resourceVersion of each change is greater than that
of every earlier change, and listeners see changes in that order, each exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ..resources import Resource

__all__ = ["Change", "FakeStore", "Key", "Kind", "Listener", "clone"]

Key = tuple[str, str]
"""(namespace or ``""``, name): an object's identity within its resource."""

_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


def clone(obj: Any) -> Any:
    """A deep copy of a JSON document (the store never shares a dict it keeps)."""
    return orjson.loads(orjson.dumps(obj))


@dataclass(frozen=True, slots=True)
class Kind:
    """A served resource and how the fake treats it."""

    resource: Resource
    status_subresource: bool

    @property
    def storage(self) -> tuple[str, str]:
        """Versions of one group/plural share their objects (as the apiserver's storage does)."""
        return (self.resource.group, self.resource.plural)


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write: ``obj`` is the state after it (a DELETED change: the final state,
    carrying the deletion's resourceVersion), ``old`` the state before (None for ADDED)."""

    rv: int
    type: str
    key: Key
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Listener(Protocol):
    """An open watch; ``offer`` is called under the store's lock and must not block."""

    def offer(self, change: Change) -> None: ...


class FakeStore:
    """Thread-safe; ``lock`` (re-entrant) guards everything, ``changed`` is notified on each commit."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._rv = 0
        self._compacted = 0
        self._kinds: dict[tuple[str, str, str], Kind] = {}
        self._objects: dict[tuple[str, str], dict[Key, dict[str, Any]]] = {}
        self._log: dict[tuple[str, str], list[Change]] = {}
        self._listeners: dict[tuple[str, str], list[Listener]] = {}

    # -- resources -------------------------------------------------------------------------------

    def register(self, resource: Resource, *, status_subresource: bool = False) -> Kind:
        """Serve ``resource`` (again: replaces its settings); verbs default to all of them."""
        if not resource.verbs:
            resource = Resource(
                resource.group, resource.version, resource.plural, resource.kind, resource.namespaced, _VERBS
            )
        kind = Kind(resource, status_subresource)
        with self.lock:
            self._kinds[(resource.group, resource.version, resource.plural)] = kind
            self._objects.setdefault(kind.storage, {})
            self._log.setdefault(kind.storage, [])
            self._listeners.setdefault(kind.storage, [])
        return kind

    def kinds(self) -> list[Kind]:
        """Served resources in registration order."""
        with self.lock:
            return list(self._kinds.values())

    def find(self, group: str, version: str, plural: str) -> Kind | None:
        with self.lock:
            return self._kinds.get((group, version, plural))

    def find_any(self, name: str) -> Kind | None:
        """A served resource by plural, ``kind``, ``version/plural`` or ``group/version/plural``."""
        parts = name.split("/")
        with self.lock:
            for kind in self._kinds.values():
                r = kind.resource
                if len(parts) == 1 and name in (r.plural, r.kind):
                    return kind
                if len(parts) >= 2 and "/".join(parts[:-1]) == r.api_version and parts[-1] in (r.plural, r.kind):
                    return kind
        return None

    # -- versions --------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    @property
    def compacted(self) -> int:
        """Versions below this one are gone (0: nothing compacted yet)."""
        with self.lock:
            return self._compacted

    def compact(self, rv: int | None = None) -> int:
        """Forget versions older than ``rv`` (default: the current one); returns the new floor."""
        with self.lock:
            target = self._rv if rv is None else min(rv, self._rv)
            self._compacted = max(self._compacted, target)
            return self._compacted

    # -- reads -----------------------------------------------------------------------------------

    def get(self, kind: Kind, key: Key) -> dict[str, Any] | None:
        """The live object (the store's own dict: read it, never mutate it)."""
        with self.lock:
            return self._objects[kind.storage].get(key)

    def snapshot(self, kind: Kind, rv: int | None = None) -> dict[Key, dict[str, Any]]:
        """The objects as of ``rv`` (default: now), rebuilt from the log for an older version.
        The dicts are the store's own: serialise them, never mutate them."""
        with self.lock:
            if rv is None or rv >= self._rv:
                return dict(self._objects[kind.storage])
            state: dict[Key, dict[str, Any]] = {}
            for change in self._log[kind.storage]:
                if change.rv > rv:
                    break
                if change.type == "DELETED":
                    state.pop(change.key, None)
                else:
                    state[change.key] = change.obj
            return state

    def changes_after(self, kind: Kind, rv: int) -> list[Change]:
        with self.lock:
            return [c for c in self._log[kind.storage] if c.rv > rv]

    # -- the one writer --------------------------------------------------------------------------

    def commit(
        self, kind: Kind, type_: str, key: Key, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Record a change: assigns the next resourceVersion to ``obj`` (which the store keeps),
        stores or removes it, logs it and offers it to the resource's watches."""
        with self.lock:
            self._rv += 1
            obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
            change = Change(self._rv, type_, key, obj, old)
            objects = self._objects[kind.storage]
            if type_ == "DELETED":
                objects.pop(key, None)
            else:
                objects[key] = obj
            self._log[kind.storage].append(change)
            for listener in list(self._listeners[kind.storage]):
                listener.offer(change)
            self.changed.notify_all()
            return obj

    # -- watches ---------------------------------------------------------------------------------

    def add_listener(self, kind: Kind, listener: Listener) -> None:
        with self.lock:
            self._listeners[kind.storage].append(listener)

    def remove_listener(self, kind: Kind, listener: Listener) -> None:
        with self.lock:
            listeners = self._listeners[kind.storage]
            if listener in listeners:
                listeners.remove(listener)

    def listeners(self) -> Iterable[Listener]:
        with self.lock:
            return [listener for group in self._listeners.values() for listener in group]
