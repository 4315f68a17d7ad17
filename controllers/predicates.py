"""Predicates: filters that decide which informer notifications may enqueue a reconcile.

A ``Predicate`` wraps ``fn(notification) -> bool`` and composes with ``&``, ``|`` and ``~`` (or
``all_of``, ``any_of``, ``not_``). The built-ins follow controller-runtime: ``generation_changed``,
``labels_changed``, ``annotations_changed`` and ``resource_version_changed`` judge *updates* only
(old versus new) and let additions and deletions through, so filtering status-only writes never
hides a create or a delete. Periodic resyncs (old == new) fail all four.
Invariant: predicates never mutate the notification and are pure functions of it, so the order in
which a composition evaluates them changes nothing but the cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from informers import objects as meta
from informers.events import Notification, ObjectUpdated

__all__ = [
    "Predicate",
    "all_of",
    "annotations_changed",
    "any_of",
    "combine",
    "generation_changed",
    "labels_changed",
    "not_",
    "on_update",
    "predicate",
    "resource_version_changed",
]


class Predicate:
    """A named, composable filter over notifications; call it with a notification."""

    __slots__ = ("_fn", "name")

    def __init__(self, fn: Callable[[Notification], bool], name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"a predicate needs a callable, got {type(fn).__name__}")
        self._fn = fn
        self.name = name or getattr(fn, "__name__", None) or repr(fn)

    def __call__(self, note: Notification) -> bool:
        return bool(self._fn(note))

    def __and__(self, other: Predicate) -> Predicate:
        return all_of(self, other)

    def __or__(self, other: Predicate) -> Predicate:
        return any_of(self, other)

    def __invert__(self) -> Predicate:
        return not_(self)

    def __repr__(self) -> str:
        return f"<Predicate {self.name}>"


def predicate(fn: Callable[[Notification], bool]) -> Predicate:
    """Decorator: turn ``fn(notification) -> bool`` into a composable ``Predicate``."""
    return Predicate(fn)


def _as_predicate(p: Predicate | Callable[[Notification], bool]) -> Predicate:
    return p if isinstance(p, Predicate) else Predicate(p)


def all_of(*predicates: Predicate | Callable[[Notification], bool]) -> Predicate:
    """True when every predicate is (short-circuits; true for none)."""
    parts = tuple(_as_predicate(p) for p in predicates)

    def check(note: Notification) -> bool:
        return all(p(note) for p in parts)

    return Predicate(check, "(" + " & ".join(p.name for p in parts) + ")" if parts else "always")


def any_of(*predicates: Predicate | Callable[[Notification], bool]) -> Predicate:
    """True when at least one predicate is (short-circuits; false for none)."""
    parts = tuple(_as_predicate(p) for p in predicates)

    def check(note: Notification) -> bool:
        return any(p(note) for p in parts)

    return Predicate(check, "(" + " | ".join(p.name for p in parts) + ")" if parts else "never")


def not_(p: Predicate | Callable[[Notification], bool]) -> Predicate:
    inner = _as_predicate(p)
    return Predicate(lambda note: not inner(note), f"~{inner.name}")


def on_update(changed: Callable[[Mapping[str, Any], Mapping[str, Any]], bool], name: str | None = None) -> Predicate:
    """A predicate that judges updates with ``changed(old, new)`` and passes adds and deletes."""

    def check(note: Notification) -> bool:
        if isinstance(note, ObjectUpdated):
            return changed(note.old, note.new)
        return True

    return Predicate(check, name or getattr(changed, "__name__", "on_update"))


def _generation_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    # Objects without metadata.generation (ConfigMaps...) compare None == None: their updates are
    # filtered, as controller-runtime's predicate does (both read 0 there).
    return meta.generation(old) != meta.generation(new)


def _labels_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return dict(meta.labels(old)) != dict(meta.labels(new))


def _annotations_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return dict(meta.annotations(old)) != dict(meta.annotations(new))


def _resource_version_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return meta.resource_version(old) != meta.resource_version(new)


generation_changed = on_update(_generation_changed, "generation_changed")
"""Updates pass only if ``metadata.generation`` changed (spec edits, not status or metadata)."""

labels_changed = on_update(_labels_changed, "labels_changed")
"""Updates pass only if ``metadata.labels`` changed."""

annotations_changed = on_update(_annotations_changed, "annotations_changed")
"""Updates pass only if ``metadata.annotations`` changed."""

resource_version_changed = on_update(_resource_version_changed, "resource_version_changed")
"""Updates pass only if ``metadata.resourceVersion`` changed: drops resyncs and no-op relists."""


def combine(predicates: Iterable[Predicate | Callable[[Notification], bool]]) -> Predicate | None:
    """All of ``predicates`` as one, or None when there are none (the caller skips the call)."""
    parts = tuple(predicates)
    if not parts:
        return None
    if len(parts) == 1:
        return _as_predicate(parts[0])
    return all_of(*parts)
