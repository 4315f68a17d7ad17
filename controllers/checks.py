"""Ready-made health checks over informers and controllers, for ``probes.HealthChecks``.

Each function returns a ``Check`` (a callable that returns when healthy and raises
``HealthCheckError`` with the reason when not); all of them only read ``statistics()`` records and
informer flags, so they are cheap enough to run on the event loop at every probe.

* ``informers_synced`` (readiness): every informer has its first full list in the cache.
* ``controllers_synced`` (readiness): every controller's caches and handlers synced (workers run).
* ``watches_healthy`` (liveness): no informer has gone without a sign of life for longer than its
  idle deadline, one backoff and a grace period. Signs of life are a list page, a watch event
  (bookmarks included) and a watch the server accepted. A quiet resource sends nothing at all
  (bookmarks come only when the resource's resourceVersion moved, about once a minute on a busy
  one), so silence alone proves nothing; but every watch ends within its server timeout
  (``InformerOptions.watch_timeout_range``, 5-10 min) and is opened again, and a half-open stream
  is cut at the client's idle deadline (default: that timeout + 30 s) and opened again. An
  informer whose signs of life stop for longer is not recovering by itself: its thread is stuck,
  or every reopen fails (the apiserver is unreachable or refuses it: the reason carries the last
  error and the stalled restarts). With the defaults that is 11.5 minutes; lower
  ``InformerOptions.idle_timeout`` and ``backoff_cap`` (the daemon's ``informers.idleTimeout`` and
  ``informers.maxBackoff``) and ``grace`` (``health.stallGrace``) to detect stalls sooner. It also fails
  once an informer's progress check (``InformerStatistics.progress``) has found it making no
  progress for longer than ``grace``: its resume point is ahead of the server (a resourceVersion
  from the future, which a watch waits for silently while looking alive), or the server holds a
  change of its selection that its watch has not delivered.
* ``workers_not_wedged`` (liveness): a controller whose workers are all busy while the oldest of
  their calls has run far past the reconcile timeout (default twice the timeout plus 30 s) is
  wedged: the timeout could not free the workers (a call that ignores cancellation, or waits on a
  thread that does not return), and no key makes progress.

Invariant: a check never raises anything but ``HealthCheckError`` for a verdict, and a component
that has not started yet (no informers, no controllers) is healthy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from informers.clock import SYSTEM_CLOCK, Clock

from .probes import Check, HealthCheckError

__all__ = ["controllers_synced", "informers_synced", "watches_healthy", "workers_not_wedged"]

_Many = Any  # an object with ``.informers`` (a factory), a zero-argument callable, or an iterable
_MAX_LISTED = 5  # informers named in one reason; the rest are counted


def _informers(source: _Many) -> list[Any]:
    if hasattr(source, "informers"):
        return list(source.informers or ())
    if callable(source):
        return list(source() or ())
    return list(source or ())


def _controllers(source: Any) -> list[Any]:
    if hasattr(source, "pool") and hasattr(source, "statistics"):  # one controller
        return [source]
    if callable(source):
        return list(source() or ())
    return list(source or ())


def _summary(problems: list[str]) -> str:
    shown = "; ".join(problems[:_MAX_LISTED])
    more = len(problems) - _MAX_LISTED
    return shown + (f"; and {more} more" if more > 0 else "")


def _error_text(error: object) -> str:
    if error is None:
        return "no error yet"
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error)


def informers_synced(factory: _Many) -> Check:
    """Readiness: every informer of ``factory`` (an ``InformerFactory``, or a callable returning
    informers) has synced; the reason names the laggards and their last errors."""

    def check() -> None:
        laggards = [f"{i.name} ({_error_text(i.last_error)})" for i in _informers(factory) if not i.has_synced()]
        if laggards:
            raise HealthCheckError(f"{len(laggards)} informer(s) not synced: {_summary(laggards)}")

    return check


def controllers_synced(controllers: Callable[[], Iterable[Any]] | Iterable[Any]) -> Check:
    """Readiness: every controller (a callable returning them, e.g. ``lambda: manager.controllers``)
    has synced its caches and handlers and started its workers."""

    def check() -> None:
        waiting = [c.name for c in _controllers(controllers) if not c.has_synced()]
        if waiting:
            raise HealthCheckError(f"{len(waiting)} controller(s) not synced: {_summary(waiting)}")

    return check


def watches_healthy(factory: _Many, *, grace: float = 30.0, clock: Clock = SYSTEM_CLOCK) -> Check:
    """Liveness: see the module docstring. ``grace`` (seconds, default 30) is added to each
    informer's deadline (its idle deadline plus its backoff cap). Informers not started are
    skipped; one started but never heard from counts from when this check first saw it."""
    if grace < 0:
        raise ValueError(f"grace must be >= 0 seconds, got {grace!r}")
    first_seen: dict[int, float] = {}

    def check() -> None:
        now = clock.time()
        problems: list[str] = []
        informers = _informers(factory)
        alive = {id(i) for i in informers}
        for key in [k for k in first_seen if k not in alive]:
            del first_seen[key]
        for informer in informers:
            if not informer.started:
                continue
            stats = informer.statistics()
            seen = first_seen.setdefault(id(informer), now)
            signs = [t for t in (stats.watcher.last_event_time, stats.reflector.last_watch_open_time) if t is not None]
            last = max(signs) if signs else seen
            deadline = _deadline(informer, stats) + grace
            silent = now - last
            failing = stats.watcher.watch_failing_since
            if silent > deadline:
                problems.append(
                    f"{stats.name}: no list page, watch event or accepted watch for {silent:.0f} s "
                    f"(deadline {deadline:.0f} s; stalled restarts {stats.watcher.watch_restarts.get('stalled', 0)}, "
                    f"last error: {_error_text(stats.reflector.last_error or stats.watcher.last_error)})"
                )
            elif failing is not None and now - failing > deadline:
                # Lists may succeed (fresh data every backoff) while every watch is refused, e.g. a
                # user allowed to list but not to watch: surface it rather than look healthy.
                problems.append(
                    f"{stats.name}: watch failing for {now - failing:.0f} s (deadline {deadline:.0f} s; "
                    f"last error: {_error_text(stats.watcher.last_error)})"
                )
            progress: Any = getattr(stats, "progress", None)
            stalled = None if progress is None else progress.stalled_since
            if stalled is not None and now - stalled > grace:
                problems.append(f"{stats.name}: no progress for {now - stalled:.0f} s: {progress.stall_reason}")
        if problems:
            raise HealthCheckError(f"{len(problems)} informer(s) not recovering: {_summary(problems)}")

    return check


def _deadline(informer: Any, stats: Any) -> float:
    """The idle deadline a watch of ``informer`` gets, plus one backoff at its cap."""
    options = getattr(informer, "options", None)
    high = float(options.watch_timeout_range[1]) if options is not None else 600.0
    cap = float(options.backoff_cap) if options is not None else 30.0
    idle = stats.reflector.idle_timeout
    return (float(idle) if idle else high + 30.0) + cap


def workers_not_wedged(controller: Any, *, threshold: float | None = None) -> Check:
    """Liveness: fails while every worker of ``controller`` (a ``Controller``, or a callable
    returning controllers) is busy and the oldest call has run longer than ``threshold`` seconds
    (default: twice the reconcile timeout plus 30 s; a controller without a timeout and without a
    threshold is never judged)."""
    if threshold is not None and not threshold > 0:
        raise ValueError(f"threshold must be > 0 seconds, got {threshold!r}")

    def check() -> None:
        wedged: list[str] = []
        for c in _controllers(controller):
            timeout = getattr(c.pool, "reconcile_timeout", None)
            limit = threshold if threshold is not None else (None if timeout is None else 2 * timeout + 30.0)
            if limit is None:
                continue
            w = c.statistics().workers
            if w.running and w.active_workers >= w.max_concurrent_reconciles and w.oldest_active_seconds > limit:
                wedged.append(
                    f"{c.name}: all {w.max_concurrent_reconciles} worker(s) busy, the oldest call for "
                    f"{w.oldest_active_seconds:.1f} s (limit {limit:g} s)"
                )
        if wedged:
            raise HealthCheckError(f"{len(wedged)} controller(s) wedged: {_summary(wedged)}")

    return check
