"""The reflector: the list-then-watch loop that runs one informer's I/O on a dedicated thread.

It asks the ``Watcher`` state machine what to send, sends it through the shared ``ApiClient``,
feeds back the answers, and hands the resulting watch events to ``apply`` as they come (the
informer, which updates its store and notifies handlers); only when ``apply`` returns does it tell
the watcher the events were applied, so the resume point never passes an event the store missed
(if ``apply`` raises, the watcher relists). Errors go to the watcher (which decides relist or
re-watch) and then wait out a jittered exponential ``Backoff``; a watch that closes within a
second with no events also backs off, so nothing can make the loop spin. Invariant: the loop
never sleeps other than on its stop event, and ``stop()`` closes the open watch stream, so a stop
never leaves the thread blocked on a socket (an in-flight LIST page ends within the client's read
timeout).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ._backoff import Backoff
from ._interrupt import Interrupter, interruptible
from ._listbody import InitApplyItem, RawInitApply, decode_list_body, parse_item, split_watch_line
from ._log import get_logger
from ._watcher import ListRequest, Watcher, WatchRequest
from ._watchstream import WatchStream
from .client import ApiClient
from .clock import SYSTEM_CLOCK, Clock
from .errors import (
    ClientClosedError,
    ForbiddenError,
    InformerdError,
    MalformedResponseError,
    NotFoundError,
    UnauthorizedError,
)
from .events import WatchEvent
from .resources import Resource

__all__ = ["Reflector", "ReflectorStatistics"]

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReflectorStatistics:
    running: bool
    backoffs: int
    backoff_seconds: float
    last_error: str | None
    last_error_time: float | None
    idle_timeout: float | None
    last_watch_open_time: float | None = None
    """Wall-clock time (``clock.time()``) the server last accepted a watch (its response headers
    arrived): with the watcher's ``last_event_time``, a sign of life even on a resource where
    nothing changes, since every watch ends within its server timeout and is opened again."""


class _ApplyFailed(InformerdError):
    """``apply`` raised; the watcher has been told (it relists), the loop only backs off."""


class Reflector:
    def __init__(
        self,
        client: ApiClient,
        resource: Resource,
        apply: Callable[[Sequence[WatchEvent | RawInitApply | InitApplyItem]], None],
        *,
        watcher: Watcher,
        backoff: Backoff,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        idle_timeout: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        name: str = "",
        raw_initial: bool | None = None,
    ) -> None:
        """``idle_timeout`` (seconds; default: the watch's server timeout + 30 s): a watch stream
        that sends nothing for this long is taken as stalled (half-open) and restarted.
        ``raw_initial``: ``None`` decodes every event to a dict (a custom transform needs one);
        ``True``/``False`` hands the initial list's objects (streamed or LIST pages) over as JSON
        (``InitApplyItem``), with ``managedFields`` cut out or kept."""
        self.client = client
        self.resource = resource
        self.watcher = watcher
        self.backoff = backoff
        self._apply = apply
        self._path = resource.path(namespace=namespace or None)
        self._selectors: dict[str, str] = {}
        if label_selector:
            self._selectors["labelSelector"] = label_selector
        if field_selector:
            self._selectors["fieldSelector"] = field_selector
        self._idle_timeout = idle_timeout
        self._clock = clock
        self.name = name or str(resource)
        self._raw_initial = raw_initial
        self._stopping = threading.Event()
        self._interrupter = Interrupter()
        self._stream_lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._running = False
        self._backoffs = 0
        self._backoff_seconds = 0.0
        self.last_error: BaseException | None = None
        self._last_error_time: float | None = None
        self._last_watch_open_time: float | None = None

    # -- control --------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to end: close the open watch stream and abort any request in flight (a LIST,
        a watch still waiting for its answer, a retry wait), so the thread wakes at once. Safe to
        call again (a connection opened since the last call is aborted too)."""
        self._stopping.set()
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        self._interrupter.interrupt()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def statistics(self) -> ReflectorStatistics:
        return ReflectorStatistics(
            running=self._running,
            backoffs=self._backoffs,
            backoff_seconds=self._backoff_seconds,
            last_error=None if self.last_error is None else f"{type(self.last_error).__name__}: {self.last_error}",
            last_error_time=self._last_error_time,
            idle_timeout=self._idle_timeout,
            last_watch_open_time=self._last_watch_open_time,
        )

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        """Run until ``stop()``; call on a dedicated thread."""
        self._running = True
        try:
            with interruptible(self._interrupter):
                self._loop()
        finally:
            self._running = False

    def _loop(self) -> None:
        while not self._stopping.is_set():
            request = self.watcher.next_request()
            try:
                if isinstance(request, ListRequest):
                    self._list(request)
                else:
                    if self._watch(request):
                        self._wait_backoff("watch closed at once with no events")
            except ClientClosedError:
                return
            except _ApplyFailed as failed:
                if self._stopping.is_set():
                    return
                cause = failed.__cause__ or failed
                self.last_error = cause if isinstance(cause, Exception) else failed
                self._last_error_time = self._clock.time()
                _log.error(
                    "informer could not apply events; relisting",
                    informer=self.name,
                    error=f"{type(cause).__name__}: {cause}",
                    exc_info=cause,
                )
                self._wait_backoff("apply failed")
            except Exception as exc:  # noqa: BLE001 - every failure is recovered from here
                if self._stopping.is_set():
                    return
                self._on_error(exc)

    def _on_error(self, exc: Exception) -> None:
        self.watcher.on_error(exc)
        self.last_error = exc
        self._last_error_time = self._clock.time()
        level = "error" if isinstance(exc, ForbiddenError | UnauthorizedError | NotFoundError) else "warning"
        getattr(_log, level)(
            "informer request failed",
            informer=self.name,
            error=f"{type(exc).__name__}: {exc}",
            state=self.watcher.state,
        )
        self._wait_backoff(type(exc).__name__)

    def _wait_backoff(self, why: str) -> None:
        delay = self.backoff.next_delay()
        self._backoffs += 1
        self._backoff_seconds += delay
        _log.debug("informer backing off", informer=self.name, seconds=round(delay, 3), why=why)
        self._stopping.wait(delay)

    def _list(self, request: ListRequest) -> None:
        query: dict[str, Any] = dict(self._selectors)
        if request.resource_version is not None:
            query["resourceVersion"] = request.resource_version
        if request.resource_version_match:
            query["resourceVersionMatch"] = request.resource_version_match
        if request.continue_token:
            query["continue"] = request.continue_token
        if request.limit:
            query["limit"] = request.limit
        # Split, not decoded: the informer decodes one item at a time (see _listbody).
        body = self.client.request("GET", self._path, query=query).body
        page = decode_list_body(body, raw_initial=self._raw_initial)
        self._deliver(self.watcher.on_raw_list_page(page))

    def _deliver(self, events: Sequence[WatchEvent | RawInitApply | InitApplyItem]) -> None:
        """Apply ``events``, then confirm them to the watcher (or make it relist)."""
        if events:
            try:
                self._apply(events)
            except Exception as exc:
                self.watcher.on_apply_failed(exc)
                raise _ApplyFailed() from exc
        self.watcher.on_applied()

    def _watch(self, request: WatchRequest) -> bool:
        """One watch stream; returns True when it closed abnormally fast (the loop backs off)."""
        query: dict[str, Any] = dict(self._selectors)
        query["timeoutSeconds"] = request.timeout_seconds
        if request.allow_bookmarks:
            query["allowWatchBookmarks"] = "true"
        if request.resource_version:
            query["resourceVersion"] = request.resource_version
        if request.send_initial_events:
            query["sendInitialEvents"] = "true"
        if request.resource_version_match:
            query["resourceVersionMatch"] = request.resource_version_match
        idle = self._idle_timeout or float(request.timeout_seconds + 30)
        stream = self.client.watch(self._path, query, idle_timeout=idle)
        self.watcher.on_watch_opened()
        self._last_watch_open_time = self._clock.time()
        with self._stream_lock:
            self._stream = stream
        if self._stopping.is_set():
            stream.close()
            return False
        raw_initial = self._raw_initial
        watcher = self.watcher
        try:
            for line in stream:
                if raw_initial is not None and watcher.streaming_initial:
                    # The initial list's objects skip the dict (see _listbody); anything else,
                    # or an object parse_item declines, takes the general path below.
                    split = split_watch_line(line)
                    if split is not None and split[0] == "ADDED":
                        item = parse_item(split[1], strip_managed_fields=raw_initial)
                        if item is not None:
                            self._deliver(watcher.on_initial_item(item))
                            continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    # Never quote the line: it is an object's JSON (a Secret's data, say).
                    raise MalformedResponseError(f"undecodable watch line of {len(line)} bytes ({exc})") from None
                self._deliver(self.watcher.on_watch_event(event))
        finally:
            with self._stream_lock:
                self._stream = None
            stream.close()
        if self._stopping.is_set():
            return False
        return self.watcher.on_watch_closed()
