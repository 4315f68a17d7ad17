"""The one object a reconciler is handed: ``ctx`` carries the object and everything to act on it.

A front-door reconciler (``@manager.reconcile(...)``) is ``async def reconcile(ctx: Context)`` or a
plain ``def reconcile(ctx: BlockingContext)`` (run in a worker thread). Both contexts offer the
same things, and differ only in whether the calls that do I/O are awaited:

* ``ctx.obj`` (the cached object, a dict the reconciler may edit; ``None`` once that UID is gone),
  ``ctx.request``, ``ctx.name`` / ``ctx.namespace`` / ``ctx.uid``, ``ctx.log`` (bound to the key);
* ``ctx.api("v1/configmaps")``: writes addressed by resource name (``controllers.api``);
* ``ctx.own(child)``: makes this object the child's controller owner (the ownerReference that
  ``owns=[...]`` maps back to this key), and ``ctx.children("v1/ConfigMap")`` lists the cached
  children this object controls;
* ``ctx.finalize(name, apply=..., cleanup=...)``: the Apply/Cleanup finalizer round;
* ``ctx.set_condition(...)`` edits ``status.conditions`` in memory: when the call returns, the
  status is written back once, as a merge patch guarded by the resourceVersion, and only if it
  changed (any edit of ``ctx.obj["status"]`` counts);
* ``ctx.event(reason, note)`` / ``ctx.warning(...)``: Kubernetes Events about the object.

Invariant: a context writes the status at most once per call, never when it is unchanged, and
never after the object's deletion has been completed by ``finalize``.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from informers import _bridge
from informers.errors import ConflictError, InformerdError
from informers.indexers import OWNER_UID_INDEX
from informers.objects import RawObject, controller_owner
from informers.resources import Resource

from .api import Api, BlockingApi, Resolver
from .conditions import set_condition
from .finalizers import FinalizerStep, decide_finalization, ensure_finalizer, remove_finalizer
from .reconciler import ReconcileContext
from .recorder import EventRecorder
from .request import Request
from .result import Result
from .writer import ApiWriter

__all__ = ["BlockingContext", "Context", "OwnershipError", "Services", "front_door"]


class OwnershipError(InformerdError):
    """``own(child)`` was refused: the child already has another controller, or sits in another
    namespace than its namespaced owner (the API forbids both)."""


class _Wired(Protocol):
    """What contexts need of their controller once it has wired its informers."""

    primary: Resource | None

    def children_store(self, resource: Resource | str) -> Any: ...


class Services:
    """What one controller's contexts share (built by the ``Manager``, bound to the controller)."""

    __slots__ = ("_controller", "recorder", "resolver", "writer")

    def __init__(self, writer: ApiWriter, resolver: Resolver, recorder: EventRecorder | None) -> None:
        self.writer = writer
        self.resolver = resolver
        self.recorder = recorder
        self._controller: _Wired | None = None

    def bind(self, controller: _Wired) -> None:
        self._controller = controller

    @property
    def controller(self) -> _Wired:
        if self._controller is None:
            raise InformerdError("these services are not bound to a controller yet")
        return self._controller

    @property
    def primary(self) -> Resource:
        primary = self.controller.primary
        if primary is None:
            raise InformerdError("the controller has not resolved its primary resource yet")
        return primary


def _merge_patch(before: Any, after: Any) -> Any:
    """An RFC 7386 merge patch taking ``before`` to ``after`` (maps merge, anything else replaces)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch: dict[str, Any] = {key: None for key in before if key not in after}
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            patch[key] = _merge_patch(before[key], value)
    return patch


class _BaseContext:
    __slots__ = ("_call", "_done", "_s", "_status_before", "obj", "request")

    def __init__(self, services: Services, request: Request, obj: RawObject | None, call: ReconcileContext):
        self._s = services
        self.request = request
        #: The object as cached when the call began (yours to edit); None when the UID is gone.
        self.obj = obj
        self._call = call
        self._status_before = copy.deepcopy(obj.get("status")) if obj is not None else None
        self._done = False  # finalize completed the deletion: nothing left to write

    # -- facts ---------------------------------------------------------------------------------
    @property
    def uid(self) -> str:
        return self.request.uid

    @property
    def name(self) -> str:
        return self.request.name

    @property
    def namespace(self) -> str:
        return self.request.namespace

    @property
    def log(self) -> Any:
        """A logger bound to the controller and the key."""
        return self._call.log

    @property
    def attempt(self) -> int:
        """Failures of this key since it last succeeded (0 on a first try)."""
        return self._call.attempt

    @property
    def cancelled(self) -> bool:
        """True once the call timed out or the controller is stopping (its result is ignored)."""
        return self._call.cancelled

    # -- ownership -----------------------------------------------------------------------------
    def own(self, child: RawObject) -> RawObject:
        """Make this object ``child``'s controller owner (in place; returns ``child``).

        Fills the child's namespace from this object's when it has none. Raises
        ``OwnershipError`` if another object already controls the child, or across namespaces.
        """
        owner = self._require_obj("own a child")
        primary = self._s.primary
        meta = child.setdefault("metadata", {})
        if primary.namespaced:
            meta.setdefault("namespace", self.namespace)
            if meta["namespace"] != self.namespace:
                raise OwnershipError(f"{self.request} cannot own an object in namespace {meta['namespace']!r}")
        current = controller_owner(child)
        if current is not None and current.get("uid") != self.uid:
            raise OwnershipError(
                f"{meta.get('name')!r} is already controlled by {current.get('kind')} "
                f"{current.get('name')!r} (uid={current.get('uid')})"
            )
        ref = {
            "apiVersion": primary.api_version,
            "kind": primary.kind,
            "name": owner["metadata"]["name"],
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        others = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != self.uid]
        meta["ownerReferences"] = [*others, ref]
        return child

    def children(self, resource: Resource | str) -> list[RawObject]:
        """The cached objects of ``resource`` (one of the controller's ``owns``) this object controls."""
        store = self._s.controller.children_store(resource)
        return [
            o for o in store.by_index(OWNER_UID_INDEX, self.uid) if (controller_owner(o) or {}).get("uid") == self.uid
        ]

    # -- status --------------------------------------------------------------------------------
    def set_condition(self, type: str, status: str | bool, reason: str, message: str = "") -> bool:  # noqa: A002
        """Set ``status.conditions[type]`` on ``ctx.obj`` (``observedGeneration`` = the object's
        generation); True if it changed. Written back when the call returns."""
        return set_condition(self._require_obj("set a condition"), type, status, reason, message)

    def _status_patch(self) -> dict[str, Any] | None:
        obj = self.obj
        if obj is None or self._done:
            return None
        after = obj.get("status")
        if after == self._status_before:
            return None
        meta = obj["metadata"]
        return {
            "metadata": {"resourceVersion": meta.get("resourceVersion")},
            "status": _merge_patch(self._status_before, after),
        }

    def _write_status(self, patch: dict[str, Any]) -> None:
        self._s.writer.patch_status(self._s.primary, self.name, patch, namespace=self.namespace or None)

    # -- events --------------------------------------------------------------------------------
    def event(self, reason: str, note: str, *, type: str = "Normal") -> bool:  # noqa: A002
        """Record a Kubernetes Event about this object (never raises, never waits)."""
        recorder = self._s.recorder
        if recorder is None or self.obj is None:
            return False
        return recorder.record(self.obj, type, reason, note, resource=self._s.primary)

    def warning(self, reason: str, note: str) -> bool:
        return self.event(reason, note, type="Warning")

    def _require_obj(self, what: str) -> RawObject:
        if self.obj is None:
            raise InformerdError(f"cannot {what}: {self.request} is gone (ctx.obj is None)")
        return self.obj

    def _finalizer_step(self, name: str) -> FinalizerStep:
        return decide_finalization(self._require_obj("run a finalizer"), name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request} attempt={self.attempt}>"


_Step = Callable[["Context"], Awaitable[Result | None]]
_BlockingStep = Callable[["BlockingContext"], Result | None]


class Context(_BaseContext):
    """The context of an ``async def`` reconciler; I/O methods are coroutines."""

    __slots__ = ()

    def api(self, resource: Resource | str) -> Api:
        """Writes to ``resource`` (a name as ``InformerFactory.resolve`` takes it), defaulting to
        this object's namespace."""
        return Api(self._s.writer, self._s.resolver, resource, namespace=self.namespace or None)

    async def finalize(self, name: str, *, apply: _Step, cleanup: _Step) -> Result | None:
        """The finalizer round (kube-rs's Apply/Cleanup): while the object lives, make sure finalizer
        ``name`` is on it (one write, before anything else) and return ``await apply(ctx)``; once it
        is being deleted, return ``await cleanup(ctx)`` and then remove the finalizer so the
        deletion completes. Cleanup must be idempotent: if it raises, the finalizer stays and the
        key is retried."""
        if self.obj is None:
            return None
        step = self._finalizer_step(name)
        s = self._s
        if step is FinalizerStep.ADD:
            self.obj = await _bridge.to_thread(ensure_finalizer, s.writer, s.primary, self.obj, name)
            return await apply(self)
        if step is FinalizerStep.PROCEED:
            return await apply(self)
        if step is FinalizerStep.CLEANUP:
            result = await cleanup(self)
            await _bridge.to_thread(remove_finalizer, s.writer, s.primary, self.obj, name)
            self._done = True
            return result
        return None  # being deleted and not ours (any more): nothing to do

    async def _flush(self) -> None:
        patch = self._status_patch()
        if patch is not None:
            assert self.obj is not None
            await _bridge.to_thread(self._write_status, patch)


class BlockingContext(_BaseContext):
    """The context of a plain ``def`` reconciler (it runs in a worker thread); I/O blocks."""

    __slots__ = ()

    def api(self, resource: Resource | str) -> BlockingApi:
        return BlockingApi(self._s.writer, self._s.resolver, resource, namespace=self.namespace or None)

    def finalize(self, name: str, *, apply: _BlockingStep, cleanup: _BlockingStep) -> Result | None:
        """See ``Context.finalize``; here ``apply`` and ``cleanup`` are plain functions."""
        if self.obj is None:
            return None
        step = self._finalizer_step(name)
        s = self._s
        if step is FinalizerStep.ADD:
            self.obj = ensure_finalizer(s.writer, s.primary, self.obj, name)
            return apply(self)
        if step is FinalizerStep.PROCEED:
            return apply(self)
        if step is FinalizerStep.CLEANUP:
            result = cleanup(self)
            remove_finalizer(s.writer, s.primary, self.obj, name)
            self._done = True
            return result
        return None

    def _flush(self) -> None:
        patch = self._status_patch()
        if patch is not None:
            self._write_status(patch)


def front_door(fn: Callable[..., Any], services: Services, *, is_async: bool) -> Callable[..., Any]:
    """Adapt ``fn(ctx)`` to the worker pool's ``(request, obj, call)`` contract, writing the status
    back when ``fn`` returns (or raises: the conditions it set describe the failure), unless the
    failure was a stale read (``ConflictError``), where a status write would conflict too."""
    if is_async:

        async def reconcile_async(request: Request, obj: RawObject | None, call: ReconcileContext) -> Any:
            ctx = Context(services, request, obj, call)
            try:
                result = await fn(ctx)
            except ConflictError:
                raise
            except Exception:
                await _flush_after_failure(ctx._flush(), ctx)
                raise
            await ctx._flush()
            return result

        return reconcile_async

    def reconcile(request: Request, obj: RawObject | None, call: ReconcileContext) -> Any:
        ctx = BlockingContext(services, request, obj, call)
        try:
            result = fn(ctx)
        except ConflictError:
            raise
        except Exception:
            try:
                ctx._flush()
            except Exception as exc:  # noqa: BLE001 - the reconcile's own error is the one to report
                ctx.log.warning("status not written after a failed reconcile", error=repr(exc))
            raise
        ctx._flush()
        return result

    return reconcile


async def _flush_after_failure(flush: Awaitable[None], ctx: Context) -> None:
    try:
        await flush
    except Exception as exc:  # noqa: BLE001 - the reconcile's own error is the one to report
        ctx.log.warning("status not written after a failed reconcile", error=repr(exc))
