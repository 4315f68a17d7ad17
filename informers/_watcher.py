"""The list-then-watch state machine: which request to send next, and what each answer means.

``Watcher`` is the reflector's brain without its hands: it never sleeps, never does I/O and never
caches objects. The informer loop asks ``next_request()`` for a ``ListRequest`` or ``WatchRequest``,
performs it, and feeds back decoded list pages (``on_list_page``), watch lines (``on_watch_event``),
a normal end of stream (``on_watch_closed``) or any exception (``on_error``, after which it backs
off as it sees fit). The answers come back as ``events.WatchEvent`` records for the store; once the
store has applied them the loop calls ``on_applied()``, and only then does the resourceVersion a
re-watch resumes from move (``on_apply_failed`` relists instead).

The phase is data: ``phase`` is one of the frozen records ``Listing``, ``Streaming`` or
``Watching``, each holding what the next request needs, and every transition replaces it whole (as
kube-rs models its watcher's ``State``). Rules (client-go's reflector, see reference-semantics 1-4):
the first list uses ``resourceVersion=0`` and ``limit``; continue pages drop the resourceVersion;
an expired continue token falls back to one full list; a 410 or "too large resource version" on a
list makes the next list a consistent read (``resourceVersion=""``), so a stale version is never
retried; a 410 on a watch relists from the last version (served by the apiserver's watch cache,
which avoids a storm of quorum reads after an apiserver restart, and is at least as fresh); a
watch the server refuses (403, 404, 401...) backs off and relists, as client-go does, so a user who
may list but not watch still gets a fresh cache every backoff period (``watch_failing_since`` shows
it); transient failures (dropped or stalled streams, 429, 5xx, undecodable lines) re-watch from the
last version with no relist, except that a third 5xx in a row with no event in between relists (as
client-go stops retrying a failing watch after a while: a watch that can never work, e.g. from a
version the server cannot parse, is not retried forever); a list from a version the server
refuses as a bad request (400/422) becomes a consistent read. A streaming list the server does not understand (400/422) falls back
to LIST for good; a refused one (403) lists once and streams again next time. Optionally the initial list
is streamed (``sendInitialEvents``) and falls back to list+watch if the server does not support it.
Not thread-safe: exactly one loop drives a watcher (its ``statistics()`` may be read from
anywhere, as a snapshot of plain values).
Invariant: the resourceVersion a watch resumes from is always that of the last event the store
applied (list end, ``Apply``/``Delete`` or ``Bookmark``), never one from a half-read list, a
rejected line, or an event whose application failed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, TypeAlias

from ._listbody import InitApplyItem, RawInitApply, RawItem, RawListPage
from .clock import SYSTEM_CLOCK, Clock
from .errors import (
    ApiError,
    BadRequestError,
    GoneError,
    InformerdError,
    InvalidError,
    MalformedResponseError,
    ServerError,
    StreamStalledError,
    TooManyRequestsError,
    _bounded,
    api_error_from_status,
)
from .events import Apply, Bookmark, Delete, Init, InitApply, InitDone, WatchEvent

__all__ = [
    "INITIAL_EVENTS_END_ANNOTATION",
    "ListRequest",
    "Listing",
    "Phase",
    "Streaming",
    "StreamingListUnsupportedError",
    "WatchRequest",
    "Watcher",
    "WatcherStateError",
    "WatcherStatistics",
    "Watching",
]

INITIAL_EVENTS_END_ANNOTATION = "k8s.io/initial-events-end"
"""Annotation on the BOOKMARK that ends the initial events of a streaming list."""

_RESTART_CAUSES = ("closed", "error", "gone", "malformed", "stalled")
_EVENT_TYPES = ("ADDED", "BOOKMARK", "DELETED", "ERROR", "MODIFIED")
_SHORT_WATCH_SECONDS = 1.0
_WATCH_SERVER_ERRORS_BEFORE_RELIST = 3
"""Consecutive 5xx answers to watches (no event in between) after which the informer relists:
client-go retries a failing watch only for a while too. A watch that can never work (its
resourceVersion is one the server cannot parse, say) must not be retried forever."""
# A streaming list that lasted this share of its timeoutSeconds ended by the server's timeout.
_RAN_ITS_COURSE = 0.9


class WatcherStateError(InformerdError, RuntimeError):
    """The loop fed the watcher an answer it did not ask for (e.g. a list page while watching)."""


class StreamingListUnsupportedError(InformerdError):
    """The server did not honour ``sendInitialEvents``; the watcher now uses list+watch.

    Raised by ``on_watch_event`` so the loop closes the stream; passing it to ``on_error`` is
    harmless (the switch has already happened).
    """

    retryable = True


# --- phases -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    """A paginated LIST cycle. ``resource_version`` is the first page's (``"0"``: from the watch
    cache, ``""``: a consistent read, else the last version); later pages send ``continue_token``."""

    cause: str
    resource_version: str | None
    limit: int | None
    continue_token: str | None = None
    begun: bool = False
    """A page has arrived (``Init`` was emitted for this cycle)."""


@dataclass(frozen=True, slots=True)
class Streaming:
    """A streaming list: a watch with ``sendInitialEvents`` whose events up to the end bookmark
    are the list. ``resource_version`` ``""`` asks for a consistent snapshot."""

    cause: str
    resource_version: str
    begun: bool = False


@dataclass(frozen=True, slots=True)
class Watching:
    """Watching from the last applied resourceVersion (the watcher's ``resource_version``)."""


Phase: TypeAlias = Listing | Streaming | Watching


@dataclass(frozen=True, slots=True)
class ListRequest:
    """One LIST call. ``None`` and ``""`` both mean "omit the parameter" on the wire; a
    ``resource_version`` of ``""`` is spelled out when the list must be a consistent read."""

    resource_version: str | None
    resource_version_match: str | None
    continue_token: str | None
    limit: int | None


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """One WATCH call (``watch=true``); ``resource_version_match`` is set only for streaming lists."""

    resource_version: str
    timeout_seconds: int
    allow_bookmarks: bool = True
    send_initial_events: bool = False
    resource_version_match: str | None = None


@dataclass(frozen=True, slots=True)
class WatcherStatistics:
    state: str
    """``listing``, ``streaming`` (initial events of a streaming list) or ``watching``."""
    lists: int
    """List cycles started (paginated LIST or streaming list), the first one included."""
    relists: int
    """List cycles started after the first one."""
    relist_causes: Mapping[str, int]
    syncs: int
    """List cycles completed (``InitDone`` applied)."""
    list_pages: int
    list_retries: int
    """List pages retried after a transient error (same continue token)."""
    list_fallbacks: int
    """Expired continue tokens answered with one full list."""
    listed_objects: int
    watch_requests: int
    watch_restarts: Mapping[str, int]
    """Re-watches by cause: closed, error, gone, malformed, stalled."""
    short_watches: int
    """Watches that closed within 1 s without a single event."""
    events: Mapping[str, int]
    """Watch events received by type (ADDED, BOOKMARK, DELETED, ERROR, MODIFIED)."""
    errors: int
    apply_failures: int
    """Batches of events the store failed to apply (each one relists)."""
    last_error: str | None
    watch_failing_since: float | None
    """Wall-clock time of the first of the watch failures since the last working watch (None: the
    watch works). A watch refused for good (e.g. a 403 on watch for a user who may list) keeps it."""
    last_resource_version: str | None
    last_event_time: float | None
    """Wall-clock time (``clock.time()``) of the last list page or watch event."""
    streaming_list: bool
    """Whether the next list cycle will try a streaming list."""
    streaming_list_fallback_reason: str | None


_PHASE_NAMES: dict[type, str] = {Listing: "listing", Streaming: "streaming", Watching: "watching"}
_WATCHING = Watching()


class Watcher:
    def __init__(
        self,
        *,
        page_size: int | None = 500,
        watch_timeout_range: tuple[int, int] = (300, 600),
        streaming_list: bool = False,
        rng: random.Random | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``page_size`` (default 500 objects; ``None``/0 disables paging): LIST ``limit``.

        ``watch_timeout_range`` (default 300-600 s): the server-side ``timeoutSeconds`` of each
        watch is drawn uniformly from ``[low, high)``, so many informers do not reconnect in step.
        ``streaming_list`` (default off): load with ``sendInitialEvents`` instead of LIST, falling
        back to LIST for good if the server rejects it. ``rng``/``clock``: inject for tests.
        """
        low, high = watch_timeout_range
        if not 1 <= low < high:
            raise ValueError(f"watch_timeout_range must satisfy 1 <= low < high, got {watch_timeout_range!r}")
        self._page_size = page_size or None
        self._timeout_range = (int(low), int(high))
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._streaming = streaming_list
        self._streaming_reason: str | None = None
        # What the server taught us: our version was forgotten (410 / too large), it pages lists.
        self._rv: str | None = None
        self._rv_unavailable = False
        self._paginated_result = False
        # Handed out in events but not yet applied by the store: (version, completes a list).
        self._unapplied: tuple[str, bool] | None = None
        self._phase: Phase = _WATCHING  # replaced at once below
        self._pending: ListRequest | WatchRequest | None = None
        self._stream_events = 0
        self._watch_started = 0.0
        self._watch_timeout_asked = 0  # timeoutSeconds of the last watch request
        self._lists = 0
        self._relists = 0
        self._relist_causes: dict[str, int] = {}
        self._syncs = 0
        self._list_pages = 0
        self._list_retries = 0
        self._list_fallbacks = 0
        self._listed = 0
        self._watch_requests = 0
        self._restarts = dict.fromkeys(_RESTART_CAUSES, 0)
        self._short_watches = 0
        self._events = dict.fromkeys(_EVENT_TYPES, 0)
        self._errors = 0
        self._apply_failures = 0
        self._watch_server_errors = 0  # consecutive 5xx watch failures with no event in between
        self._watch_failing_since: float | None = None
        self._last_error: str | None = None
        self._last_event_time: float | None = None
        self._start_list_cycle("initial")

    # --- transitions ------------------------------------------------------------------------

    def _enter(self, phase: Phase) -> None:
        self._phase = phase
        self._pending = None
        self._stream_events = 0

    def _start_list_cycle(self, cause: str, *, streaming: bool | None = None) -> None:
        """Begin a (re)list; ``streaming=False`` forces a LIST for this cycle only."""
        if self._lists:
            self._relists += 1
            self._relist_causes[cause] = self._relist_causes.get(cause, 0) + 1
        self._lists += 1
        if self._streaming and streaming is not False:
            rv = "" if self._rv_unavailable or self._rv is None else self._rv
            self._enter(Streaming(cause, rv))
        elif self._rv_unavailable:
            # The server forgot our version (410 / too large): a consistent read, never the
            # same stale version again (the hot loop several Python clients fall into).
            self._enter(Listing(cause, "", self._page_size))
        elif self._rv is None:
            self._enter(Listing(cause, "0", self._page_size))  # from the watch cache
        else:
            # From the last version: served by the watch cache if unpaged, so page only when the
            # server showed it pages (watch cache off) -- client-go's paginatedResult rule.
            self._enter(Listing(cause, self._rv, self._page_size if self._paginated_result else None))

    def _fall_back_from_streaming(self, reason: str) -> None:
        self._streaming = False
        self._streaming_reason = reason

    # --- requests -----------------------------------------------------------------------------

    def next_request(self) -> ListRequest | WatchRequest:
        """The request to send now; asking again before feeding an answer returns the same one."""
        if self._pending is not None:
            return self._pending
        req: ListRequest | WatchRequest
        match self._phase:
            case Listing(continue_token=str() as token):
                req = ListRequest(None, None, token, self._page_size)
            case Listing(resource_version=rv, limit=limit):
                req = ListRequest(rv, None, None, limit)
            case Streaming(resource_version=rv):
                req = WatchRequest(rv, self._watch_timeout(), True, True, "NotOlderThan")
            case Watching():
                assert self._rv is not None  # watching always follows a completed list
                req = WatchRequest(self._rv, self._watch_timeout())
        if isinstance(req, WatchRequest):
            self._watch_requests += 1
            self._watch_started = self._clock.monotonic()
            self._watch_timeout_asked = req.timeout_seconds
        self._pending = req
        return req

    def _watch_timeout(self) -> int:
        low, high = self._timeout_range
        return low + int(self._rng.random() * (high - low))

    # --- answers: list ------------------------------------------------------------------------

    def on_raw_list_page(self, page: RawListPage) -> list[WatchEvent | RawInitApply | InitApplyItem]:
        """``on_list_page`` for a body split by ``decode_list_body`` (validated there): the items
        stay JSON until the informer stores them, one at a time (``RawInitApply``, or
        ``InitApplyItem`` for those ``decode_list_body`` already read)."""
        phase = self._phase
        if not isinstance(phase, Listing):
            raise WatcherStateError(f"got a list page while {self.state}")
        meta = page.metadata
        rv = meta.get("resourceVersion")
        if not isinstance(rv, str) or not rv:
            raise MalformedResponseError("list body has no metadata.resourceVersion")
        kind, api_version = page.item_kind, page.item_api_version
        events: list[WatchEvent | RawInitApply | InitApplyItem] = [] if phase.begun else [Init()]
        events.extend(
            InitApplyItem(item) if isinstance(item, RawItem) else RawInitApply(item, kind, api_version)
            for item in page.items
        )
        done = self._list_page_done(phase, meta, rv, len(page.items))
        return events if done is None else [*events, done]

    def on_list_page(self, body: Mapping[str, Any]) -> list[WatchEvent]:
        """Feed one decoded List body; returns ``Init`` (first page), ``InitApply`` per item and,
        after the last page, ``InitDone``. A malformed body raises ``MalformedResponseError`` before
        anything is emitted, so the page can be retried."""
        phase = self._phase
        if not isinstance(phase, Listing):
            raise WatcherStateError(f"got a list page while {self.state}")
        if not isinstance(body, Mapping):
            raise MalformedResponseError(f"list body is a {type(body).__name__}, not an object")
        meta = body.get("metadata")
        items = body.get("items")
        if items is None:
            items = []
        if not isinstance(meta, Mapping) or not isinstance(items, list):
            raise MalformedResponseError("list body lacks metadata or has non-list items")
        rv = meta.get("resourceVersion")
        if not isinstance(rv, str) or not rv:
            raise MalformedResponseError("list body has no metadata.resourceVersion")
        for item in items:
            _check_object(item, "list item")
        # List items omit kind/apiVersion; restore them so cached objects look like watched ones.
        kind = body.get("kind")
        item_kind = kind[:-4] if isinstance(kind, str) and kind.endswith("List") else None
        api_version = body.get("apiVersion")
        events: list[WatchEvent] = [] if phase.begun else [Init()]
        for item in items:
            if item_kind and "kind" not in item:
                item["kind"] = item_kind
            if isinstance(api_version, str) and "apiVersion" not in item:
                item["apiVersion"] = api_version
            events.append(InitApply(item))
        done = self._list_page_done(phase, meta, rv, len(items))
        if done is not None:
            events.append(done)
        return events

    def _list_page_done(self, phase: Listing, meta: Mapping[str, Any], rv: str, count: int) -> InitDone | None:
        """Account for a page; the ``InitDone`` to emit after its items when it was the last."""
        self._list_pages += 1
        self._listed += count
        self._last_event_time = self._clock.time()
        token = meta.get("continue")
        if isinstance(token, str) and token:
            if phase.continue_token is None:
                self._paginated_result = True
            self._enter(replace(phase, continue_token=token, begun=True))
            return None
        self._unapplied = (rv, True)
        self._enter(_WATCHING)
        return InitDone(rv)

    # --- answers: watch -----------------------------------------------------------------------

    def on_watch_event(self, event: Mapping[str, Any]) -> list[WatchEvent]:
        """Feed one decoded watch line ``{"type", "object"}``.

        Raises the typed ``ApiError`` for an ERROR event (``GoneError`` for 410),
        ``MalformedResponseError`` for a line that is not a valid event, and
        ``StreamingListUnsupportedError`` when a streaming list turns out unsupported.
        """
        phase = self._phase
        if isinstance(phase, Listing):
            raise WatcherStateError("got a watch event while listing")
        if not isinstance(event, Mapping):
            raise MalformedResponseError(f"watch event is a {type(event).__name__}, not an object")
        etype = event.get("type")
        obj = event.get("object")
        if etype not in self._events:
            # Never echo it whole: a hostile line can make it megabytes long.
            raise MalformedResponseError(f"watch event has unknown type {_bounded(repr(etype), 80)}")
        if not isinstance(obj, Mapping):
            raise MalformedResponseError(f"{etype} watch event has no object")
        self._events[etype] += 1
        self._stream_events += 1
        self._last_event_time = self._clock.time()
        if etype == "ERROR":
            raise api_error_from_status(obj)
        self._watch_server_errors = 0
        meta = obj.get("metadata")
        if not isinstance(meta, Mapping):
            raise MalformedResponseError(f"{etype} watch event object has no metadata")
        rv = meta.get("resourceVersion")
        if not isinstance(rv, str) or not rv:
            raise MalformedResponseError(f"{etype} watch event object has no metadata.resourceVersion")
        if isinstance(phase, Streaming):
            return self._on_initial_event(phase, etype, obj, meta, rv)
        if etype == "BOOKMARK":
            self._unapplied = (rv, False)
            return [Bookmark(rv)]
        _check_object(obj, f"{etype} watch event object")
        self._unapplied = (rv, False)
        return [Delete(obj) if etype == "DELETED" else Apply(obj)]  # type: ignore[arg-type]

    @property
    def streaming_initial(self) -> bool:
        """A streaming list's initial events are arriving (``on_initial_item`` applies)."""
        return isinstance(self._phase, Streaming)

    def on_initial_item(self, item: RawItem) -> list[WatchEvent | InitApplyItem]:
        """``on_watch_event`` for an ADDED event of a streaming list whose object ``parse_item``
        read (it has a name and a resourceVersion): the same bookkeeping, the object still JSON."""
        phase = self._phase
        if not isinstance(phase, Streaming):
            raise WatcherStateError(f"got an initial event while {self.state}")
        self._events["ADDED"] += 1
        self._stream_events += 1
        self._last_event_time = self._clock.time()
        self._watch_server_errors = 0
        events: list[WatchEvent | InitApplyItem] = []
        if not phase.begun:
            events.append(Init())
            self._phase = replace(phase, begun=True)
        events.append(InitApplyItem(item))
        return events

    def _on_initial_event(
        self, phase: Streaming, etype: str, obj: Mapping[str, Any], meta: Mapping[str, Any], rv: str
    ) -> list[WatchEvent]:
        events: list[WatchEvent] = []
        if not phase.begun:
            events.append(Init())
            self._phase = replace(phase, begun=True)  # same stream: keep its event count
        if etype == "BOOKMARK":
            annotations = meta.get("annotations")
            if isinstance(annotations, Mapping) and annotations.get(INITIAL_EVENTS_END_ANNOTATION) == "true":
                self._unapplied = (rv, True)
                self._phase = _WATCHING  # the same stream goes on with live events
                events.append(InitDone(rv))
            return events  # other bookmarks during the initial events carry nothing usable
        if etype != "ADDED":
            reason = f"server sent {etype} before the {INITIAL_EVENTS_END_ANNOTATION} bookmark"
            self._fall_back_from_streaming(reason)
            self._start_list_cycle("streaming-unsupported")
            raise StreamingListUnsupportedError(f"streaming list not honoured ({reason}); using LIST")
        _check_object(obj, "ADDED watch event object")
        events.append(InitApply(obj))  # type: ignore[arg-type]
        return events

    def on_watch_opened(self) -> None:
        """The server accepted the watch (its answer's headers arrived): watching works again."""
        self._watch_failing_since = None

    # --- the store's answer -------------------------------------------------------------------

    def on_applied(self) -> None:
        """The store applied the events last handed out: a re-watch may now resume after them."""
        unapplied = self._unapplied
        if unapplied is None:
            return
        self._unapplied = None
        self._rv = unapplied[0]
        if unapplied[1]:  # a list cycle completed
            self._rv_unavailable = False
            self._syncs += 1

    def on_apply_failed(self, exc: BaseException) -> None:
        """The store could not apply the events last handed out: relist from the last applied
        version, so the cache is rebuilt whole rather than left missing an event."""
        self._unapplied = None
        self._apply_failures += 1
        self._errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        self._start_list_cycle("apply-failed", streaming=False)

    def on_watch_closed(self) -> bool:
        """The watch stream ended normally (server timeout). Returns ``True`` when it looked
        abnormal -- under 1 s with no events -- and the loop should back off before re-watching."""
        phase = self._phase
        if isinstance(phase, Listing):
            raise WatcherStateError("watch closed while listing")
        elapsed = self._clock.monotonic() - self._watch_started
        short = self._stream_events == 0 and elapsed < _SHORT_WATCH_SECONDS
        if short:
            self._short_watches += 1
        if isinstance(phase, Streaming):
            # Ran its whole timeout with events but no end bookmark: the server does not do
            # streaming lists, so stop asking. Cut short, it is the server dropping this stream
            # (a consumer too slow for the watch cache's buffer, a restart): LIST this once and
            # stream again next time, as client-go does.
            if self._stream_events and elapsed >= _RAN_ITS_COURSE * self._watch_timeout_asked:
                self._fall_back_from_streaming(
                    f"stream closed after {self._stream_events} events without the "
                    f"{INITIAL_EVENTS_END_ANNOTATION} bookmark"
                )
            self._start_list_cycle("streaming-incomplete", streaming=False)
            return short
        self._restarts["closed"] += 1
        self._enter(_WATCHING)
        return short

    # --- answers: failure ---------------------------------------------------------------------

    def on_error(self, exc: BaseException) -> None:
        """Decide how to recover from a failed request or a broken stream (the loop backs off)."""
        self._unapplied = None
        self._errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, StreamingListUnsupportedError):
            return  # the switch to LIST happened when it was raised
        match self._phase:
            case Listing() as listing:
                self._on_list_error(listing, exc)
            case Streaming():
                self._on_streaming_error(exc)
            case Watching():
                self._on_watch_error(exc)

    def _on_list_error(self, phase: Listing, exc: BaseException) -> None:
        if isinstance(exc, GoneError) and phase.continue_token is not None:
            # The snapshot behind the continue token was compacted: one full list, no paging.
            # The partial pages are void: the next page starts a new buffer (begun=False).
            self._list_fallbacks += 1
            self._enter(Listing(phase.cause, "", None))
        elif isinstance(exc, GoneError) or _is_too_large_rv(exc):
            self._rv_unavailable = True
            self._start_list_cycle("gone")
        elif (
            isinstance(exc, BadRequestError | InvalidError) and phase.continue_token is None and phase.resource_version
        ):
            # The server cannot use our version (it is opaque to us, and came from the server or
            # whatever stood in its place): a consistent read asks for none.
            self._rv_unavailable = True
            self._start_list_cycle("invalid-resource-version")
        else:
            self._list_retries += 1  # same page again; its continue token is still good
            self._pending = None

    def _on_streaming_error(self, exc: BaseException) -> None:
        if isinstance(exc, GoneError) or _is_too_large_rv(exc):
            self._rv_unavailable = True
            self._start_list_cycle("gone")
        elif isinstance(exc, BadRequestError | InvalidError):
            # The server does not understand the request: no streaming lists here, for good. A
            # 403 or 401 is about who we are, not about the feature: list once, stream again later.
            self._fall_back_from_streaming(f"server rejected sendInitialEvents: {exc}")
            self._start_list_cycle("streaming-unsupported")
        else:
            # client-go: any other failure lists this once (progress beats deadlock); the next
            # list cycle tries streaming again.
            self._start_list_cycle("error", streaming=False)

    def _on_watch_error(self, exc: BaseException) -> None:
        if self._watch_failing_since is None:
            self._watch_failing_since = self._clock.time()
        if isinstance(exc, GoneError):
            self._restarts["gone"] += 1
            self._start_list_cycle("gone")
            return
        if isinstance(exc, ApiError) and not isinstance(exc, TooManyRequestsError | ServerError):
            # client-go: the server refused the watch (403, 404, 401...): back off and list again,
            # so a user who may list but not watch still gets a fresh cache every backoff period.
            self._restarts["error"] += 1
            self._start_list_cycle("watch-refused")
            return
        if isinstance(exc, ServerError):
            self._watch_server_errors += 1
            if self._watch_server_errors >= _WATCH_SERVER_ERRORS_BEFORE_RELIST:
                self._watch_server_errors = 0
                self._restarts["error"] += 1
                self._start_list_cycle("watch-failing")
                return
        if isinstance(exc, MalformedResponseError):
            cause = "malformed"
        elif isinstance(exc, StreamStalledError):
            cause = "stalled"
        else:
            cause = "error"
        self._restarts[cause] += 1
        self._enter(_WATCHING)

    # --- introspection --------------------------------------------------------------------------

    @property
    def resource_version(self) -> str | None:
        """The last applied resourceVersion (what a re-watch resumes from)."""
        return self._rv

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def state(self) -> str:
        """The phase's name: ``listing``, ``streaming`` or ``watching``."""
        return _PHASE_NAMES[type(self._phase)]

    def statistics(self) -> WatcherStatistics:
        return WatcherStatistics(
            state=self.state,
            lists=self._lists,
            relists=self._relists,
            relist_causes=MappingProxyType(dict(self._relist_causes)),
            syncs=self._syncs,
            list_pages=self._list_pages,
            list_retries=self._list_retries,
            list_fallbacks=self._list_fallbacks,
            listed_objects=self._listed,
            watch_requests=self._watch_requests,
            watch_restarts=MappingProxyType(dict(self._restarts)),
            short_watches=self._short_watches,
            events=MappingProxyType(dict(self._events)),
            errors=self._errors,
            apply_failures=self._apply_failures,
            last_error=self._last_error,
            watch_failing_since=self._watch_failing_since,
            last_resource_version=self._rv,
            last_event_time=self._last_event_time,
            streaming_list=self._streaming,
            streaming_list_fallback_reason=self._streaming_reason,
        )


def _check_object(obj: Any, what: str) -> None:
    if not isinstance(obj, dict):
        raise MalformedResponseError(f"{what} is a {type(obj).__name__}, not an object")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise MalformedResponseError(f"{what} has no metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedResponseError(f"{what} has no metadata.name")


def _is_too_large_rv(exc: BaseException) -> bool:
    """The apiserver's "Too large resource version" answer (a 504 naming ResourceVersionTooLarge)."""
    if not isinstance(exc, ApiError):
        return False
    causes = exc.details.get("causes")
    if isinstance(causes, list):
        for cause in causes:
            if isinstance(cause, Mapping) and cause.get("reason") == "ResourceVersionTooLarge":
                return True
    return "too large resource version" in exc.server_message.lower()
