"""Finalizers with controller-runtime's semantics: add before side effects, clean up, then remove.

A finalizer is a name in ``metadata.finalizers`` that keeps a deleted object in the API (with a
``deletionTimestamp``) until every finalizer is removed, so a controller gets to clean up what it
created outside the object. ``ensure_finalizer`` and ``remove_finalizer`` change the list with a
merge patch that carries the object's ``resourceVersion``: the server applies it only to the version
we read (else ``ConflictError``, and the controller requeues and re-reads), so a finalizer another
party added or removed meanwhile is never lost. Both write nothing when the list is already right.
``decide_finalization`` is the pure decision; ``handle_finalization`` runs the caller's cleanup when
it is due; ``reconcile_finalizer`` does the whole round trip with an ``ApiWriter``.
Invariant: a side effect guarded by these helpers happens only after our finalizer is stored on the
object, and our finalizer is removed only after the cleanup returned without raising.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from informers import objects
from informers.errors import NotFoundError
from informers.objects import RawObject
from informers.resources import Resource

from .writer import ApiWriter

__all__ = [
    "FinalizerResult",
    "FinalizerStep",
    "decide_finalization",
    "ensure_finalizer",
    "finalizers",
    "handle_finalization",
    "has_finalizer",
    "reconcile_finalizer",
    "remove_finalizer",
]


class FinalizerStep(enum.Enum):
    """What a reconciler should do next about its finalizer."""

    ADD = "add"
    """Not being deleted and ours is missing: store the finalizer before any side effect."""
    PROCEED = "proceed"
    """Not being deleted and ours is present: reconcile normally."""
    CLEANUP = "cleanup"
    """Being deleted and ours is present: run the cleanup, then remove the finalizer."""
    REMOVE = "remove"
    """The cleanup ran and succeeded: remove the finalizer (returned by ``handle_finalization``)."""
    NOTHING = "nothing"
    """Being deleted and ours is absent: nothing left for this controller; do not recreate it."""


@dataclass(frozen=True, slots=True)
class FinalizerResult:
    """The outcome of ``reconcile_finalizer``."""

    step: FinalizerStep
    """The step that was taken (ADD, PROCEED, REMOVE or NOTHING)."""
    obj: RawObject | None
    """The object after any write (None once it is gone from the API)."""

    @property
    def proceed(self) -> bool:
        """Whether the reconciler should go on with its normal work (the object is live and ours)."""
        return self.step in (FinalizerStep.ADD, FinalizerStep.PROCEED)


def _check_name(name: str) -> None:
    # The API requires a qualified name; a slash-prefixed domain (example.com/cleanup) is the convention.
    if not name or not isinstance(name, str):
        raise ValueError(f"a finalizer name must be a non-empty string, got {name!r}")


def finalizers(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The object's ``metadata.finalizers`` (strings only), in order."""
    meta = obj.get("metadata")
    value = meta.get("finalizers") if isinstance(meta, Mapping) else None
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def has_finalizer(obj: Mapping[str, Any], name: str) -> bool:
    return name in finalizers(obj)


def decide_finalization(obj: Mapping[str, Any], name: str) -> FinalizerStep:
    """ADD, PROCEED, CLEANUP or NOTHING for ``obj`` and our finalizer ``name``; never writes."""
    _check_name(name)
    ours = has_finalizer(obj, name)
    if objects.deletion_timestamp(obj) is None:
        return FinalizerStep.PROCEED if ours else FinalizerStep.ADD
    return FinalizerStep.CLEANUP if ours else FinalizerStep.NOTHING


def handle_finalization(
    obj: Mapping[str, Any], name: str, cleanup: Callable[[Mapping[str, Any]], None]
) -> FinalizerStep:
    """Decide, and run ``cleanup(obj)`` when it is due; return what the caller must do next.

    Returns ADD (store the finalizer, then proceed), PROCEED, REMOVE (cleanup succeeded: remove
    the finalizer and stop) or NOTHING (stop). If ``cleanup`` raises, the exception propagates and
    the finalizer stays, so the controller retries; cleanups must therefore be idempotent.
    """
    step = decide_finalization(obj, name)
    if step is not FinalizerStep.CLEANUP:
        return step
    cleanup(obj)
    return FinalizerStep.REMOVE


def _patch_finalizers(
    writer: ApiWriter,
    resource: Resource,
    obj: Mapping[str, Any],
    wanted: list[str],
    field_manager: str | None,
) -> RawObject:
    name = objects.name(obj)
    rv = objects.resource_version(obj)
    if name is None or rv is None:
        raise ValueError(
            "a finalizer change needs the object's metadata.name and metadata.resourceVersion "
            "(pass the object as read from the cache or the API)"
        )
    # A merge patch replaces the list whole; the resourceVersion makes the server refuse it (409)
    # if the object changed since it was read, so a concurrent change to the list is never lost.
    patch = {"metadata": {"finalizers": wanted or None, "resourceVersion": rv}}
    return writer.patch(resource, name, patch, namespace=objects.namespace(obj), field_manager=field_manager)


def ensure_finalizer(
    writer: ApiWriter,
    resource: Resource,
    obj: Mapping[str, Any],
    name: str,
    *,
    field_manager: str | None = None,
) -> RawObject:
    """Add ``name`` to the object's finalizers unless present; return the (possibly updated) object.

    No write when present (a shallow copy of ``obj`` is returned). ``ConflictError`` if the object changed
    since ``obj`` was read; the API also refuses (422) a new finalizer on an object being deleted.
    """
    _check_name(name)
    current = finalizers(obj)
    if name in current:
        return dict(obj)
    return _patch_finalizers(writer, resource, obj, [*current, name], field_manager)


def remove_finalizer(
    writer: ApiWriter,
    resource: Resource,
    obj: Mapping[str, Any],
    name: str,
    *,
    field_manager: str | None = None,
) -> RawObject | None:
    """Remove ``name`` from the object's finalizers; None if the object is already gone.

    No write when absent (a shallow copy of ``obj`` is returned). Removing the last finalizer of an object being deleted lets the API
    delete it; the answer is then its final state. ``ConflictError`` if it changed since read.
    """
    _check_name(name)
    current = finalizers(obj)
    if name not in current:
        return dict(obj)
    try:
        return _patch_finalizers(writer, resource, obj, [f for f in current if f != name], field_manager)
    except NotFoundError:
        return None


def reconcile_finalizer(
    writer: ApiWriter,
    resource: Resource,
    obj: Mapping[str, Any],
    name: str,
    cleanup: Callable[[Mapping[str, Any]], None],
    *,
    field_manager: str | None = None,
) -> FinalizerResult:
    """The whole finalizer round for one reconcile.

    Adds our finalizer when missing (then ``proceed`` is true: go on with the side effects), or,
    once the object is being deleted, runs ``cleanup`` and removes the finalizer (``proceed`` false).
    Errors propagate (``ConflictError`` included) so the controller requeues.
    """
    step = handle_finalization(obj, name, cleanup)
    if step is FinalizerStep.ADD:
        return FinalizerResult(step, ensure_finalizer(writer, resource, obj, name, field_manager=field_manager))
    if step is FinalizerStep.REMOVE:
        return FinalizerResult(step, remove_finalizer(writer, resource, obj, name, field_manager=field_manager))
    return FinalizerResult(step, dict(obj))
