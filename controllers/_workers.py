"""The worker pool: N workers take keys from a rate-limited queue and call the reconciler.

Each worker is an anyio task: it takes a ``Request``, resolves the object (``resolve(request)``,
None if gone), calls the reconciler and turns the outcome into a queue action, as
controller-runtime does: success -> ``forget``; ``Result.requeue()`` -> ``add_rate_limited``;
``Result.requeue_after(s)`` -> ``forget`` then ``add_after``; ``TerminalError`` -> logged, counted,
``forget``, never retried; any other exception (including a timeout) -> logged with the key and
``add_rate_limited`` without ``forget``, so repeated failures back off exponentially. Sync
reconcilers run in threads (through ``informers._bridge.to_thread`` under a ``CapacityLimiter`` of N), async
ones on the loop. A call past ``reconcile_timeout`` is cancelled (async) or abandoned (sync: the
worker moves on, ``ctx.cancelled`` turns true, the thread's result is ignored). At most
``max_abandoned_threads`` abandoned threads may still be running at once: past that, a sync call
waits for one of them to return before it takes a thread (and times out waiting), so a reconciler
that never returns holds at most ``max_abandoned_threads + workers`` threads instead of one per key. Shutdown (``run()``
cancelled): workers stop taking keys, in-flight calls get ``drain_timeout`` seconds to finish, then
are cancelled the same way.
Logging: for the whole of each call (the reconciler, the status write, the line reporting its
outcome) the worker binds ``controller``, ``resource``, ``namespace``, ``name``, ``uid`` and a fresh
``reconcile_id`` to the task's context (``informers._log.bind_context``), so every line logged
meanwhile carries them, the user's own structlog and stdlib lines included; ``to_thread`` runs a
sync reconciler in a copy of that context, and the worker resets the binding when the call ends.
Invariant: a key is released (``queue.done``) exactly once per call and only when no code of that
call can still run, so with an abandoned thread the key stays busy until the thread returns and
two calls never reconcile one key at the same time.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

from informers import _bridge
from informers._log import bind_context, get_logger, reset_context
from informers.clock import SYSTEM_CLOCK, Clock
from informers.errors import InformerdError
from informers.objects import RawObject

from .errors import ControllerStateError, InvalidResultError, ReconcileTimeoutError, is_terminal
from .ratelimited import RateLimitingQueue
from .reconciler import ReconcileContext, ReconcileFunc, Reconciler, reconcile_callable
from .request import Request
from .result import Result, ResultKind, as_result
from .workqueue import QueueShutDown

__all__ = [
    "NoopReconcileMetrics",
    "ReconcileMetrics",
    "WorkerPool",
    "WorkerPoolStatistics",
]

_log = get_logger(__name__)
# Reconcile ids only need to tell calls apart in the logs: 64 random bits from a generator seeded
# once from the OS cost ~0.5 us, where str(uuid.uuid4()) costs 5-12 us on every call.
_IDS = random.Random()

_Resolver = Callable[[Request], RawObject | None]


class ReconcileMetrics(Protocol):
    """Per-call observations for the exporter (counters and gauges come from ``statistics()``).
    Called on the event loop after each call; must be fast and must not raise."""

    def on_reconcile(self, result: str, seconds: float) -> None:
        """One call ended with ``result`` (success, error, requeue, requeue_after) after
        ``seconds`` (``controller_runtime_reconcile_time_seconds``)."""


class NoopReconcileMetrics:
    def on_reconcile(self, result: str, seconds: float) -> None:
        return None


@dataclass(frozen=True, slots=True)
class WorkerPoolStatistics:
    """Counters since start; ``samples()`` names them as controller-runtime's metrics."""

    name: str
    max_concurrent_reconciles: int
    #: Calls in progress (``controller_runtime_active_workers``).
    active_workers: int
    running: bool
    stopping: bool
    success_total: int
    #: Calls that raised, terminal ones included (``reconcile_total{result="error"}``).
    error_total: int
    requeue_total: int
    requeue_after_total: int
    terminal_errors_total: int
    #: Exceptions that are not informerd errors (bugs: KeyError, TypeError...), plus invalid results.
    panics_total: int
    timeouts_total: int
    #: Calls cut short by shutdown (not counted in ``reconcile_total``).
    cancelled_total: int
    #: Sync calls abandoned after a timeout whose threads are still running.
    overrun_threads: int
    reconcile_seconds_total: float
    #: How long the longest call a worker is still waiting on has run (0 when idle); unlike the
    #: queue's longest-running figure it leaves out keys of abandoned sync calls.
    oldest_active_seconds: float = 0.0

    @property
    def reconcile_total(self) -> dict[str, int]:
        return {
            "success": self.success_total,
            "error": self.error_total,
            "requeue": self.requeue_total,
            "requeue_after": self.requeue_after_total,
        }

    def samples(self) -> tuple[tuple[str, dict[str, str], float], ...]:
        """``(metric name, labels, value)`` for every controller-runtime counter and gauge."""
        label = {"controller": self.name}
        out: list[tuple[str, dict[str, str], float]] = [
            ("controller_runtime_reconcile_total", {**label, "result": result}, count)
            for result, count in self.reconcile_total.items()
        ]
        out += [
            ("controller_runtime_reconcile_errors_total", label, self.error_total),
            ("controller_runtime_terminal_reconcile_errors_total", label, self.terminal_errors_total),
            ("controller_runtime_reconcile_panics_total", label, self.panics_total),
            ("controller_runtime_active_workers", label, self.active_workers),
            ("controller_runtime_max_concurrent_reconciles", label, self.max_concurrent_reconciles),
        ]
        return tuple(out)


class _Call:
    """One in-flight call: its context, cancel scope and (sync) thread bookkeeping."""

    __slots__ = ("abandoned", "ctx", "entered", "finished", "request", "scope", "shutdown", "started")

    def __init__(self, request: Request, ctx: ReconcileContext, started: float) -> None:
        self.request = request
        self.ctx = ctx
        self.started = started
        self.scope: anyio.CancelScope | None = None
        self.shutdown = False
        self.finished = False  # the sync thread returned, or will never run it (pool's lock)
        self.entered = False  # a thread began running the reconciler (pool's lock)
        self.abandoned = False  # the worker left; the thread releases the key (pool's lock)

    def cancel_for_shutdown(self) -> None:
        self.shutdown = True
        self.ctx.cancel()
        if self.scope is not None:
            self.scope.cancel()


def _is_panic(exc: BaseException) -> bool:
    return isinstance(exc, InvalidResultError) or not isinstance(exc, InformerdError)


class WorkerPool:
    """Runs ``workers`` reconcile workers over ``queue`` until ``run()`` is cancelled.

    ``resolve(request)`` returns the object to reconcile or None (called in the worker thread for
    sync reconcilers). ``reconcile_timeout`` (seconds, default None = none) bounds each call;
    ``drain_timeout`` (seconds, default 30) bounds how long shutdown waits for in-flight calls.
    ``max_abandoned_threads`` (default ``max(8, 2 * workers)``) bounds the threads of timed-out
    sync calls that may still be running (see the module docstring).
    """

    def __init__(
        self,
        queue: RateLimitingQueue[Request],
        reconciler: Reconciler | ReconcileFunc,
        resolve: _Resolver,
        *,
        name: str = "",
        workers: int = 1,
        reconcile_timeout: float | None = None,
        drain_timeout: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
        metrics: ReconcileMetrics | None = None,
        max_abandoned_threads: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        if reconcile_timeout is not None and not reconcile_timeout > 0:
            raise ValueError(f"reconcile_timeout must be > 0 seconds or None, got {reconcile_timeout!r}")
        if not drain_timeout >= 0:
            raise ValueError(f"drain_timeout must be >= 0 seconds, got {drain_timeout!r}")
        self.queue = queue
        self.name = name or queue.name
        #: The primary resource as logs name it (``"apps/v1/deployments"``); the controller sets it
        #: once discovery resolved it. Empty: the requests' ``kind``.
        self.resource = ""
        self.workers = workers
        self.reconcile_timeout = reconcile_timeout
        self.drain_timeout = drain_timeout
        self.max_abandoned_threads = max(8, 2 * workers) if max_abandoned_threads is None else max_abandoned_threads
        if self.max_abandoned_threads < 1:
            raise ValueError(f"max_abandoned_threads must be >= 1, got {max_abandoned_threads!r}")
        self._fn, self.is_async = reconcile_callable(reconciler)
        self._resolve = resolve
        self._clock = clock
        self._metrics = None if metrics is None or isinstance(metrics, NoopReconcileMetrics) else metrics
        self._lock = threading.Lock()  # counters and abandoned-thread handover (threads touch them)
        self._inflight: dict[Request, _Call] = {}
        self._counts = dict.fromkeys(
            ("success", "error", "requeue", "requeue_after", "terminal", "panic", "timeout", "cancelled"), 0
        )
        self._seconds = 0.0
        self._overrun = 0
        self._slot_waiters: list[_bridge.Waiter] = []  # sync calls waiting for an abandoned thread to end
        self._ran = False
        self._running = False
        self._stopping = False
        self._idle: anyio.Event | None = None
        self._workers_left = 0
        self._all_exited: anyio.Event | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Work until cancelled (then drain as described above) or until the queue is shut down
        and empty. A pool runs once."""
        if self._ran:
            raise ControllerStateError(f"worker pool {self.name!r} has already run")
        self._ran = self._running = True
        limiter = anyio.CapacityLimiter(self.workers)
        self._all_exited = anyio.Event()
        self._workers_left = self.workers
        try:
            async with anyio.create_task_group() as group:
                for index in range(self.workers):
                    group.start_soon(self._worker, limiter, name=f"{self.name}-worker-{index}")
                try:
                    await self._all_exited.wait()
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._shutdown(group.cancel_scope)
        finally:
            self._running = False

    async def _shutdown(self, workers: anyio.CancelScope) -> None:
        self._stopping = True
        workers.cancel()  # parked getters leave; in-flight calls are shielded and keep going
        self.queue.shutdown()  # never blocks: it only flips state and wakes waiters
        await anyio.sleep(0)  # as the old thread hop did: a worker woken with a key registers it
        if self._inflight:
            self._idle = anyio.Event()
            with anyio.move_on_after(self.drain_timeout):
                await self._idle.wait()
            late = list(self._inflight.values())
            if late:
                _log.warning(
                    "drain deadline passed; cancelling reconciles",
                    controller=self.name,
                    keys=[str(c.request) for c in late],
                    drain_timeout=self.drain_timeout,
                )
            for call in late:
                call.cancel_for_shutdown()

    async def _worker(self, limiter: anyio.CapacityLimiter) -> None:
        try:
            while True:
                try:
                    request = await self.queue.get_async()
                except QueueShutDown:
                    return
                await self._process(request, limiter)
        finally:
            self._workers_left -= 1
            if self._workers_left == 0 and self._all_exited is not None:
                self._all_exited.set()

    # -- one call ------------------------------------------------------------------------------

    async def _process(self, request: Request, limiter: anyio.CapacityLimiter) -> None:
        # Nothing here awaits before the scope is entered, so a taken key is always processed and
        # released. One scope does it all (scopes cost ~5 us each): shielded from the worker's
        # cancellation (shutdown must not cut calls short), yet cancelled by its own deadline (the
        # timeout) or by the drain calling ``scope.cancel()``.
        started = self._clock.monotonic()
        timeout = self.reconcile_timeout
        ctx = ReconcileContext(
            request,
            controller=self.name,
            attempt=self.queue.num_requeues(request),
            deadline=None if timeout is None else started + timeout,
            clock=self._clock,
            resource=self.resource,
            reconcile_id=f"{_IDS.getrandbits(64):016x}",
        )
        call = _Call(request, ctx, started)
        self._inflight[request] = call
        release = True
        tokens = bind_context(**ctx.log_fields())
        try:
            result: Result | None = None
            error: BaseException | None = None
            with anyio.CancelScope(shield=True) as scope:
                call.scope = scope
                if timeout is not None:
                    scope.deadline = anyio.current_time() + timeout
                try:
                    if self.is_async:
                        pending = self._fn(request, self._resolve(request), ctx)
                        result = as_result(await pending)  # type: ignore[misc]  # async by is_async
                    else:
                        await self._thread_slot()
                        value = await _bridge.to_thread(
                            self._run_in_thread, call, abandon_on_cancel=True, limiter=limiter
                        )
                        result = as_result(value)
                except Exception as exc:  # noqa: BLE001 - every failure is recovered and counted
                    error = exc
            if scope.cancelled_caught and result is None and error is None:
                ctx.cancel()
                release = not self._abandon(call)
                if call.shutdown:
                    self._count("cancelled")
                    _log.info("reconcile cancelled by shutdown", controller=self.name, key=str(request))
                    return
                error = ReconcileTimeoutError(
                    f"reconcile of {request} exceeded its {timeout} s timeout"
                    + ("; its thread is still running and its result will be ignored" if not release else ""),
                    seconds=timeout or 0.0,
                )
            self._settle(call, result, error)
        finally:
            reset_context(tokens)
            del self._inflight[request]
            if release:
                self.queue.done(request)
            if self._idle is not None and not self._inflight:
                self._idle.set()

    async def _thread_slot(self) -> None:
        """Wait while ``max_abandoned_threads`` abandoned threads still run (module docstring)."""
        while True:
            with self._lock:
                if self._overrun < self.max_abandoned_threads:
                    return
                waiter = _bridge.Waiter()
                self._slot_waiters.append(waiter)
            try:
                await waiter.wait()
            finally:  # timed out while waiting: do not leave a dead waiter behind
                with self._lock:
                    if waiter in self._slot_waiters:
                        self._slot_waiters.remove(waiter)

    def _run_in_thread(self, call: _Call) -> object:
        with self._lock:
            if call.finished:  # the worker gave up (timeout, stop) before this thread began
                return None
            call.entered = True
        error: BaseException | None = None
        try:
            return self._fn(call.request, self._resolve(call.request), call.ctx)
        except BaseException as exc:
            error = exc
            raise
        finally:
            with self._lock:
                call.finished = True
                abandoned = call.abandoned
                waiters: list[_bridge.Waiter] = []
                if abandoned:
                    self._overrun -= 1
                    waiters, self._slot_waiters = self._slot_waiters, []
            for waiter in waiters:
                waiter.wake()
            if abandoned:
                # The worker gave up on this call; the key was kept busy for us: release it now.
                _log.warning(
                    "abandoned reconcile returned; result ignored",
                    controller=self.name,
                    key=str(call.request),
                    error=None if error is None else repr(error),
                )
                self.queue.done(call.request)

    def _abandon(self, call: _Call) -> bool:
        """For a cancelled sync call: True if its thread still runs and now owns ``done``."""
        if self.is_async:
            return False
        with self._lock:
            if call.finished or not call.entered:
                call.finished = True  # a thread that has not begun will not run it (see _run_in_thread)
                return False
            call.abandoned = True
            self._overrun += 1
            return True

    def _count(self, what: str, seconds: float = 0.0) -> None:
        with self._lock:
            self._counts[what] += 1
            self._seconds += seconds

    def _settle(self, call: _Call, result: Result | None, error: BaseException | None) -> None:
        request, queue = call.request, self.queue
        seconds = self._clock.monotonic() - call.started
        if error is not None:
            label = "error"
            if is_terminal(error):
                self._count("terminal")
                queue.forget(request)
                _log.error(
                    "reconcile failed with a terminal error; not retried",
                    controller=self.name,
                    key=str(request),
                    error=repr(error),
                )
            else:
                panic = _is_panic(error)
                if isinstance(error, ReconcileTimeoutError):
                    self._count("timeout")
                elif panic:
                    self._count("panic")
                delay = queue.add_rate_limited(request)
                # A traceback only for bugs: expected failures (API errors, timeouts) would drown the log.
                _log.error(
                    "reconcile failed; requeued with backoff",
                    controller=self.name,
                    key=str(request),
                    attempt=call.ctx.attempt,
                    retry_in=round(delay, 6),
                    error=repr(error),
                    exc_info=error if panic else None,
                )
        else:
            assert result is not None
            kind = result.kind
            label = kind.value
            if kind is ResultKind.REQUEUE_AFTER:
                queue.forget(request)
                queue.add_after(request, result.delay)
            elif kind is ResultKind.REQUEUE:
                queue.add_rate_limited(request)
            else:
                queue.forget(request)
        self._count(label, seconds)
        if self._metrics is not None:
            self._metrics.on_reconcile(label, seconds)

    # -- introspection -------------------------------------------------------------------------

    def statistics(self) -> WorkerPoolStatistics:
        calls = tuple(self._inflight.values())  # one C-level copy: safe while the loop edits it
        now = self._clock.monotonic()
        with self._lock:
            c = dict(self._counts)
            seconds, overrun = self._seconds, self._overrun
        return WorkerPoolStatistics(
            name=self.name,
            max_concurrent_reconciles=self.workers,
            active_workers=len(self._inflight),
            running=self._running,
            stopping=self._stopping,
            success_total=c["success"],
            error_total=c["error"],
            requeue_total=c["requeue"],
            requeue_after_total=c["requeue_after"],
            terminal_errors_total=c["terminal"],
            panics_total=c["panic"],
            timeouts_total=c["timeout"],
            cancelled_total=c["cancelled"],
            overrun_threads=overrun,
            reconcile_seconds_total=seconds,
            oldest_active_seconds=max((now - call.started for call in calls), default=0.0),
        )

    def __repr__(self) -> str:
        return f"<WorkerPool {self.name} workers={self.workers} active={len(self._inflight)}>"
