"""Waiting on thread-side state from async code without blocking the event loop.

The informer's state is set by threads (reflector, handler threads), so async waiters poll a
``threading.Event`` in short sleeps: no thread is parked per waiter, and cancellation is immediate.
Invariant: ``wait_event`` returns the event's state at return time, True as soon as it is seen set.
"""

from __future__ import annotations

import threading

import anyio

__all__ = ["wait_event"]

_POLL_SECONDS = 0.02


async def wait_event(event: threading.Event, timeout: float | None = None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; returns whether it is set."""
    if event.is_set():
        return True
    with anyio.move_on_after(timeout):
        while not event.is_set():
            await anyio.sleep(_POLL_SECONDS)
    return event.is_set()
