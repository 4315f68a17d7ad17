"""Controller: informer notifications in, UID keys through a rate-limited queue, reconciles out.

A controller watches one primary resource (plus ``owns(...)`` / ``watches(...)`` triggers) through
a shared ``InformerFactory``. Its handlers only filter (predicates), map notifications to
``Request`` keys and ``queue.add`` them: no I/O, no waiting, so they run *inline* on the informer's
thread (no buffer, no thread of their own), and a burst of events for one object collapses into
one queued key. ``run()`` registers the handlers, waits until every informer *and* every handler of
this controller has synced (default 2 min, the error names each laggard and its last error), then
runs the ``WorkerPool`` until cancelled. A worker resolves a key by UID from the
primary informer's cache (``store.get_by_uid``): None when that object is gone. An optional
``key_filter(request) -> bool`` drops keys before they are enqueued (``controllers.sharding``'s
``ShardFilter`` keeps one replica's share of the UIDs).
Invariant: no reconcile starts before the caches and this controller's handlers have synced, so a
reconciler never acts on a partial view of the world at startup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from informers import _bridge
from informers._log import get_logger
from informers.clock import SYSTEM_CLOCK, Clock
from informers.events import Notification
from informers.indexers import OWNER_UID_INDEX, index_by_owner_uid
from informers.objects import RawObject
from informers.resources import Resource

from ._workers import ReconcileMetrics, WorkerPool, WorkerPoolStatistics
from .errors import ControllerStateError, ControllerSyncTimeoutError
from .predicates import Predicate
from .ratelimit import RateLimiter
from .ratelimited import RateLimitingQueue
from .reconciler import ReconcileFunc, Reconciler
from .request import Request
from .triggers import BoundTrigger, Trigger, TriggerKind, bind, for_primary
from .workqueue import WorkQueueMetrics, WorkQueueStatistics

__all__ = ["Controller", "ControllerStatistics", "InformerProvider", "default_controller_name"]

_log = get_logger(__name__)


class _Registration(Protocol):
    name: str

    def has_synced(self) -> bool: ...

    async def wait_synced(self, timeout: float | None = None) -> bool: ...

    def statistics(self) -> Any: ...


class _Informer(Protocol):
    name: str
    resource: Resource
    store: Any  # index_names, get_by_uid(uid), add_indexers({name: fn})

    def add_handler(
        self, *, on_notification: Callable[[Notification], None], name: str, inline: bool
    ) -> _Registration: ...

    def remove_handler(self, handler: Any) -> None: ...

    def has_synced(self) -> bool: ...

    async def wait_synced(self, timeout: float | None = None) -> bool: ...

    @property
    def started(self) -> bool: ...

    @property
    def last_error(self) -> BaseException | None: ...


class InformerProvider(Protocol):
    """What a controller needs from ``informers.factory.InformerFactory`` (unit tests use an
    ``InformerFactory`` over ``informers.testing.fake.FakeCluster``)."""

    async def resolve(self, resource: Resource | str) -> Resource: ...

    def informer_for(
        self, resource: Resource, *, namespace: str | None = None, label_selector: str | None = None
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class ControllerStatistics:
    name: str
    started: bool
    #: Caches and handlers synced: workers are running (or have run).
    synced: bool
    notifications_total: int
    #: Notifications dropped by predicates.
    filtered_total: int
    #: Keys handed to ``queue.add`` (before the queue's de-duplication).
    enqueued_total: int
    #: Notifications whose predicate or mapper raised (logged, dropped).
    mapping_errors_total: int
    workers: WorkerPoolStatistics
    queue: WorkQueueStatistics

    def samples(self) -> tuple[tuple[str, dict[str, str], float], ...]:
        """The controller-runtime metrics (see ``WorkerPoolStatistics.samples``)."""
        return self.workers.samples()


class _Route:
    """One trigger wired to one informer. Its counters are written only by that informer's
    notifying thread (under the informer's lock), so they need no lock of their own."""

    __slots__ = ("bound", "enqueued", "errors", "filtered", "informer", "notifications", "registration")

    def __init__(self, bound: BoundTrigger, informer: _Informer) -> None:
        self.bound = bound
        self.informer = informer
        self.registration: _Registration | None = None
        self.notifications = self.filtered = self.enqueued = self.errors = 0


def default_controller_name(primary: Resource | str) -> str:
    """A controller's default name: the primary's kind (or last path segment), lower-cased."""
    if isinstance(primary, Resource):
        return primary.kind.lower()
    return primary.rsplit("/", 1)[-1].lower()


class Controller:
    """Reconciles ``primary`` objects with ``reconciler``; see the module docstring.

    Options: ``triggers`` (``owns(...)``, ``watches(...)``), ``predicates`` for the primary's own
    notifications, ``namespace`` / ``label_selector`` of the primary informer (default: the
    factory's scope), ``max_concurrent_reconciles`` (default 1: raise it when keys are independent
    and reconciles wait on I/O), ``rate_limiter`` (default controller-runtime's: per-key 5 ms ->
    1000 s, 10/s burst 100), ``reconcile_timeout`` (seconds, default None: no limit),
    ``cache_sync_timeout`` (seconds, default 120), ``drain_timeout`` (seconds shutdown waits for
    in-flight reconciles, default 30), ``name`` (metrics label and logs; default the lowercase kind),
    ``key_filter`` (default None: every key; else only keys it returns True for are enqueued, from
    every trigger; it runs inline on informer threads, so it must be quick and thread-safe).
    """

    def __init__(
        self,
        factory: InformerProvider,
        primary: Resource | str,
        reconciler: Reconciler | ReconcileFunc,
        *,
        name: str | None = None,
        triggers: Iterable[Trigger] = (),
        predicates: Predicate | Sequence[Predicate] | None = None,
        namespace: str | None = None,
        label_selector: str | None = None,
        max_concurrent_reconciles: int = 1,
        rate_limiter: RateLimiter | None = None,
        reconcile_timeout: float | None = None,
        cache_sync_timeout: float = 120.0,
        drain_timeout: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
        metrics: ReconcileMetrics | None = None,
        queue_metrics: WorkQueueMetrics | None = None,
        key_filter: Callable[[Request], bool] | None = None,
    ) -> None:
        self.name = name or default_controller_name(primary)
        self.key_filter = key_filter
        self.factory = factory
        self.namespace = namespace
        self.cache_sync_timeout = cache_sync_timeout
        self._triggers: list[Trigger] = [
            for_primary(primary, predicates=predicates, namespace=namespace, label_selector=label_selector)
        ]
        for trigger in triggers:
            self.add_trigger(trigger)
        self.queue: RateLimitingQueue[Request] = RateLimitingQueue(
            self.name, rate_limiter=rate_limiter, clock=clock, metrics=queue_metrics
        )
        self.pool = WorkerPool(
            self.queue,
            reconciler,
            self._resolve,
            name=self.name,
            workers=max_concurrent_reconciles,
            reconcile_timeout=reconcile_timeout,
            drain_timeout=drain_timeout,
            clock=clock,
            metrics=metrics,
        )
        self.primary: Resource | None = None
        self.primary_informer: _Informer | None = None
        self._routes: list[_Route] = []
        self._started = False
        self._synced = _bridge.Flag()

    def add_trigger(self, trigger: Trigger) -> None:
        """Add an ``owns(...)`` / ``watches(...)`` trigger; only before ``run()``."""
        if getattr(self, "_started", False):
            raise ControllerStateError(f"controller {self.name!r} is running; add triggers before run()")
        if not isinstance(trigger, Trigger):
            raise TypeError(f"want a Trigger (owns(...) or watches(...)), got {type(trigger).__name__}")
        if trigger.kind is TriggerKind.PRIMARY and self._triggers:
            raise ValueError("the primary trigger is implied by the controller; use owns() or watches()")
        self._triggers.append(trigger)

    # -- wiring ----------------------------------------------------------------------------------

    def _resolve(self, request: Request) -> RawObject | None:
        informer = self.primary_informer
        if informer is None:
            raise ControllerStateError(f"controller {self.name!r} resolved a key before run() wired it")
        obj: RawObject | None = informer.store.get_by_uid(request.uid)
        return obj

    def _handler(self, route: _Route) -> Callable[[Notification], None]:
        bound, add, keep = route.bound, self.queue.add, self.key_filter

        def on_notification(note: Notification) -> None:
            route.notifications += 1
            try:
                if not bound.passes(note):
                    route.filtered += 1
                    return
                requests = bound.requests(note)
                if keep is not None:
                    requests = [request for request in requests if keep(request)]
            except Exception as exc:  # noqa: BLE001 - a bad mapper must not stop the others
                route.errors += 1
                _log.error(
                    "trigger failed to map a notification",
                    controller=self.name,
                    trigger=str(bound.trigger),
                    notification=type(note).__name__,
                    error=repr(exc),
                    exc_info=exc,
                )
                return
            for request in requests:
                add(request)
            route.enqueued += len(requests)

        return on_notification

    async def prepare(self) -> list[Any]:
        """Resolve the triggers' resources (discovery runs off the loop) and create their informers
        (a running factory starts them), without registering handlers: what a standby replica does
        to warm its caches before it leads. Idempotent; returns the informers in trigger order."""
        resources = [await self.factory.resolve(t.resource) for t in self._triggers]
        self.primary = resources[0]
        self.pool.resource = f"{self.primary.api_version}/{self.primary.plural}"
        informers = []
        for trigger, resource in zip(self._triggers, resources, strict=True):
            ns = trigger.namespace if trigger.namespace is not None else self.namespace
            informer = self.factory.informer_for(resource, namespace=ns, label_selector=trigger.label_selector)
            if trigger.kind is TriggerKind.OWNS and OWNER_UID_INDEX not in informer.store.index_names:
                try:
                    informer.store.add_indexers({OWNER_UID_INDEX: index_by_owner_uid})
                except Exception as exc:
                    if OWNER_UID_INDEX not in informer.store.index_names:
                        raise
                    _log.debug("owner index already present", informer=informer.name, error=repr(exc))
            informers.append(informer)
        return informers

    async def _wire(self) -> None:
        """Prepare the informers, then register the inline handlers from a worker thread: a late
        registration replays the cache into the queue on the registering thread."""
        informers = await self.prepare()
        assert self.primary is not None
        for trigger, informer in zip(self._triggers, informers, strict=True):
            if trigger.kind is TriggerKind.PRIMARY:
                self.primary_informer = informer
            route = _Route(bind(trigger, self.primary), informer)
            self._routes.append(route)
            route.registration = await _bridge.to_thread(self._register, route, f"{self.name}/{trigger}")

    def _register(self, route: _Route, name: str) -> _Registration:
        registration: _Registration = route.informer.add_handler(
            on_notification=self._handler(route), name=name, inline=True
        )
        return registration

    def children_store(self, resource: Resource | str) -> Any:
        """The cache of an ``owns(...)`` resource of this controller, named as in the trigger (or
        by its ``Resource``, plural or kind)."""
        for route in self._routes:
            trigger = route.bound.trigger
            if trigger.kind is not TriggerKind.OWNS:
                continue
            res: Resource = route.informer.resource
            if (
                resource == trigger.resource
                or resource == res
                or (isinstance(resource, str) and resource.rsplit("/", 1)[-1] in (res.kind, res.plural))
            ):
                return route.informer.store
        owned = (
            ", ".join(str(r.bound.trigger.resource) for r in self._routes if r.bound.trigger.kind is TriggerKind.OWNS)
            or "nothing"
        )
        raise ControllerStateError(
            f"controller {self.name!r} does not own {resource} (it owns {owned}); add it to owns=[...]"
        )

    def _unwire(self) -> None:
        for route in self._routes:
            if route.registration is not None:
                route.informer.remove_handler(route.registration)

    # -- lifecycle -------------------------------------------------------------------------------

    def _laggards(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for route in self._routes:
            informer = route.informer
            if not informer.has_synced():
                if not informer.started:
                    out[informer.name] = (
                        "informer was never started: run the controller inside "
                        "'async with factory' (or start the factory's informers)"
                    )
                elif informer.last_error is not None:
                    err = informer.last_error
                    out[informer.name] = f"{type(err).__name__}: {err}"
                else:
                    out[informer.name] = "still listing, no error yet"
            elif route.registration is not None and not route.registration.has_synced():
                stats = route.registration.statistics()
                pending = getattr(stats, "pending", "?")
                out[f"handler {route.registration.name}"] = f"{pending} initial notifications not handled yet"
        return out

    async def _wait_synced(self) -> None:
        with anyio.move_on_after(self.cache_sync_timeout):
            for route in self._routes:  # no polling: each waits on its informer's and handler's flag
                await route.informer.wait_synced()
                if route.registration is not None:
                    await route.registration.wait_synced()
        laggards = self._laggards()
        if laggards:
            causes: dict[str, BaseException | None] = {
                r.informer.name: r.informer.last_error for r in self._routes if r.informer.name in laggards
            }
            detail = "; ".join(f"{name}: {why}" for name, why in laggards.items())
            raise ControllerSyncTimeoutError(
                f"controller {self.name!r}: caches not synced after {self.cache_sync_timeout} s, "
                f"no worker started: {detail}",
                causes,
            )
        self._synced.set()

    async def run(self) -> None:
        """Wire handlers, wait for sync, then reconcile until cancelled (draining in-flight calls
        for up to ``drain_timeout``). Raises ``ControllerSyncTimeoutError`` if caches never sync.
        A controller runs once."""
        if self._started:
            raise ControllerStateError(f"controller {self.name!r} has already run")
        self._started = True
        try:
            await self._wire()
            await self._wait_synced()
            _log.info("starting workers", controller=self.name, workers=self.pool.workers, queued=len(self.queue))
            await self.pool.run()
        finally:
            with anyio.CancelScope(shield=True):
                if not self.queue.shutting_down():  # the pool never ran: drop delayed items
                    self.queue.shutdown()  # never blocks
                self._unwire()

    def has_synced(self) -> bool:
        """True once workers were allowed to start (caches and handlers synced)."""
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until ``has_synced``; False on timeout (``run()`` raises the detailed error)."""
        return await self._synced.wait(timeout)

    def statistics(self) -> ControllerStatistics:
        routes = list(self._routes)
        return ControllerStatistics(
            name=self.name,
            started=self._started,
            synced=self._synced.is_set(),
            notifications_total=sum(r.notifications for r in routes),
            filtered_total=sum(r.filtered for r in routes),
            enqueued_total=sum(r.enqueued for r in routes),
            mapping_errors_total=sum(r.errors for r in routes),
            workers=self.pool.statistics(),
            queue=self.queue.statistics(),
        )

    def __repr__(self) -> str:
        return f"<Controller {self.name} synced={self.has_synced()}>"
