"""The progress check: is the informer keeping up with the server, judged off the hot path?

A watch can wait silently for good: a BOOKMARK (or any event) carrying a resourceVersion from the
future makes every later watch resume from a version the server has not reached, and a 1.37
apiserver answers such a watch with 200 and then nothing, so the idle deadline never fires (each
watch ends at its timeout and is opened again, looking alive). Every so often ``ProgressCheck``
sends one cheap request -- a consistent LIST of the informer's selection with ``limit=1`` -- and
compares the server's answer with what the informer has applied:

* **ahead**: the informer's resume point is newer than the server's current resourceVersion. A
  consistent read returns a version at least as new as any event ever sent, and the resume point
  is read *before* the request, so this is never a race: the informer waits for a version that
  does not exist yet.
* **behind**: the cache lacks the version of the object the LIST returns (or holds an older one),
  twice in a row for the same version: a change of this selection the watch has not delivered
  for a whole check interval -- lagging, stalled, or lost for good when the resume point has
  already moved past it (e.g. events dropped while bookmarks came through).

Either verdict sets ``stalled_since`` (kept while it lasts; cleared by the first check that finds
the informer consistent again). resourceVersions are compared as integers, as etcd revisions are;
a server whose versions are not integers is never judged. Invariant: a failed check (the request
failed, an odd answer) keeps the last verdict and counts an error; it never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .client import ApiClient
from .clock import SYSTEM_CLOCK, Clock
from .objects import object_key

__all__ = ["ProgressCheck", "ProgressStatistics"]


@dataclass(frozen=True, slots=True)
class ProgressStatistics:
    checks: int
    """Progress checks answered by the server."""
    check_errors: int
    """Progress checks whose request failed (no verdict drawn from them)."""
    server_resource_version: str | None
    """The server's current resourceVersion at the last answered check."""
    server_checked_time: float | None
    """Wall-clock time (``clock.time()``) of the last answered check."""
    stalled_since: float | None
    """Wall-clock time since which the informer has made no progress the server has (its resume
    point ahead of the server, or a change of its selection not delivered); None: keeping up."""
    stall_reason: str | None
    stalls: int = 0
    """Stalls found since the start (each counted once, when it began)."""


def _as_int(rv: object) -> int | None:
    if isinstance(rv, str) and rv.isdigit():
        return int(rv)
    return None


class ProgressCheck:
    """One informer's progress check; ``check()`` runs on a worker thread, one at a time."""

    def __init__(
        self,
        client: ApiClient,
        path: str,
        selectors: Mapping[str, str],
        *,
        resume_point: Callable[[], str | None],
        cached_version: Callable[[str], str | None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``resume_point`` returns the resourceVersion a re-watch would resume from (None before
        the first list); ``cached_version`` returns the cached resourceVersion of a key, or None."""
        self._client = client
        self._path = path
        self._query: dict[str, Any] = {**selectors, "limit": 1}
        self._resume_point = resume_point
        self._cached_version = cached_version
        self._clock = clock
        self._checks = 0
        self._errors = 0
        self._server_rv: str | None = None
        self._checked_time: float | None = None
        self._stalled_since: float | None = None
        self._reason: str | None = None
        self._stalls = 0
        self._undelivered: tuple[str, str] | None = None  # (key, server rv) the cache lacked at the last check

    def check(self) -> None:
        ours = self._resume_point()  # before the request: the server's answer is then at least as new
        try:
            body = self._client.get_json(self._path, self._query)
            meta = body["metadata"]
            server = meta["resourceVersion"]
            items = body.get("items") or []
            first = items[0] if items else None
            sample = (object_key(first), first["metadata"]["resourceVersion"]) if first else None
        except Exception:  # noqa: BLE001 - a failed check draws no verdict
            self._errors += 1
            return
        self._checks += 1
        self._server_rv, self._checked_time = str(server), self._clock.time()
        self._judge(ours, str(server), sample)

    def _judge(self, ours: str | None, server: str, sample: tuple[str, str] | None) -> None:
        mine, theirs = _as_int(ours), _as_int(server)
        reason: str | None = None
        undelivered: tuple[str, str] | None = None
        if ours is not None and mine is not None and theirs is not None:
            if mine > theirs:
                reason = (
                    f"resume point {ours} is ahead of the server's resourceVersion {server} "
                    "(a version from the future): the watch waits for it"
                )
            elif sample is not None and _as_int(sample[1]) is not None:
                key, rv = sample
                cached = self._cached_version(key)
                if cached is None or (_as_int(cached) or 0) < int(rv):
                    undelivered = sample
                    if self._undelivered == undelivered:  # the same change, one whole interval ago
                        reason = (
                            f"{key} is at resourceVersion {rv} on the server since the last check; "
                            f"the cache has {cached or 'nothing'} (resume point {ours})"
                        )
        self._undelivered = undelivered
        if reason is None:
            self._stalled_since, self._reason = None, None
        else:
            if self._stalled_since is None:
                self._stalled_since = self._clock.time()
                self._stalls += 1
            self._reason = reason

    def statistics(self) -> ProgressStatistics:
        return ProgressStatistics(
            checks=self._checks,
            check_errors=self._errors,
            server_resource_version=self._server_rv,
            server_checked_time=self._checked_time,
            stalled_since=self._stalled_since,
            stall_reason=self._reason,
            stalls=self._stalls,
        )
