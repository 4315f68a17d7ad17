"""A per-group circuit breaker that sheds calls to a sick backend instead of hammering it.

Each *group* (any string; the writer uses an API group/version such as ``apps/v1``) has its own
circuit. **Closed**: calls pass and their outcomes fill a sliding window; when at least
``min_requests`` outcomes in the last ``window`` seconds include a share of failures of at least
``failure_ratio``, the circuit opens. **Open**: calls are shed at once with ``CircuitShedError`` (a
retryable ``InformerdError``; the breaker never retries, its callers decide) until ``cooldown``
seconds have passed. **Half-open**:
at most ``half_open_probes`` trial calls are let through at a time; once that many have succeeded
the circuit closes (with an empty window), and any probe failure opens it again for a cool-down
twice as long as the last one (capped at ``max_cooldown``). Only failures the classifier accepts
count: by default exceptions whose ``retryable`` attribute is true (429, 5xx, timeouts, transport
errors); other errors (404, 409, 422: the caller's fault) count as successes, because the server
answered. Kubernetes-free: time comes from an injected ``Clock``.
Invariant: a call is admitted only while its group is closed, or half-open with fewer than
``half_open_probes`` probes in flight; outcomes of calls admitted under an earlier state are ignored.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

from informers._log import get_logger
from informers.clock import SYSTEM_CLOCK, Clock
from informers.errors import InformerdError

__all__ = [
    "CircuitBreaker",
    "CircuitGroupStatistics",
    "CircuitOptions",
    "CircuitShedError",
    "CircuitState",
    "CircuitStatistics",
    "Permit",
    "is_retryable_failure",
]

_log = get_logger(__name__)

_T = TypeVar("_T")

# The window is kept as this many time buckets, so memory stays bounded whatever the call rate;
# outcomes age out one bucket (window / 30) at a time.
_BUCKETS = 30


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitShedError(InformerdError):
    """A call shed by an open (or fully probing) circuit; nothing was sent. Retryable (later).

    ``group`` names the circuit; ``retry_after`` is the number of seconds until the circuit lets
    a probe through (0 when it is half-open and only waiting for running probes).
    """

    retryable = True

    def __init__(self, group: str, state: CircuitState, retry_after: float) -> None:
        self.group = group
        self.state = state
        self.retry_after = max(0.0, retry_after)
        if state is CircuitState.OPEN:
            why = f"open after repeated failures; next probe in {self.retry_after:.1f} s"
        else:
            why = "half-open and its probe requests are in flight"
        super().__init__(f"circuit for {group!r} is {why}: request shed, not sent")


def is_retryable_failure(exc: BaseException) -> bool:
    """The default classifier: failures are exceptions marked ``retryable`` (server or network trouble)."""
    return bool(getattr(exc, "retryable", False)) and not isinstance(exc, CircuitShedError)


@dataclass(frozen=True, slots=True)
class CircuitOptions:
    """Thresholds of every circuit of one breaker. Durations in seconds."""

    window: float = 30.0
    """Length of the sliding window of outcomes judged while closed. Default 30 s."""

    min_requests: int = 10
    """Outcomes needed in the window before it may open: a few failures on a quiet group are
    left to the callers' own retries. Default 10 calls."""

    failure_ratio: float = 0.5
    """Share of failures in the window (0 < ratio <= 1) that opens the circuit. Default 0.5 (50 %)."""

    cooldown: float = 5.0
    """Seconds the circuit stays open before the first probe. Default 5 s."""

    max_cooldown: float = 60.0
    """Each failed probe doubles the cool-down, up to this. Default 60 s."""

    half_open_probes: int = 1
    """Trial calls let through at a time while half-open; this many successes close the circuit.
    Default 1."""

    def __post_init__(self) -> None:
        if not self.window > 0:
            raise ValueError(f"window must be a positive number of seconds, got {self.window!r}")
        if self.min_requests < 1:
            raise ValueError(f"min_requests must be at least 1, got {self.min_requests!r}")
        if not 0 < self.failure_ratio <= 1:
            raise ValueError(f"failure_ratio must be in (0, 1], got {self.failure_ratio!r}")
        if not self.cooldown > 0:
            raise ValueError(f"cooldown must be a positive number of seconds, got {self.cooldown!r}")
        if self.max_cooldown < self.cooldown:
            raise ValueError(f"max_cooldown ({self.max_cooldown!r}) must be >= cooldown ({self.cooldown!r})")
        if self.half_open_probes < 1:
            raise ValueError(f"half_open_probes must be at least 1, got {self.half_open_probes!r}")


@dataclass(frozen=True, slots=True)
class CircuitGroupStatistics:
    state: CircuitState
    """The stored state: an open circuit whose cool-down has passed reads OPEN until the next call
    turns it half-open (``CircuitBreaker.state`` already reports it half-open)."""
    failures: int
    """Failures recorded while closed or half-open, since creation (not only in the window)."""
    successes: int
    window_failures: int
    """Failures in the current window (closed state only; 0 otherwise)."""
    window_requests: int
    opened: int
    """Times the circuit went closed/half-open -> open."""
    shed: int
    """Calls refused without being sent."""
    probes_in_flight: int
    cooldown: float
    """The cool-down in force (or the next one) in seconds."""


@dataclass(frozen=True, slots=True)
class CircuitStatistics:
    groups: Mapping[str, CircuitGroupStatistics]
    shed: int
    opened: int


@dataclass(slots=True)
class _Circuit:
    """One group's state; every field is guarded by the breaker's lock."""

    cooldown: float
    state: CircuitState = CircuitState.CLOSED
    generation: int = 0  # bumped on every transition; permits from older generations are stale
    buckets: deque[list[float]] = field(default_factory=deque)  # [start, successes, failures]
    open_until: float = 0.0
    probes_in_flight: int = 0
    probe_successes: int = 0
    failures: int = 0
    successes: int = 0
    opened: int = 0
    shed: int = 0


class Permit:
    """Admission of one call; finish it exactly once with ``success``, ``failure`` or ``release``.

    Also a context manager: leaving the block normally records a success, leaving it with an
    exception records what the breaker's classifier makes of it (and re-raises).
    """

    __slots__ = ("_breaker", "_done", "generation", "group", "probe")

    def __init__(self, breaker: CircuitBreaker, group: str, generation: int, probe: bool) -> None:
        self._breaker = breaker
        self._done = False
        self.group = group
        self.generation = generation
        self.probe = probe

    def success(self) -> None:
        self._finish(True)

    def failure(self) -> None:
        self._finish(False)

    def release(self) -> None:
        """Give the permit back without an outcome (the call was abandoned or cancelled)."""
        self._finish(None)

    def outcome(self, exc: BaseException | None) -> None:
        """Finish according to an exception (or its absence), using the breaker's classifier."""
        if exc is None:
            self._finish(True)
        elif isinstance(exc, Exception):
            self._finish(not self._breaker.classify(exc))
        else:  # KeyboardInterrupt, cancellation: says nothing about the server's health
            self._finish(None)

    def _finish(self, ok: bool | None) -> None:
        if self._done:
            return
        self._done = True
        self._breaker._finish(self, ok)

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.outcome(exc)


class CircuitBreaker:
    """Thread-safe circuits by group name; groups are created on first use.

    ``classifier(exc)`` says whether an exception is a failure of the backend (default
    ``is_retryable_failure``). ``on_transition(group, old, new)`` is called outside the lock after
    every state change (for logs/metrics); its exceptions are logged and ignored.
    """

    def __init__(
        self,
        options: CircuitOptions | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        classifier: Callable[[BaseException], bool] = is_retryable_failure,
        on_transition: Callable[[str, CircuitState, CircuitState], None] | None = None,
    ) -> None:
        self.options = options or CircuitOptions()
        self._clock = clock
        self._classifier = classifier
        self._on_transition = on_transition
        self._lock = threading.Lock()
        self._circuits: dict[str, _Circuit] = {}

    # -- public API -----------------------------------------------------------------------------

    def acquire(self, group: str) -> Permit:
        """Admit one call to ``group`` or raise ``CircuitShedError`` at once."""
        transition: tuple[CircuitState, CircuitState] | None = None
        with self._lock:
            circuit = self._circuit(group)
            now = self._clock.monotonic()
            if circuit.state is CircuitState.OPEN:
                if now < circuit.open_until:
                    circuit.shed += 1
                    raise CircuitShedError(group, CircuitState.OPEN, circuit.open_until - now)
                transition = self._move(circuit, CircuitState.HALF_OPEN)
            if circuit.state is CircuitState.HALF_OPEN:
                if circuit.probes_in_flight >= self.options.half_open_probes:
                    circuit.shed += 1
                    error = CircuitShedError(group, CircuitState.HALF_OPEN, 0.0)
                else:
                    circuit.probes_in_flight += 1
                    error = None
                permit = None if error else Permit(self, group, circuit.generation, probe=True)
            else:
                permit, error = Permit(self, group, circuit.generation, probe=False), None
        if transition is not None:
            self._announce(group, *transition)
        if error is not None:
            raise error
        assert permit is not None
        return permit

    def call(self, group: str, fn: Callable[[], _T]) -> _T:
        """Run ``fn()`` under a permit of ``group``; its exception (if any) is recorded and re-raised."""
        with self.acquire(group):
            return fn()

    def classify(self, exc: BaseException) -> bool:
        """Whether ``exc`` counts as a failure of the backend (a classifier bug counts as not)."""
        try:
            return bool(self._classifier(exc))
        except Exception:  # noqa: BLE001 - a classifier bug must not fail the call it classifies
            _log.exception("circuit classifier failed", error_type=type(exc).__name__)
            return False

    def state(self, group: str) -> CircuitState:
        """The group's state as a caller would see it now (an expired open reads as half-open)."""
        with self._lock:
            circuit = self._circuits.get(group)
            if circuit is None:
                return CircuitState.CLOSED
            if circuit.state is CircuitState.OPEN and self._clock.monotonic() >= circuit.open_until:
                return CircuitState.HALF_OPEN
            return circuit.state

    def reset(self, group: str | None = None) -> None:
        """Forget one group's circuit (or all): it starts closed with an empty window."""
        with self._lock:
            if group is None:
                self._circuits.clear()
            else:
                self._circuits.pop(group, None)

    def statistics(self) -> CircuitStatistics:
        with self._lock:
            now = self._clock.monotonic()
            groups = {name: self._group_statistics(c, now) for name, c in sorted(self._circuits.items())}
        return CircuitStatistics(
            groups=groups,
            shed=sum(g.shed for g in groups.values()),
            opened=sum(g.opened for g in groups.values()),
        )

    # -- internals ------------------------------------------------------------------------------

    def _circuit(self, group: str) -> _Circuit:
        circuit = self._circuits.get(group)
        if circuit is None:
            circuit = self._circuits[group] = _Circuit(cooldown=self.options.cooldown)
        return circuit

    def _finish(self, permit: Permit, ok: bool | None) -> None:
        transition: tuple[CircuitState, CircuitState] | None = None
        with self._lock:
            circuit = self._circuits.get(permit.group)
            if circuit is None or circuit.generation != permit.generation:
                return  # admitted under an earlier state (or reset): its outcome is stale
            now = self._clock.monotonic()
            if permit.probe:
                circuit.probes_in_flight -= 1
            if ok is None:
                return
            if ok:
                circuit.successes += 1
            else:
                circuit.failures += 1
            if circuit.state is CircuitState.HALF_OPEN:
                transition = self._probe_outcome(circuit, ok, now)
            elif circuit.state is CircuitState.CLOSED:
                self._count(circuit, ok, now)
                if self._should_open(circuit, now):
                    transition = self._open(circuit, now)
        if transition is not None:
            self._announce(permit.group, *transition)

    def _probe_outcome(self, circuit: _Circuit, ok: bool, now: float) -> tuple[CircuitState, CircuitState] | None:
        if not ok:
            # A failed probe: the server is still sick, so wait longer before the next one.
            circuit.cooldown = min(circuit.cooldown * 2, self.options.max_cooldown)
            return self._open(circuit, now)
        circuit.probe_successes += 1
        if circuit.probe_successes < self.options.half_open_probes:
            return None
        circuit.cooldown = self.options.cooldown
        return self._move(circuit, CircuitState.CLOSED)

    def _count(self, circuit: _Circuit, ok: bool, now: float) -> None:
        width = self.options.window / _BUCKETS
        buckets = circuit.buckets
        if not buckets or now >= buckets[-1][0] + width:
            buckets.append([now, 0.0, 0.0])
        buckets[-1][1 if ok else 2] += 1

    def _window(self, circuit: _Circuit, now: float) -> tuple[int, int]:
        """(requests, failures) in the window, dropping buckets that ended before it began."""
        width = self.options.window / _BUCKETS
        buckets = circuit.buckets
        while buckets and buckets[0][0] + width <= now - self.options.window:
            buckets.popleft()
        successes = sum(int(b[1]) for b in buckets)
        failures = sum(int(b[2]) for b in buckets)
        return successes + failures, failures

    def _should_open(self, circuit: _Circuit, now: float) -> bool:
        requests, failures = self._window(circuit, now)
        return requests >= self.options.min_requests and failures >= self.options.failure_ratio * requests

    def _open(self, circuit: _Circuit, now: float) -> tuple[CircuitState, CircuitState]:
        circuit.open_until = now + circuit.cooldown
        circuit.opened += 1
        return self._move(circuit, CircuitState.OPEN)

    @staticmethod
    def _move(circuit: _Circuit, new: CircuitState) -> tuple[CircuitState, CircuitState]:
        old = circuit.state
        circuit.state = new
        circuit.generation += 1
        circuit.buckets.clear()
        circuit.probes_in_flight = 0
        circuit.probe_successes = 0
        return old, new

    def _announce(self, group: str, old: CircuitState, new: CircuitState) -> None:
        log = _log.warning if new is CircuitState.OPEN else _log.info
        log("circuit state changed", group=group, old=old.value, new=new.value)
        if self._on_transition is None:
            return
        try:
            self._on_transition(group, old, new)
        except Exception:  # noqa: BLE001 - a listener's bug must not break the breaker
            _log.exception("circuit transition callback failed", group=group)

    def _group_statistics(self, circuit: _Circuit, now: float) -> CircuitGroupStatistics:
        requests, failures = self._window(circuit, now) if circuit.state is CircuitState.CLOSED else (0, 0)
        return CircuitGroupStatistics(
            state=circuit.state,
            failures=circuit.failures,
            successes=circuit.successes,
            window_failures=failures,
            window_requests=requests,
            opened=circuit.opened,
            shed=circuit.shed,
            probes_in_flight=circuit.probes_in_flight,
            cooldown=circuit.cooldown,
        )
