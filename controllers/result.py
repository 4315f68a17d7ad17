"""What a reconcile asks the controller to do next: nothing, retry with backoff, or look again later.

``Result.done()`` (or returning ``None``) means the object is converged: the key's failure history
is forgotten. ``Result.requeue()`` asks for another pass after the rate limiter's delay (counting as
a failure, so repeated requeues back off exponentially). ``Result.requeue_after(seconds)`` forgets
the history and schedules the key once the delay has passed (polling an external system).
Invariant: a ``Result`` is immutable and ``delay`` is a finite number of seconds >= 0, non-zero
only for ``REQUEUE_AFTER``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from .errors import InvalidResultError

__all__ = ["Result", "ResultKind", "as_result"]


class ResultKind(enum.Enum):
    """The three outcomes; the values are controller-runtime's ``result`` metric labels."""

    DONE = "success"
    REQUEUE = "requeue"
    REQUEUE_AFTER = "requeue_after"


@dataclass(frozen=True, slots=True)
class Result:
    """Build with ``Result.done()``, ``Result.requeue()`` or ``Result.requeue_after(seconds)``."""

    kind: ResultKind = ResultKind.DONE
    #: Seconds to wait for ``REQUEUE_AFTER``; 0.0 otherwise.
    delay: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ResultKind):
            raise TypeError(f"Result.kind must be a ResultKind, got {self.kind!r}")
        if not (isinstance(self.delay, (int, float)) and math.isfinite(self.delay) and self.delay >= 0):
            raise ValueError(f"Result.delay must be a finite number of seconds >= 0, got {self.delay!r}")
        if self.kind is not ResultKind.REQUEUE_AFTER and self.delay:
            raise ValueError(f"Result.delay is only meaningful for REQUEUE_AFTER, got {self.kind.name}")

    @classmethod
    def done(cls) -> Result:
        return _DONE

    @classmethod
    def requeue(cls) -> Result:
        """Reconcile again after the rate limiter's delay (the failure count grows)."""
        return _REQUEUE

    @classmethod
    def requeue_after(cls, seconds: float) -> Result:
        """Reconcile again after ``seconds`` (the failure count is reset first)."""
        return cls(ResultKind.REQUEUE_AFTER, float(seconds))

    def __str__(self) -> str:
        if self.kind is ResultKind.REQUEUE_AFTER:
            return f"requeue_after({self.delay:g}s)"
        return str(self.kind.value)


_DONE = Result(ResultKind.DONE)
_REQUEUE = Result(ResultKind.REQUEUE)


def as_result(value: object) -> Result:
    """``None`` -> ``Result.done()``; a ``Result`` as is; anything else raises
    ``InvalidResultError`` (a coroutine here means an async reconciler was called as a sync one)."""
    if value is None:
        return _DONE
    if isinstance(value, Result):
        return value
    if hasattr(value, "__await__"):
        close = getattr(value, "close", None)
        if callable(close):
            close()  # don't leave a "coroutine was never awaited" warning behind
        raise InvalidResultError(
            "the reconciler returned an awaitable from a plain call: declare it with 'async def' "
            "so the controller awaits it"
        )
    raise InvalidResultError(f"a reconciler must return a Result or None, got {type(value).__name__}: {value!r}")
