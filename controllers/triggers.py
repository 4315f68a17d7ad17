"""Triggers: which informer notifications enqueue which reconcile keys.

A controller reconciles one *primary* resource, keyed by UID. Three kinds of trigger map a
notification to ``Request`` keys of that primary:

* the primary itself: its own UID (``for_primary``, implied by the controller);
* ``owns(resource)``: a child maps to its *controlling* owner (the ownerReference with
  ``controller: true``) when that owner's kind and API group are the primary's; for an update the
  owners of both the old and the new state are enqueued, so a child moved between owners wakes
  both (the version part of ``apiVersion`` is ignored: an owner written as ``v1beta1`` is the same
  object when read as ``v1``);
* ``watches(resource, mapper)``: anything else; ``mapper(obj)`` returns primary UIDs, primary
  objects or ``Request``s, applied to both states of an update.

A ``Trigger`` is a declaration (it may name its resource by string); ``bind`` resolves it against
the primary ``Resource`` into a ``BoundTrigger`` that does the mapping. Mapping is pure and cheap:
it runs on the informer's handler thread and must never block.
Invariant: every ``Request`` a bound trigger yields has the primary's ``request_kind`` and a
non-empty UID, and it yields each key at most once per notification.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from informers.events import Notification, ObjectAdded, ObjectUpdated
from informers.objects import RawObject, controller_owner, name, namespace, uid
from informers.resources import Resource

from .predicates import Predicate, combine
from .request import Request

__all__ = [
    "BoundTrigger",
    "ObjectMapper",
    "Trigger",
    "TriggerKind",
    "bind",
    "for_primary",
    "owner_request",
    "owns",
    "request_kind",
    "watches",
]

ObjectMapper = Callable[[RawObject], Iterable["Request | str | Mapping[str, Any]"]]
"""``mapper(obj)`` for ``watches``: the primaries to reconcile, as UIDs, objects or Requests."""


class TriggerKind(enum.Enum):
    PRIMARY = "primary"
    OWNS = "owns"
    WATCHES = "watches"


@dataclass(frozen=True)
class Trigger:
    """A declared source of reconcile keys: watch ``resource`` (through the controller's factory,
    optionally in ``namespace`` with ``label_selector``) and map what passes ``predicates``."""

    kind: TriggerKind
    resource: Resource | str
    mapper: ObjectMapper | None = None
    predicates: tuple[Predicate, ...] = ()
    namespace: str | None = None
    label_selector: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is TriggerKind.WATCHES) != (self.mapper is not None):
            raise ValueError("a mapper is required for watches() and not allowed otherwise")

    def __str__(self) -> str:
        return f"{self.kind.value}({self.resource})"


def _predicates(predicates: Predicate | Sequence[Predicate] | None) -> tuple[Predicate, ...]:
    if predicates is None:
        return ()
    if isinstance(predicates, Predicate):
        return (predicates,)
    return tuple(predicates)


def for_primary(
    resource: Resource | str,
    *,
    predicates: Predicate | Sequence[Predicate] | None = None,
    namespace: str | None = None,
    label_selector: str | None = None,
) -> Trigger:
    """The primary's own notifications, keyed by its UID (the controller adds this one itself)."""
    return Trigger(TriggerKind.PRIMARY, resource, None, _predicates(predicates), namespace, label_selector)


def owns(
    resource: Resource | str,
    *,
    predicates: Predicate | Sequence[Predicate] | None = None,
    namespace: str | None = None,
    label_selector: str | None = None,
) -> Trigger:
    """Children of ``resource`` enqueue their controlling owner if it is a primary. The controller
    also gives the child informer the owner-UID index (``informers.indexers.OWNER_UID_INDEX``),
    so a reconciler lists its children with ``store.by_index(OWNER_UID_INDEX, request.uid)``."""
    return Trigger(TriggerKind.OWNS, resource, None, _predicates(predicates), namespace, label_selector)


def watches(
    resource: Resource | str,
    mapper: ObjectMapper,
    *,
    predicates: Predicate | Sequence[Predicate] | None = None,
    namespace: str | None = None,
    label_selector: str | None = None,
) -> Trigger:
    """Any other resource: ``mapper(obj)`` names the primaries to reconcile."""
    if not callable(mapper):
        raise TypeError(f"watches() needs a callable mapper, got {type(mapper).__name__}")
    return Trigger(TriggerKind.WATCHES, resource, mapper, _predicates(predicates), namespace, label_selector)


def request_kind(resource: Resource) -> str:
    """The ``Request.kind`` of a primary: ``"Pod"`` for the core group, else
    ``"<group>/<version>/<Kind>"`` (e.g. ``"apps/v1/Deployment"``)."""
    return resource.kind if not resource.group else f"{resource.api_version}/{resource.kind}"


def _group_of(api_version: object) -> str | None:
    if not isinstance(api_version, str) or not api_version:
        return None
    group, sep, _ = api_version.rpartition("/")
    return group if sep else ""


def owner_request(
    obj: Mapping[str, Any], *, kind: str, owner_group: str, owner_kind: str, owner_namespaced: bool
) -> Request | None:
    """The key of ``obj``'s controlling owner if it is an ``owner_group``/``owner_kind`` object."""
    ref = controller_owner(obj)
    if ref is None or ref.get("kind") != owner_kind or _group_of(ref.get("apiVersion")) != owner_group:
        return None
    owner_uid = ref.get("uid")
    if not isinstance(owner_uid, str) or not owner_uid:
        return None
    ref_name = ref.get("name")
    # Owners live in the child's namespace (or are cluster-scoped): the API forbids cross-namespace owners.
    ns = (namespace(obj) or "") if owner_namespaced else ""
    return Request(kind, owner_uid, ns, ref_name if isinstance(ref_name, str) else "")


def _own_request(obj: Mapping[str, Any], kind: str) -> Request | None:
    obj_uid = uid(obj)
    if obj_uid is None:
        return None
    return Request(kind, obj_uid, namespace(obj) or "", name(obj) or "")


def _states(note: Notification) -> tuple[RawObject, ...]:
    """The object states a notification carries: new then old for updates."""
    if isinstance(note, ObjectAdded):
        return (note.obj,)
    if isinstance(note, ObjectUpdated):
        return (note.new,) if note.new is note.old else (note.new, note.old)
    return (note.last_state,)


class BoundTrigger:
    """A ``Trigger`` resolved against its controller's primary resource: maps notifications."""

    __slots__ = ("_map_state", "_predicate", "_primary", "kind", "trigger")

    def __init__(self, trigger: Trigger, primary: Resource) -> None:
        self.trigger = trigger
        #: The ``Request.kind`` every key of this controller carries.
        self.kind = request_kind(primary)
        self._primary = primary
        self._predicate = combine(trigger.predicates)
        if trigger.kind is TriggerKind.PRIMARY:
            self._map_state: Callable[[RawObject], Iterable[Request]] = self._map_primary
        elif trigger.kind is TriggerKind.OWNS:
            self._map_state = self._map_owner
        else:
            self._map_state = self._map_custom

    def passes(self, note: Notification) -> bool:
        """Whether the trigger's predicates (all of them) let ``note`` through."""
        return self._predicate is None or self._predicate(note)

    def requests(self, note: Notification) -> list[Request]:
        """The distinct keys ``note`` maps to (ignores predicates: call ``passes`` first)."""
        states = _states(note)
        if len(states) == 1 and self.trigger.kind is TriggerKind.PRIMARY:
            return list(self._map_primary(states[0]))  # the hot path: one state, one key
        out: dict[Request, None] = {}
        for state in states:
            for request in self._map_state(state):
                out.setdefault(request)
        return list(out)

    def _map_primary(self, obj: RawObject) -> Iterable[Request]:
        request = _own_request(obj, self.kind)
        return () if request is None else (request,)

    def _map_owner(self, obj: RawObject) -> Iterable[Request]:
        primary = self._primary
        request = owner_request(
            obj, kind=self.kind, owner_group=primary.group, owner_kind=primary.kind, owner_namespaced=primary.namespaced
        )
        return () if request is None else (request,)

    def _map_custom(self, obj: RawObject) -> Iterable[Request]:
        assert self.trigger.mapper is not None
        produced = self.trigger.mapper(obj)
        if produced is None:
            return ()
        out: list[Request] = []
        for item in produced:
            if isinstance(item, Request):
                if item.kind != self.kind:
                    raise ValueError(
                        f"{self.trigger} mapper returned a {item.kind!r} request; "
                        f"this controller's keys are {self.kind!r} (return UIDs to avoid this)"
                    )
                out.append(item)
            elif isinstance(item, str):
                out.append(Request(self.kind, item))
            elif isinstance(item, Mapping):
                request = _own_request(item, self.kind)
                if request is None:
                    raise ValueError(f"{self.trigger} mapper returned an object without metadata.uid")
                out.append(request)
            else:
                raise TypeError(
                    f"{self.trigger} mapper returned a {type(item).__name__}; "
                    "want a UID str, a primary object or a Request"
                )
        return out

    def __repr__(self) -> str:
        return f"<BoundTrigger {self.trigger} -> {self.kind}>"


def bind(trigger: Trigger, primary: Resource) -> BoundTrigger:
    """Resolve ``trigger`` against the controller's ``primary`` resource."""
    return BoundTrigger(trigger, primary)
