"""The records that flow through an informer: watcher events in, handler notifications out.

Two vocabularies live here. *Watch events* (``Init``, ``InitApply``, ``InitDone``, ``Apply``,
``Delete``, ``Bookmark``; the ``WatchEvent`` union) are what the list-then-watch state machine emits
and the informer applies to its store; they follow kube-rs's five-event model plus bookmarks.
*Notifications* (``ObjectAdded``, ``ObjectUpdated``, ``ObjectDeleted``; the ``Notification`` union)
are what notification handlers receive, after the store has been updated. ``DeletedFinalStateUnknown`` is
the tombstone for an object that vanished while the watch was down (seen only by a relist).
Invariant: every record is a frozen, slotted dataclass; objects inside them are raw dicts that the
receiver may read but must not mutate (the store keeps its own copy, but other handlers may share
the same dict).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from .objects import RawObject, object_key

__all__ = [
    "Apply",
    "Bookmark",
    "Delete",
    "DeletedFinalStateUnknown",
    "Init",
    "InitApply",
    "InitDone",
    "Notification",
    "ObjectAdded",
    "ObjectDeleted",
    "ObjectUpdated",
    "WatchEvent",
]


# --- watch events: watcher -> informer/store ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Init:
    """A full (re)list starts: open a fresh replace buffer, discarding any unfinished one."""


@dataclass(frozen=True, slots=True)
class InitApply:
    """One object of the (re)list in progress; goes into the replace buffer, not the live cache."""

    obj: RawObject


@dataclass(frozen=True, slots=True)
class InitDone:
    """The (re)list is complete at ``resource_version``: swap the buffer in; missing keys are gone."""

    resource_version: str


@dataclass(frozen=True, slots=True)
class Apply:
    """An object was added or modified (watch ADDED/MODIFIED)."""

    obj: RawObject


@dataclass(frozen=True, slots=True)
class Delete:
    """An object was deleted (watch DELETED); ``obj`` is its final state as sent by the server."""

    obj: RawObject


@dataclass(frozen=True, slots=True)
class Bookmark:
    """The server vouches that everything up to ``resource_version`` has been delivered."""

    resource_version: str


WatchEvent: TypeAlias = Init | InitApply | InitDone | Apply | Delete | Bookmark


# --- tombstone --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """An object that disappeared between two lists; ``obj`` is the last state the cache knew.

    Its actual final state (and the exact moment of deletion) were never observed, so handlers
    should treat ``obj`` as possibly stale (client-go's ``DeletedFinalStateUnknown``).
    """

    key: str
    obj: RawObject


# --- notifications: informer -> handlers ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObjectAdded:
    """An object appeared in the cache; ``in_initial_list`` is true for the initial list/replay."""

    obj: RawObject
    in_initial_list: bool = False


@dataclass(frozen=True, slots=True)
class ObjectUpdated:
    """An object changed from ``old`` to ``new``; ``is_resync`` is true for periodic resyncs and for
    relisted objects whose resourceVersion did not change (then ``old`` and ``new`` are equal)."""

    old: RawObject
    new: RawObject
    is_resync: bool = False


@dataclass(frozen=True, slots=True)
class ObjectDeleted:
    """An object left the cache; ``obj`` is its final state, or a tombstone when that is unknown.

    Use ``last_state`` to get a plain dict either way, so a handler never trips on the tombstone.
    """

    obj: RawObject | DeletedFinalStateUnknown

    @property
    def final_state_unknown(self) -> bool:
        return isinstance(self.obj, DeletedFinalStateUnknown)

    @property
    def last_state(self) -> RawObject:
        """The deleted object, unwrapping a tombstone (possibly stale if ``final_state_unknown``)."""
        obj = self.obj
        return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj

    @property
    def key(self) -> str:
        obj = self.obj
        return obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj)


Notification: TypeAlias = ObjectAdded | ObjectUpdated | ObjectDeleted
