"""Retry policy shared by every layer that repeats an apiserver request: one budget per call.

A ``RetryBudget`` is created once per public call and passed down to every layer inside it; a
layer that wants to send the request again first asks ``spend()``, so the repeats of all layers
add up to at most ``retries`` instead of multiplying (an ``ApiWriter`` retry used to get the
client's full ten ``Retry-After`` retries again: 44 requests for one call against a 503).

How many requests one call may send, first attempt included:

- ``ApiClient.request`` / ``ApiClient.watch`` (opening it): ``1 + ClientConfig.max_retries``
  (default 11), client-go's behaviour. The client repeats 429/5xx answers that carry
  ``Retry-After`` (any method) and GETs whose connection failed before an answer, all from one
  budget; at most ``connection_retries`` (default 3) of the repeats follow connection failures,
  so a GET to a server that drops every connection is sent ``1 + min(connection_retries,
  max_retries)`` times (default 4).
- An ``ApiWriter`` call (get, create, update, patch, apply, delete...): ``1 +
  WriterOptions.retries`` (default 4), whatever the cause. The client does not repeat inside a
  writer call (``retry_in_client=False``): the writer owns the loop, waits the server's
  ``Retry-After`` when given (else its jittered backoff), and each repeat takes an in-flight
  slot and a circuit permit again.
- ``CircuitBreaker``: never repeats; an open circuit sheds the call (``CircuitShedError``).
- The controller's requeue is the outer layer: a requeued key is a new reconcile whose calls
  get new budgets.

Which writes may be repeated is the writer's business, not the budget's: a ``generateName``
create or a JSON patch without a ``test`` op is repeated only after a 429 (refused before any
work), never after an unknown outcome. ``parse_retry_after`` is the one reader of the
``Retry-After`` header: numeric seconds only (the apiserver always sends whole seconds; the
HTTP-date form is ignored because it never sends it); negative, NaN or infinite values are
rejected. Invariant: every request of a call, first or repeated, passes ``start_attempt()``, and
a repeat is only started after ``spend()`` granted it, so a call never sends more than
``1 + retries`` requests. A budget belongs to one call, hence to one thread: it has no lock.
"""

from __future__ import annotations

import math

__all__ = ["RetryBudget", "parse_retry_after"]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header value, or None when absent or not a usable number."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # the HTTP-date form, or garbage
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class RetryBudget:
    """The repeats one public call may still make, shared by every layer inside the call.

    ``retries``: repeats in all, whatever the cause. ``connection_retries``: of those, how many
    may follow a connection failure (default: all of them). ``retry_in_client``: whether the
    ``ApiClient`` may wait and resend by itself; False when an outer layer owns the loop.
    """

    __slots__ = ("attempts", "connection_retries", "connection_spent", "retries", "retry_in_client", "spent")

    def __init__(self, retries: int, *, connection_retries: int | None = None, retry_in_client: bool = True) -> None:
        if retries < 0 or (connection_retries is not None and connection_retries < 0):
            raise ValueError("retry budgets must not be negative")
        self.retries = retries
        self.connection_retries = retries if connection_retries is None else min(connection_retries, retries)
        self.retry_in_client = retry_in_client
        self.attempts = 0
        """Requests started so far (the first one and every granted repeat)."""
        self.spent = 0
        self.connection_spent = 0

    @property
    def remaining(self) -> int:
        return self.retries - self.spent

    def spend(self, *, connection: bool = False) -> bool:
        """Take one repeat (``connection``: after a connection failure); False when none is left."""
        if self.spent >= self.retries:
            return False
        if connection and self.connection_spent >= self.connection_retries:
            return False
        self.spent += 1
        self.connection_spent += connection
        return True

    def start_attempt(self) -> None:
        """Count a request about to be sent; a repeat nobody spent for is a bug, so it raises."""
        if self.attempts > self.spent:
            raise RuntimeError(f"request repeated without a retry from its budget ({self!r})")
        self.attempts += 1

    def __repr__(self) -> str:
        return (
            f"RetryBudget(attempts={self.attempts}, spent={self.spent}/{self.retries}, "
            f"connection={self.connection_spent}/{self.connection_retries}, "
            f"retry_in_client={self.retry_in_client})"
        )
