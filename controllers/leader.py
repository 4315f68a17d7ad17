"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

``LeaderElector`` campaigns for one Lease and keeps it renewed; ``async with
elector.leadership() as lease:`` returns once this process leads, runs its body while it leads,
and cancels the body the moment leadership is lost (raising ``LeaderElectionLostError`` after
it), or releases the Lease when the body ends cleanly, so a standby takes over at once. The rules
are client-go's ``tools/leaderelection``: a leader renews optimistically with the Lease's
resourceVersion, anyone else reads it (creating it if missing) and takes it only when it is free
or expired; *expired* means this process has seen no change of the record for
``leaseDurationSeconds`` of its own clock, so ``renewTime`` is never compared with the local
clock and skew between machines is harmless. Candidates retry every ``retry_period`` with jitter
1.2; a leader that has not renewed ``retry_period + renew_deadline`` after its last renewal has
lost. Every request goes through an ``ApiWriter`` (retry budget, circuit breaker) on the
elector's own thread token, so renewals never queue behind user code; while leading, a watchdog
thread declares the loss at the deadline even when the event loop is blocked.
Invariant: the body of ``leadership()`` runs only between a successful acquisition and the
earliest moment this process could have lost the Lease, and a release is only written after the
body has ended.
"""

from __future__ import annotations

import functools
import random
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
import anyio.abc

from informers import _bridge
from informers._log import get_logger
from informers.clock import SYSTEM_CLOCK, Clock
from informers.errors import ConflictError, InformerdError, NotFoundError
from informers.objects import RawObject
from informers.resources import Resource

from .errors import ControllerError, ControllerStateError
from .recorder import EventRecorder
from .writer import ApiWriter

__all__ = [
    "JITTER_FACTOR",
    "LEASES",
    "ElectionOptions",
    "ElectionStatistics",
    "LeaderElectionLostError",
    "LeaderElector",
    "Leadership",
    "LeaseRecord",
    "default_identity",
]

_log = get_logger(__name__)
_R = TypeVar("_R")

LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True)
JITTER_FACTOR = 1.2
"""client-go's: a candidate waits ``retry_period * (1 + random() * 1.2)`` between attempts."""


@dataclass(frozen=True, slots=True)
class ElectionOptions:
    """Timing of the election, in seconds; the defaults are controller-runtime's."""

    lease_duration: float = 15.0
    """How long a candidate waits without seeing the record change before it takes the Lease
    (written as ``leaseDurationSeconds``: whole seconds). Default 15 s. Raise it to tolerate
    faster-running clocks or slow apiservers; it is also the worst-case failover time."""
    renew_deadline: float = 10.0
    """How long a leader keeps retrying a renewal before giving up. Default 10 s."""
    retry_period: float = 2.0
    """Between attempts (candidates add jitter 1.2, leaders do not). Default 2 s."""
    release_on_cancel: bool = True
    """Release the Lease when ``leadership()``'s body ends (holder ``""``, duration 1 s), so a
    standby takes over at once. Default True (client-go's default is False; here the body has
    always finished when the release is written, which is what client-go asks of its users)."""

    def __post_init__(self) -> None:
        for name in ("lease_duration", "renew_deadline", "retry_period"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if not float(self.lease_duration).is_integer():
            raise ValueError(
                f"lease_duration must be whole seconds (leaseDurationSeconds), got {self.lease_duration!r}"
            )
        if not self.lease_duration > self.renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if not self.renew_deadline > JITTER_FACTOR * self.retry_period:
            raise ValueError(f"renew_deadline must be greater than retry_period * {JITTER_FACTOR}")


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The election record kept in a Lease's spec (client-go's ``LeaderElectionRecord``)."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    leader_transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Mapping[str, Any]) -> LeaseRecord:
        spec = lease.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}

        def text(key: str) -> str | None:
            value = spec.get(key)
            return value if isinstance(value, str) else None

        def number(key: str) -> int:
            value = spec.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        return cls(
            text("holderIdentity") or "",
            number("leaseDurationSeconds"),
            text("acquireTime"),
            text("renewTime"),
            number("leaseTransitions"),
        )

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.leader_transitions,
        }
        if self.acquire_time is not None:
            out["acquireTime"] = self.acquire_time
        if self.renew_time is not None:
            out["renewTime"] = self.renew_time
        return out


@dataclass(frozen=True, slots=True)
class ElectionStatistics:
    """One elector's state; ``samples()`` gives controller-runtime's ``leader_election_master_status``."""

    name: str
    """The Lease's name (the metric's ``name`` label)."""
    namespace: str
    identity: str
    is_leader: bool
    holder: str
    """The holder last observed on the Lease (``""``: free or released)."""
    transitions: int
    """``leaseTransitions`` last observed."""
    last_renew: float | None
    """Wall-clock time of this elector's last successful acquisition or renewal."""
    last_error: str | None
    acquisitions: int
    losses: int
    attempts: int
    failed_attempts: int

    def samples(self) -> tuple[tuple[str, dict[str, str], float], ...]:
        return (("leader_election_master_status", {"name": self.name}, 1.0 if self.is_leader else 0.0),)


class LeaderElectionLostError(ControllerError):
    """Raised by ``leadership()`` after its body was cancelled because leadership was lost
    (controller-runtime's "leader election lost"; a daemon should exit non-zero)."""


class Leadership:
    """Yielded by ``leadership()`` once leading. ``lost`` is set the moment leadership is lost,
    from whichever thread noticed: tasks ``await lease.lost.wait()``, threads (sync reconcilers)
    check ``lease.lost.is_set()`` or block on ``lease.lost.wait_blocking()``."""

    __slots__ = ("_scopes", "identity", "lost", "name", "reason")

    def __init__(self, name: str, identity: str) -> None:
        self.name = name
        self.identity = identity
        self.lost = _bridge.Flag()
        self.reason: str | None = None
        self._scopes = (anyio.CancelScope(), anyio.CancelScope())  # the body's, the renewals'

    def _cancel(self) -> None:
        for scope in self._scopes:
            scope.cancel()

    def __repr__(self) -> str:
        return f"<Leadership {self.name} {self.identity} lost={self.lost.is_set()}>"


def default_identity() -> str:
    """controller-runtime's identity: ``<hostname>_<uuid4>``."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _micro_time(wall: float) -> str:
    return datetime.fromtimestamp(wall, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Watchdog:
    """Declares the loss at the renew deadline from its own thread, so a blocked event loop
    cannot hide it. ``arm`` moves the deadline; ``stop`` ends the thread."""

    def __init__(self, clock: Clock, fire: Callable[[], None]) -> None:
        self._clock = clock
        self._fire = fire
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._stopped = False
        self.running = _bridge.Flag()

    def arm(self, deadline: float) -> None:
        with self._cond:
            self._deadline = deadline
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def run(self) -> None:
        self.running.set()
        with self._cond:
            while True:
                if self._stopped:
                    return
                if self._deadline is not None:
                    remaining = self._deadline - self._clock.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                else:
                    self._cond.wait()
        self._fire()


class LeaderElector:
    """Campaigns for the Lease ``namespace/name`` as ``identity`` (default ``default_identity()``).

    ``recorder``: Events ``<identity> became leader`` / ``<identity> stopped leading`` (Normal,
    reason ``LeaderElection``) on the Lease. ``on_lost``: a plain callable run the moment the loss
    is noticed, from the noticing thread (quick, thread-safe; e.g. exit the process as
    controller-runtime does). ``watchdog=False`` turns off the watchdog thread (only for tests with
    a ``FakeClock``); ``clock``, ``sleep`` and ``rng`` are for tests.
    """

    def __init__(
        self,
        writer: ApiWriter,
        name: str,
        namespace: str,
        *,
        identity: str | None = None,
        options: ElectionOptions | None = None,
        recorder: EventRecorder | None = None,
        on_lost: Callable[[], None] | None = None,
        watchdog: bool = True,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not name or not namespace:
            raise ValueError("a Lease needs a name and a namespace")
        self.writer = writer
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.options = options or ElectionOptions()
        self.recorder = recorder
        self._on_lost = on_lost
        self._use_watchdog = watchdog
        self._clock = clock
        self._sleep = sleep or anyio.sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._lease: RawObject | None = None  # last Lease read or written: carries the resourceVersion
        self._observed = LeaseRecord()
        self._observed_time = float("-inf")
        self._leading = False
        self._active = False
        self._renew_by = 0.0
        self._limiter: anyio.CapacityLimiter | None = None
        self._loop: _bridge.Loop | None = None
        self._last_renew: float | None = None
        self._last_error: str | None = None
        self._counts = dict.fromkeys(("acquisitions", "losses", "attempts", "failed_attempts"), 0)

    # -- the user's side --------------------------------------------------------------------------

    @asynccontextmanager
    async def leadership(self) -> AsyncIterator[Leadership]:
        """Wait until this process leads, then run the body while it does (see the module
        docstring). Cancelled before leading: the body never runs, nothing is written. Body ended:
        the Lease is released (``release_on_cancel``). Leadership lost: the body is cancelled at
        once and ``LeaderElectionLostError`` is raised when it has unwound."""
        with self._lock:
            if self._active:
                raise ControllerStateError(f"leader elector {self.name!r} is already campaigning")
            self._active = True
        handle = Leadership(self.name, self.identity)
        self._loop = _bridge.Loop.current()
        self._limiter = anyio.CapacityLimiter(1)
        try:
            async with anyio.create_task_group() as group:
                await group.start(self._campaign, handle, name=f"leader election {self.name}")
                try:
                    with handle._scopes[0]:
                        yield handle
                finally:
                    group.cancel_scope.cancel()  # stop renewing; the campaign releases (shielded)
        except BaseExceptionGroup as errors:  # one failure in the group: raise it as itself
            if len(errors.exceptions) == 1 and not isinstance(errors.exceptions[0], BaseExceptionGroup):
                error = errors.exceptions[0]
                raise error from error.__cause__
            raise
        finally:
            with self._lock:
                self._active = False
        if handle.lost.is_set():
            raise LeaderElectionLostError(
                f"leader election lost: {self.identity} on Lease {self.namespace}/{self.name}: {handle.reason}"
            )

    def is_leader(self) -> bool:
        """True from a successful acquisition until the loss is noticed or leadership ends."""
        return self._leading

    def statistics(self) -> ElectionStatistics:
        with self._lock:
            return ElectionStatistics(
                name=self.name,
                namespace=self.namespace,
                identity=self.identity,
                is_leader=self._leading,
                holder=self._observed.holder_identity,
                transitions=self._observed.leader_transitions,
                last_renew=self._last_renew,
                last_error=self._last_error,
                **self._counts,
            )

    # -- the campaign (one task on the loop) ---------------------------------------------------

    async def _campaign(self, handle: Leadership, *, task_status: anyio.abc.TaskStatus[Leadership]) -> None:
        retry = self.options.retry_period
        while not await self.try_acquire_or_renew():
            await self._sleep(retry * (1.0 + self._rng.random() * JITTER_FACTOR))
        watchdog = _Watchdog(self._clock, functools.partial(self._lose, handle, "renew deadline passed (watchdog)"))
        self._became_leader(watchdog)
        try:
            async with anyio.create_task_group() as group:
                if self._use_watchdog:
                    group.start_soon(self._run_watchdog, watchdog)
                    await watchdog.running.wait()  # on guard before the body can block the loop
                task_status.started(handle)
                with handle._scopes[1]:
                    await self._renew(handle, watchdog)
                group.cancel_scope.cancel()
        finally:
            watchdog.stop()
            with anyio.CancelScope(shield=True):
                await self._stopped_leading()

    async def _run_watchdog(self, watchdog: _Watchdog) -> None:
        try:
            await _bridge.to_thread(watchdog.run, limiter=anyio.CapacityLimiter(1), abandon_on_cancel=True)
        finally:
            watchdog.stop()

    async def _renew(self, handle: Leadership, watchdog: _Watchdog) -> None:
        """Renew every ``retry_period`` until a renewal misses its deadline or another holder shows."""
        options, clock = self.options, self._clock
        while True:
            await self._sleep(options.retry_period)
            while True:
                remaining = self._renew_by - clock.monotonic()
                if remaining <= 0:
                    self._lose(handle, f"not renewed within the renew deadline of {options.renew_deadline:g} s")
                    return
                renewed = False
                with anyio.move_on_after(remaining):  # a hung request is abandoned at the deadline
                    renewed = await self.try_acquire_or_renew()
                if renewed:
                    self._renewed(watchdog)
                    break
                if self._observed.holder_identity not in ("", self.identity) and self._lease_valid():
                    self._lose(handle, f"the Lease is held by {self._observed.holder_identity}")
                    return
                remaining = self._renew_by - clock.monotonic()
                if remaining > 0:
                    await self._sleep(min(options.retry_period, remaining))

    def _became_leader(self, watchdog: _Watchdog) -> None:
        with self._lock:
            self._leading = True
            self._counts["acquisitions"] += 1
        self._renewed(watchdog)
        _log.info(
            "became leader",
            lease=f"{self.namespace}/{self.name}",
            identity=self.identity,
            transitions=self._observed.leader_transitions,
        )
        self._event("became leader")

    def _renewed(self, watchdog: _Watchdog) -> None:
        self._renew_by = self._clock.monotonic() + self.options.retry_period + self.options.renew_deadline
        watchdog.arm(self._renew_by)

    def _lose(self, handle: Leadership, reason: str) -> None:
        """Declare the loss once, from the loop or the watchdog's thread: flag, hook, cancel."""
        with self._lock:
            if handle.reason is not None or not self._leading:
                return
            self._leading = False
            self._counts["losses"] += 1
            handle.reason = reason
        handle.lost.set()
        _log.error("leadership lost", lease=f"{self.namespace}/{self.name}", identity=self.identity, reason=reason)
        if self._on_lost is not None:
            try:
                self._on_lost()
            except Exception:  # noqa: BLE001 - the loss must still be delivered
                _log.exception("on_lost hook failed", lease=f"{self.namespace}/{self.name}")
        loop = self._loop
        if loop is None or loop.in_loop_thread():
            handle._cancel()
        else:
            loop.call_soon(handle._cancel)

    async def _stopped_leading(self) -> None:
        with self._lock:
            self._leading = False
        if self.options.release_on_cancel:
            with anyio.move_on_after(self.options.renew_deadline):
                await self.release()
        _log.info("stopped leading", lease=f"{self.namespace}/{self.name}", identity=self.identity)
        self._event("stopped leading")

    def _event(self, what: str) -> None:
        if self.recorder is not None and self._lease is not None:
            self.recorder.record(self._lease, "Normal", "LeaderElection", f"{self.identity} {what}", resource=LEASES)

    # -- one attempt (client-go's tryAcquireOrRenew) and the release ---------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One attempt, as client-go: a leader whose lease is still valid first updates
        optimistically from its last copy (a conflict falls through to a re-read); otherwise read
        the Lease (create it if missing), note the local time whenever the record changed, refuse
        a holder seen renewing within its ``leaseDurationSeconds``, and write ourselves in (a new
        holder gets ``acquireTime`` now and ``leaseTransitions`` + 1). True if we hold it now."""
        ok = False
        try:
            ok = await self._attempt()
        finally:
            with self._lock:
                self._counts["attempts"] += 1
                self._counts["failed_attempts"] += not ok
        return ok

    async def _attempt(self) -> bool:
        now = _micro_time(self._clock.time())
        desired = LeaseRecord(self.identity, int(self.options.lease_duration), now, now, 0)
        if self._holds() and self._lease_valid() and self._lease is not None:
            mine = replace(
                desired, acquire_time=self._observed.acquire_time, leader_transitions=self._observed.leader_transitions
            )
            try:
                return self._wrote(await self._call(self.writer.update, LEASES, self._body(self._lease, mine)))
            except ConflictError as exc:  # someone else wrote: re-read below
                self._failed("optimistic renewal conflicted; re-reading the Lease", exc)
            except InformerdError as exc:
                self._failed("optimistic renewal failed; re-reading the Lease", exc)
        try:
            lease = await self._call(self.writer.get, LEASES, self.name, namespace=self.namespace)
        except NotFoundError:
            try:
                return self._wrote(await self._call(self.writer.create, LEASES, self._body(None, desired)))
            except InformerdError as exc:
                self._failed("cannot create the Lease", exc)
                return False
        except InformerdError as exc:
            self._failed("cannot read the Lease", exc)
            return False
        self._observe(lease)
        record = self._observed
        if record.holder_identity and self._lease_valid() and not self._holds():
            _log.debug(
                "the Lease is held and not expired",
                lease=f"{self.namespace}/{self.name}",
                holder=record.holder_identity,
            )
            return False
        if self._holds():
            desired = replace(desired, acquire_time=record.acquire_time, leader_transitions=record.leader_transitions)
        else:
            desired = replace(desired, leader_transitions=record.leader_transitions + 1)
        try:
            return self._wrote(await self._call(self.writer.update, LEASES, self._body(lease, desired)))
        except InformerdError as exc:
            self._failed("cannot update the Lease", exc)
            return False

    async def release(self) -> bool:
        """Give the Lease up if we hold it: holder ``""``, duration 1 s, times now, transitions
        kept. A conflict re-reads once and releases only if we still hold it. True if released."""
        if not self._holds() or self._lease is None:
            return False
        now = _micro_time(self._clock.time())
        record = LeaseRecord("", 1, now, now, self._observed.leader_transitions)
        try:
            try:
                lease = await self._call(self.writer.update, LEASES, self._body(self._lease, record))
            except ConflictError:
                current = await self._call(self.writer.get, LEASES, self.name, namespace=self.namespace)
                self._observe(current)
                if not self._holds():
                    return False
                record = replace(record, leader_transitions=self._observed.leader_transitions)
                lease = await self._call(self.writer.update, LEASES, self._body(current, record))
        except InformerdError as exc:
            self._failed("cannot release the Lease", exc)
            return False
        self._wrote(lease)
        _log.info("released the Lease", lease=f"{self.namespace}/{self.name}", identity=self.identity)
        return True

    # -- bookkeeping ---------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
        # The elector's own token: renewals never wait behind user code on anyio's default limiter.
        limiter = self._limiter or anyio.CapacityLimiter(1)
        return await _bridge.to_thread(functools.partial(fn, *args, **kwargs), limiter=limiter, abandon_on_cancel=True)

    def _body(self, lease: RawObject | None, record: LeaseRecord) -> dict[str, Any]:
        if lease is None:
            return {
                "apiVersion": LEASES.api_version,
                "kind": LEASES.kind,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": record.spec(),
            }
        spec = lease.get("spec")
        # Fields this elector does not manage (strategy, preferredHolder) are kept as they are.
        return {**lease, "spec": {**(spec if isinstance(spec, Mapping) else {}), **record.spec()}}

    def _holds(self) -> bool:
        return self._observed.holder_identity == self.identity

    def _lease_valid(self) -> bool:
        """Local observation only: the record changed less than its leaseDurationSeconds ago."""
        return self._observed_time + self._observed.lease_duration_seconds > self._clock.monotonic()

    def _observe(self, lease: RawObject) -> None:
        record = LeaseRecord.from_lease(lease)
        self._lease = lease
        if record != self._observed:
            if record.holder_identity != self._observed.holder_identity:
                _log.info(
                    "new leader observed", lease=f"{self.namespace}/{self.name}", holder=record.holder_identity or None
                )
            with self._lock:
                self._observed = record
            self._observed_time = self._clock.monotonic()

    def _wrote(self, lease: RawObject) -> bool:
        """Our write succeeded: what the server stored is what we observe, as of now."""
        self._observe(lease)
        self._observed_time = self._clock.monotonic()
        if self._holds():
            with self._lock:
                self._last_renew = self._clock.time()
        return True

    def _failed(self, what: str, exc: BaseException) -> None:
        with self._lock:
            self._last_error = f"{type(exc).__name__}: {exc}"
        _log.warning(
            what, lease=f"{self.namespace}/{self.name}", identity=self.identity, error=f"{type(exc).__name__}: {exc}"
        )

    def __repr__(self) -> str:
        return f"<LeaderElector {self.namespace}/{self.name} {self.identity} leading={self._leading}>"
