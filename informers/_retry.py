"""Retry policy shared by every layer that repeats an apiserver request.

``parse_retry_after`` is the one reader of the ``Retry-After`` header: numeric seconds only (the
apiserver always sends whole seconds; the HTTP-date form is ignored because it never sends it),
and negative, NaN or infinite values are rejected, so no caller ever waits a nonsensical time.
Invariant: a value returned is a finite number of seconds >= 0.
"""

from __future__ import annotations

import math

__all__ = ["parse_retry_after"]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header value, or None when absent or not a usable number."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # the HTTP-date form, or garbage
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
