"""Health probes: named checks answered with controller-runtime's ``/healthz`` and ``/readyz`` semantics.

A ``HealthChecks`` is one endpoint's set of checks (``AddHealthzCheck`` / ``AddReadyzCheck`` in
controller-runtime). A check is a callable taking no argument that returns (healthy) or raises
(unhealthy: the exception's text is the reason); it may be a coroutine function. Plain checks run on
the event loop and must be quick (they read ``statistics()`` records); a coroutine check gets
``check_timeout`` seconds. ``handle(subpath, query)`` answers as ``pkg/healthz/healthz.go`` does
(``shared/notes/daemon-reference.md`` section 2):

* ``/``: every check, sorted by name; all pass -> 200 ``ok``; any fails -> 500 and the verbose
  listing. Verbose (forced by ``?verbose`` being present, whatever its value): ``[+]<n> ok``,
  ``[-]<n> failed: reason withheld``, ``[+]<n> excluded: ok``, then
  ``warn: some health checks cannot be excluded: no matches for "x"`` when an ``?exclude=`` named
  nothing, then ``healthz check passed`` / ``healthz check failed`` (on ``/readyz`` too).
  ``?exclude=<n>`` (repeatable) skips a check and counts it healthy. With no check registered the
  endpoint reports one implicit ``ping`` check.
* ``/<n>``: that check alone: 200 ``ok`` or 500 ``internal server error: <reason>``; an unknown
  name is 404 ``404 page not found``.

Reasons are withheld from the aggregate (it may be public) and logged instead.
Invariant: ``handle`` never raises: a check that raises anything, or hangs past its timeout, is
a failed check.
"""

from __future__ import annotations

import inspect
import posixpath
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence

import anyio

from informers._log import get_logger
from informers.errors import InformerdError

__all__ = ["Check", "HealthCheckError", "HealthChecks", "ping"]

_log = get_logger(__name__)

Check = Callable[[], Awaitable[None] | None]
"""A health check: returns when healthy, raises (ideally ``HealthCheckError``) when not."""

_NOT_FOUND = "404 page not found\n"


class HealthCheckError(InformerdError):
    """A check's verdict "unhealthy"; the message is the reason shown by ``/healthz/<name>``."""


def ping() -> None:
    """Always healthy (controller-runtime's ``healthz.Ping``): the server is answering."""
    return None


def _go_quote(text: str) -> str:
    """Go's ``%q`` for the names in the exclusion warning (printable ASCII kept, the rest escaped)."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


class HealthChecks:
    """One endpoint's named checks (``name`` is ``healthz`` or ``readyz``, for logs). Thread-safe
    to add to; see the module docstring for how requests are answered."""

    def __init__(self, name: str = "healthz", *, check_timeout: float = 10.0) -> None:
        if not check_timeout > 0:
            raise ValueError(f"check_timeout must be > 0 seconds, got {check_timeout!r}")
        self.name = name
        self.check_timeout = check_timeout
        self._lock = threading.Lock()
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        """Register ``check`` under ``name`` (non-empty, no ``/``); a name is registered once."""
        if not name or "/" in name:
            raise ValueError(f"a check name must be non-empty and contain no '/', got {name!r}")
        if not callable(check):
            raise TypeError(f"check {name!r} is not callable: {check!r}")
        with self._lock:
            if name in self._checks:
                raise ValueError(f"{self.name} check {name!r} is already registered")
            self._checks[name] = check

    @property
    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._checks)

    def _snapshot(self) -> dict[str, Check]:
        with self._lock:
            return dict(self._checks) or {"ping": ping}

    async def run_check(self, name: str, check: Check) -> str | None:
        """Run one check: None if healthy, else the reason (never raises)."""
        try:
            if inspect.iscoroutinefunction(check):
                with anyio.fail_after(self.check_timeout):
                    await check()
            else:
                result = check()
                if inspect.isawaitable(result):
                    with anyio.fail_after(self.check_timeout):
                        await result
        except TimeoutError:
            return f"check did not answer within {self.check_timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure of a check is its verdict
            return str(exc) or type(exc).__name__
        return None

    async def handle(self, subpath: str, query: Mapping[str, Sequence[str]]) -> tuple[int, str]:
        """Answer ``GET /<endpoint><subpath>?<query>``: ``(status, text body)``."""
        path = posixpath.normpath("/" + subpath.lstrip("/"))
        checks = self._snapshot()
        if path == "/":
            return await self._aggregate(checks, query)
        name = path[1:]
        check = checks.get(name)
        if check is None:
            return 404, _NOT_FOUND
        reason = await self.run_check(name, check)
        if reason is None:
            return 200, "ok"
        _log.info("health check failed", endpoint=self.name, check=name, reason=reason)
        return 500, f"internal server error: {reason}\n"

    async def _aggregate(self, checks: dict[str, Check], query: Mapping[str, Sequence[str]]) -> tuple[int, str]:
        unknown = set(query.get("exclude", ()))
        lines: list[str] = []
        failed: dict[str, str] = {}
        for name in sorted(checks):
            if name in unknown:
                unknown.discard(name)
                lines.append(f"[+]{name} excluded: ok\n")
                continue
            reason = await self.run_check(name, checks[name])
            if reason is None:
                lines.append(f"[+]{name} ok\n")
            else:
                failed[name] = reason
                lines.append(f"[-]{name} failed: reason withheld\n")
        if not failed and "verbose" not in query:
            return 200, "ok"
        if unknown:
            names = ",".join(_go_quote(n) for n in sorted(unknown))
            lines.append(f"warn: some health checks cannot be excluded: no matches for {names}\n")
        if failed:
            _log.info("health checks failed", endpoint=self.name, failed=failed)
            lines.append("healthz check failed\n")  # on /readyz too, as controller-runtime writes it
            return 500, "".join(lines)
        lines.append("healthz check passed\n")
        return 200, "".join(lines)
