"""The list-then-watch state machine, driven by hand-made list pages and watch lines."""

from __future__ import annotations

import random
from typing import Any

import pytest

from informers._watcher import (
    INITIAL_EVENTS_END_ANNOTATION,
    ListRequest,
    StreamingListUnsupportedError,
    Watcher,
    WatcherStateError,
    WatchRequest,
)
from informers.clock import FakeClock
from informers.errors import (
    BadRequestError,
    ConnectError,
    ExpiredError,
    GoneError,
    InvalidError,
    MalformedResponseError,
    ServerTimeoutError,
    StreamStalledError,
    TooManyRequestsError,
)
from informers.events import Apply, Bookmark, Delete, Init, InitApply, InitDone

from .conftest import pod


def page(rv: str, names: list[str], cont: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    items = [pod(n, "ns", "1", typed=False, spec=None) for n in names]  # list items carry no kind
    return {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": items}


def ev(etype: str, name: str, rv: str) -> dict[str, Any]:
    return {"type": etype, "object": pod(name, "ns", rv, spec=None)}


def bookmark(rv: str, end: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if end:
        meta["annotations"] = {INITIAL_EVENTS_END_ANNOTATION: "true"}
    return {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": meta}}


def error_event(code: int, reason: str, message: str = "boom") -> dict[str, Any]:
    return {
        "type": "ERROR",
        "object": {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message},
    }


class Driven(Watcher):
    """Confirms every batch as applied right away, as the reflector does when the store succeeds
    (the tests of the unapplied case use ``Watcher`` itself)."""

    def on_list_page(self, body: Any) -> list[Any]:
        events = super().on_list_page(body)
        self.on_applied()
        return events

    def on_watch_event(self, event: Any) -> list[Any]:
        events = super().on_watch_event(event)
        self.on_applied()
        return events


def make(**kwargs: Any) -> Watcher:
    return Driven(rng=random.Random(1), clock=kwargs.pop("clock", FakeClock()), **kwargs)


def synced(w: Watcher, rv: str = "100", names: list[str] | None = None) -> Watcher:
    """Drive ``w`` through a one-page list so it is watching at ``rv``."""
    assert isinstance(w.next_request(), ListRequest)
    w.on_list_page(page(rv, names if names is not None else ["a"]))
    return w


# --- list -------------------------------------------------------------------------------------


def test_first_list_uses_rv_zero_and_limit_then_pages_drop_the_rv() -> None:
    w = make(page_size=2)
    assert w.next_request() == ListRequest("0", None, None, 2)
    assert w.next_request() is w.next_request()  # asking twice does not advance anything

    events = w.on_list_page(page("50", ["a", "b"], cont="tok1"))
    assert events[0] == Init()
    assert [e.obj["metadata"]["name"] for e in events[1:]] == ["a", "b"]  # type: ignore[union-attr]
    assert all(isinstance(e, InitApply) for e in events[1:])
    assert w.next_request() == ListRequest(None, None, "tok1", 2)

    events = w.on_list_page(page("50", ["c"]))
    assert isinstance(events[0], InitApply) and events[-1] == InitDone("50")
    assert Init() not in events
    stats = w.statistics()
    assert (stats.lists, stats.relists, stats.syncs, stats.list_pages, stats.listed_objects) == (1, 0, 1, 2, 3)
    assert stats.state == "watching" and w.resource_version == "50"


def test_list_items_get_kind_and_api_version_back() -> None:
    w = make()
    w.next_request()
    events = w.on_list_page(page("5", ["a"]))
    obj = events[1].obj  # type: ignore[union-attr]
    assert obj["kind"] == "Pod" and obj["apiVersion"] == "v1"


def test_watch_starts_from_the_list_rv_with_bookmarks_and_random_timeout() -> None:
    w = synced(make())
    req = w.next_request()
    assert isinstance(req, WatchRequest)
    assert req.resource_version == "100" and req.allow_bookmarks and not req.send_initial_events
    assert req.resource_version_match is None
    timeouts = set()
    for seed in range(200):
        t = synced(Driven(rng=random.Random(seed), clock=FakeClock())).next_request()
        assert isinstance(t, WatchRequest) and 300 <= t.timeout_seconds < 600
        timeouts.add(t.timeout_seconds)
    assert len(timeouts) > 50  # really spread out, not one fixed value


def test_expired_continue_token_falls_back_to_one_full_list() -> None:
    w = make(page_size=2)
    w.next_request()
    w.on_list_page(page("50", ["a", "b"], cont="tok1"))
    w.next_request()
    w.on_error(ExpiredError("continue token expired", reason="Expired"))
    req = w.next_request()
    assert req == ListRequest("", None, None, None)  # full, unpaged list; no stale token
    events = w.on_list_page(page("80", ["a", "b", "c"]))
    assert events[0] == Init()  # the partial pages are void: a new buffer starts
    assert events[-1] == InitDone("80")
    stats = w.statistics()
    assert stats.list_fallbacks == 1 and stats.relists == 0


def test_transient_error_mid_list_retries_the_same_page() -> None:
    w = make(page_size=2)
    w.next_request()
    w.on_list_page(page("50", ["a", "b"], cont="tok1"))
    w.on_error(ConnectError("connection refused"))
    assert w.next_request() == ListRequest(None, None, "tok1", 2)
    events = w.on_list_page(page("50", ["c"]))
    assert Init() not in events and events[-1] == InitDone("50")
    assert w.statistics().list_retries == 1


def test_malformed_list_page_emits_nothing_and_is_retried() -> None:
    w = make()
    req = w.next_request()
    bad = page("5", ["a"])
    bad["items"].append({"metadata": {}})
    with pytest.raises(MalformedResponseError, match="metadata.name"):
        w.on_list_page(bad)
    w.on_error(MalformedResponseError("bad page"))
    assert w.next_request() == req
    with pytest.raises(MalformedResponseError, match="resourceVersion"):
        w.on_list_page({"metadata": {}, "items": []})
    events = w.on_list_page(page("5", ["a"]))
    assert events[0] == Init() and events[-1] == InitDone("5")


def test_empty_list_still_initialises_and_completes() -> None:
    w = make()
    w.next_request()
    assert w.on_list_page({"kind": "PodList", "metadata": {"resourceVersion": "9"}, "items": None}) == [
        Init(),
        InitDone("9"),
    ]


# --- watch ------------------------------------------------------------------------------------


def test_watch_events_become_apply_and_delete_and_advance_the_rv() -> None:
    w = synced(make())
    w.next_request()
    assert w.on_watch_event(ev("ADDED", "b", "101")) == [Apply(ev("ADDED", "b", "101")["object"])]
    assert isinstance(w.on_watch_event(ev("MODIFIED", "b", "102"))[0], Apply)
    assert isinstance(w.on_watch_event(ev("DELETED", "b", "103"))[0], Delete)
    assert w.resource_version == "103"
    stats = w.statistics()
    assert stats.events["ADDED"] == stats.events["MODIFIED"] == stats.events["DELETED"] == 1
    assert stats.last_event_time is not None


def test_bookmark_advances_the_rv_and_is_reported() -> None:
    w = synced(make())
    w.next_request()
    assert w.on_watch_event(bookmark("150")) == [Bookmark("150")]
    w.on_watch_closed()
    req = w.next_request()
    assert isinstance(req, WatchRequest) and req.resource_version == "150"


def test_normal_close_rewatches_from_the_last_rv_without_relist() -> None:
    clock = FakeClock()
    w = synced(make(clock=clock))
    first = w.next_request()
    w.on_watch_event(ev("MODIFIED", "a", "120"))
    clock.advance(400)
    assert w.on_watch_closed() is False
    second = w.next_request()
    assert isinstance(second, WatchRequest) and second.resource_version == "120" and second is not first
    stats = w.statistics()
    assert stats.watch_restarts["closed"] == 1 and stats.relists == 0 and stats.watch_requests == 2


def test_very_short_empty_watch_asks_for_backoff() -> None:
    clock = FakeClock()
    w = synced(make(clock=clock))
    w.next_request()
    clock.advance(0.2)
    assert w.on_watch_closed() is True
    w.next_request()
    clock.advance(5)
    assert w.on_watch_closed() is False
    assert w.statistics().short_watches == 1


def test_connection_cut_resumes_with_no_relist() -> None:
    w = synced(make())
    w.next_request()
    w.on_watch_event(ev("ADDED", "b", "105"))
    w.on_error(ConnectError("connection reset by peer"))
    req = w.next_request()
    assert isinstance(req, WatchRequest) and req.resource_version == "105"
    w.on_error(TooManyRequestsError("slow down"))
    w.on_error(ServerTimeoutError("try later"))
    assert w.next_request().resource_version == "105"  # type: ignore[union-attr]
    stats = w.statistics()
    assert stats.relists == 0 and stats.lists == 1 and stats.watch_restarts["error"] == 3
    assert stats.errors == 3 and "ServerTimeoutError" in (stats.last_error or "")


def test_stalled_stream_rewatches_and_is_counted_as_stalled() -> None:
    w = synced(make())
    w.next_request()
    w.on_error(StreamStalledError("no bytes for 300 s"))
    assert isinstance(w.next_request(), WatchRequest)
    assert w.statistics().watch_restarts["stalled"] == 1


@pytest.mark.parametrize(
    "line",
    [
        "not a dict",
        {"object": pod("a", "ns", "1", typed=False, spec=None)},
        {"type": "ADDED"},
        {"type": "WHATEVER", "object": pod("a", "ns", "1", typed=False, spec=None)},
        {"type": "ADDED", "object": {"kind": "Pod"}},
        {"type": "MODIFIED", "object": {"metadata": {"name": "a"}}},
        {"type": "BOOKMARK", "object": {"metadata": {}}},
    ],
)
def test_malformed_events_raise_and_rewatch_from_the_last_good_rv(line: Any) -> None:
    w = synced(make())
    w.next_request()
    w.on_watch_event(ev("MODIFIED", "a", "110"))
    with pytest.raises(MalformedResponseError):
        w.on_watch_event(line)
    assert w.resource_version == "110"
    w.on_error(MalformedResponseError("bad line"))
    req = w.next_request()
    assert isinstance(req, WatchRequest) and req.resource_version == "110"
    stats = w.statistics()
    assert stats.watch_restarts["malformed"] == 1 and stats.relists == 0


def test_error_event_raises_the_typed_api_error() -> None:
    w = synced(make())
    w.next_request()
    with pytest.raises(TooManyRequestsError):
        w.on_watch_event(error_event(429, "TooManyRequests"))
    with pytest.raises(ExpiredError):
        w.on_watch_event(error_event(410, "Expired", "too old resource version: 1 (2)"))
    assert w.statistics().events["ERROR"] == 2


def test_watch_410_relists_from_the_last_rv_then_consistent_read_if_that_is_gone_too() -> None:
    w = synced(make(page_size=500), rv="100")
    w.next_request()
    w.on_watch_event(ev("MODIFIED", "a", "130"))
    with pytest.raises(GoneError) as info:
        w.on_watch_event(error_event(410, "Gone"))
    w.on_error(info.value)
    # Relist from the last RV, unpaged: the watch cache answers it, no quorum read.
    assert w.next_request() == ListRequest("130", None, None, None)
    # That version is gone from the list too: consistent read, never the stale RV again.
    w.on_error(GoneError("too old resource version", reason="Gone"))
    assert w.next_request() == ListRequest("", None, None, 500)
    events = w.on_list_page(page("900", ["a"]))
    assert events[0] == Init() and events[-1] == InitDone("900")
    assert w.next_request().resource_version == "900"  # type: ignore[union-attr]
    stats = w.statistics()
    assert stats.watch_restarts["gone"] == 1
    assert stats.lists == 3 and stats.relists == 2 and stats.relist_causes == {"gone": 2}


def test_repeated_410s_never_reuse_a_stale_rv() -> None:
    w = synced(make(), rv="100")
    w.next_request()
    w.on_error(GoneError("gone"))
    seen = [w.next_request()]
    for _ in range(3):
        w.on_error(GoneError("gone"))
        seen.append(w.next_request())
    assert [r.resource_version for r in seen] == ["100", "", "", ""]  # type: ignore[union-attr]


def test_too_large_resource_version_on_list_means_consistent_read() -> None:
    w = synced(make(), rv="100")
    w.next_request()
    w.on_error(GoneError("gone"))
    w.next_request()
    w.on_error(
        ServerTimeoutError(
            "Too large resource version: 200, current: 150",
            reason="Timeout",
            details={"causes": [{"reason": "ResourceVersionTooLarge"}]},
        )
    )
    assert w.next_request().resource_version == ""  # type: ignore[union-attr]


def test_relist_pages_when_the_first_list_was_paginated() -> None:
    w = make(page_size=1)
    w.next_request()
    w.on_list_page(page("50", ["a"], cont="t"))
    w.next_request()
    w.on_list_page(page("50", ["b"]))
    w.next_request()
    w.on_error(GoneError("gone"))
    assert w.next_request() == ListRequest("50", None, None, 1)


def test_feeding_the_wrong_answer_is_a_state_error() -> None:
    w = make()
    w.next_request()
    with pytest.raises(WatcherStateError):
        w.on_watch_event(ev("ADDED", "a", "1"))
    with pytest.raises(WatcherStateError):
        w.on_watch_closed()
    synced(w)
    with pytest.raises(WatcherStateError):
        w.on_list_page(page("5", []))


# --- streaming list ---------------------------------------------------------------------------


def test_streaming_list_happy_path() -> None:
    w = make(streaming_list=True)
    req = w.next_request()
    assert req == WatchRequest("", req.timeout_seconds, True, True, "NotOlderThan")  # type: ignore[union-attr]
    assert w.on_watch_event(ev("ADDED", "a", "10")) == [Init(), InitApply(ev("ADDED", "a", "10")["object"])]
    assert w.on_watch_event(ev("ADDED", "b", "11")) == [InitApply(ev("ADDED", "b", "11")["object"])]
    assert w.resource_version is None  # no usable position until the end marker
    assert w.on_watch_event(bookmark("12", end=True)) == [InitDone("12")]
    # The same stream then carries live events.
    assert w.on_watch_event(ev("MODIFIED", "a", "13")) == [Apply(ev("MODIFIED", "a", "13")["object"])]
    w.on_watch_closed()
    again = w.next_request()
    assert isinstance(again, WatchRequest) and again.resource_version == "13"
    assert not again.send_initial_events and again.resource_version_match is None
    stats = w.statistics()
    assert stats.syncs == 1 and stats.streaming_list and stats.streaming_list_fallback_reason is None


def test_streaming_list_of_an_empty_collection() -> None:
    w = make(streaming_list=True)
    w.next_request()
    assert w.on_watch_event(bookmark("7", end=True)) == [Init(), InitDone("7")]


def test_streaming_relist_after_410_uses_last_rv_then_empty() -> None:
    w = make(streaming_list=True)
    w.next_request()
    w.on_watch_event(bookmark("12", end=True))
    w.on_error(GoneError("gone"))
    assert w.next_request().resource_version == "12"  # type: ignore[union-attr]
    w.on_error(GoneError("gone"))
    req = w.next_request()
    assert isinstance(req, WatchRequest) and req.send_initial_events and req.resource_version == ""


@pytest.mark.parametrize(
    "exc",
    [BadRequestError("sendInitialEvents is forbidden"), InvalidError("resourceVersionMatch is forbidden for watch")],
)
def test_streaming_list_rejected_falls_back_to_list_for_good(exc: Exception) -> None:
    w = make(streaming_list=True)
    w.next_request()
    w.on_error(exc)
    assert w.next_request() == ListRequest("0", None, None, 500)
    synced(w, rv="20")
    w.next_request()
    w.on_error(GoneError("gone"))
    assert isinstance(w.next_request(), ListRequest)  # still LIST on the relist
    stats = w.statistics()
    assert not stats.streaming_list and "rejected" in (stats.streaming_list_fallback_reason or "")


def test_streaming_list_not_honoured_is_detected_from_the_first_event() -> None:
    w = make(streaming_list=True)
    w.next_request()
    w.on_watch_event(ev("ADDED", "a", "10"))
    with pytest.raises(StreamingListUnsupportedError):
        w.on_watch_event(ev("MODIFIED", "a", "11"))
    w.on_error(StreamingListUnsupportedError("x"))  # harmless
    assert isinstance(w.next_request(), ListRequest)
    events = w.on_list_page(page("20", ["a"]))
    assert events[0] == Init()  # the half-streamed objects are discarded by a fresh buffer
    assert "MODIFIED" in (w.statistics().streaming_list_fallback_reason or "")


def test_streaming_stream_closed_without_end_marker_falls_back_for_good() -> None:
    clock = FakeClock()
    w = make(streaming_list=True, clock=clock)
    w.next_request()
    w.on_watch_event(ev("ADDED", "a", "10"))
    clock.advance(600)  # the whole timeoutSeconds asked for (300-600 s): the server ignores the request
    w.on_watch_closed()
    assert isinstance(w.next_request(), ListRequest)
    assert not w.statistics().streaming_list


def test_a_streaming_list_cut_short_by_the_server_lists_once_and_streams_again() -> None:
    """Regression (bench/peers under load): the apiserver dropped a slow consumer's streaming list
    after 1,682 of 3,000 events, and the informer fell back to one-piece LISTs for good."""
    clock = FakeClock()
    w = make(streaming_list=True, clock=clock)
    w.next_request()
    w.on_watch_event(ev("ADDED", "a", "10"))
    clock.advance(5)  # far from the timeoutSeconds asked for (300-600 s)
    w.on_watch_closed()
    assert isinstance(w.next_request(), ListRequest)  # this cycle: a LIST
    stats = w.statistics()
    assert stats.streaming_list and stats.streaming_list_fallback_reason is None
    synced(w, rv="30")
    w.next_request()
    w.on_error(GoneError("gone"))
    req = w.next_request()
    assert isinstance(req, WatchRequest) and req.send_initial_events  # the next cycle streams again


def test_transient_streaming_failure_lists_once_then_streams_again() -> None:
    w = make(streaming_list=True)
    w.next_request()
    w.on_error(ConnectError("refused"))
    assert isinstance(w.next_request(), ListRequest)
    synced(w, rv="30")
    w.next_request()
    w.on_error(GoneError("gone"))
    req = w.next_request()
    assert isinstance(req, WatchRequest) and req.send_initial_events and req.resource_version == "30"
    assert w.statistics().streaming_list


def test_statistics_are_a_frozen_snapshot() -> None:
    w = synced(make())
    stats = w.statistics()
    w.next_request()
    w.on_watch_event(ev("ADDED", "b", "101"))
    assert stats.events["ADDED"] == 0 and w.statistics().events["ADDED"] == 1
    with pytest.raises(TypeError):
        stats.events["ADDED"] = 5  # type: ignore[index]


# --- the store's answer: the resourceVersion moves only once applied ---------------------------


def test_an_event_not_yet_applied_does_not_move_the_resume_version() -> None:
    """Regression: a transform or index function that raised after the watcher had already taken
    the event's resourceVersion made the re-watch skip that object until the next relist."""
    w = Watcher(rng=random.Random(1), clock=FakeClock())
    w.next_request()
    w.on_list_page(page("100", ["a"]))
    w.on_applied()
    w.next_request()
    w.on_watch_event(ev("MODIFIED", "a", "101"))
    assert w.resource_version == "100"  # handed out, not applied
    w.on_error(ConnectError("cut"))  # the stream broke before the store confirmed
    req = w.next_request()
    assert isinstance(req, WatchRequest) and req.resource_version == "100"


def test_applied_events_move_the_resume_version() -> None:
    w = Watcher(rng=random.Random(1), clock=FakeClock())
    w.next_request()
    w.on_list_page(page("100", ["a"]))
    assert w.statistics().syncs == 0  # the list is not in the store yet
    w.on_applied()
    assert w.statistics().syncs == 1 and w.resource_version == "100"
    w.next_request()
    w.on_watch_event(ev("MODIFIED", "a", "101"))
    w.on_applied()
    w.on_watch_event(bookmark("105"))
    w.on_applied()
    assert w.resource_version == "105"
    w.on_applied()  # nothing pending: no change
    assert w.resource_version == "105"


def test_a_failed_apply_relists_from_the_last_applied_version() -> None:
    w = Watcher(rng=random.Random(1), clock=FakeClock())
    w.next_request()
    w.on_list_page(page("100", ["a"]))
    w.on_applied()
    w.next_request()
    w.on_watch_event(ev("ADDED", "b", "101"))
    w.on_apply_failed(RuntimeError("store bug"))
    assert w.resource_version == "100"
    assert w.next_request() == ListRequest("100", None, None, None)
    stats = w.statistics()
    assert stats.apply_failures == 1 and stats.relist_causes == {"apply-failed": 1}
    assert stats.last_error == "RuntimeError: store bug"


def test_a_failed_apply_of_a_list_keeps_the_old_version_and_lists_again() -> None:
    w = Watcher(rng=random.Random(1), clock=FakeClock())
    w.next_request()
    w.on_list_page(page("100", ["a"]))
    w.on_apply_failed(RuntimeError("commit failed"))
    assert w.resource_version is None and w.statistics().syncs == 0
    assert w.next_request() == ListRequest("0", None, None, 500)


# --- phases are data ---------------------------------------------------------------------------


def test_phase_is_a_frozen_record_replaced_on_each_transition() -> None:
    from dataclasses import FrozenInstanceError

    from informers._watcher import Listing, Streaming, Watching

    w = make(page_size=2)
    first = w.phase
    assert first == Listing("initial", "0", 2)
    with pytest.raises(FrozenInstanceError):
        first.limit = 5  # type: ignore[misc]
    w.next_request()
    w.on_list_page(page("50", ["a", "b"], cont="tok"))
    assert w.phase == Listing("initial", "0", 2, continue_token="tok", begun=True)
    assert first == Listing("initial", "0", 2)  # the old record is untouched
    w.next_request()
    w.on_list_page(page("50", ["c"]))
    assert w.phase == Watching() and w.state == "watching"
    s = make(streaming_list=True)
    assert s.phase == Streaming("initial", "") and s.state == "streaming"


# --- watch refused: relist (client-go), transient failures: re-watch ----------------------------


def test_a_refused_watch_backs_off_and_relists_from_the_last_version() -> None:
    """Regression: after a 403 on the watch the informer only re-watched, so a user who may list but
    not watch kept a stale cache forever. client-go returns the error and relists after backoff."""
    from informers.errors import ForbiddenError

    w = synced(make(), rv="100")
    w.next_request()
    w.on_error(ForbiddenError("cannot watch configmaps", status=403, reason="Forbidden"))
    assert w.next_request() == ListRequest("100", None, None, None)
    stats = w.statistics()
    assert stats.relist_causes == {"watch-refused": 1} and stats.watch_failing_since is not None
    w.on_list_page(page("120", ["a"]))  # the list works; the watch is still refused
    w.next_request()
    w.on_error(ForbiddenError("cannot watch configmaps", status=403, reason="Forbidden"))
    assert w.statistics().watch_failing_since == stats.watch_failing_since  # still failing since then
    w.on_list_page(page("130", ["a"]))
    w.next_request()
    w.on_watch_opened()  # granted: the server accepts the watch again
    assert w.statistics().watch_failing_since is None


@pytest.mark.parametrize(
    "exc",
    [
        TooManyRequestsError("slow down", status=429),
        ConnectError("refused"),
        StreamStalledError("stalled"),
        ServerTimeoutError("timeout", status=504),
    ],
)
def test_transient_watch_failures_rewatch_without_a_relist(exc: Exception) -> None:
    w = synced(make(), rv="100")
    w.next_request()
    w.on_error(exc)
    req = w.next_request()
    assert isinstance(req, WatchRequest) and req.resource_version == "100"
    assert w.statistics().relists == 0


def test_a_forbidden_streaming_list_lists_once_and_streams_again_later() -> None:
    """Regression: a 403 on the streaming list turned streaming lists off for good."""
    from informers.errors import ForbiddenError

    w = make(streaming_list=True)
    w.next_request()
    w.on_error(ForbiddenError("no", status=403, reason="Forbidden"))
    assert isinstance(w.next_request(), ListRequest)
    assert w.statistics().streaming_list is True and w.statistics().streaming_list_fallback_reason is None
    w.on_list_page(page("10", ["a"]))
    w.next_request()
    w.on_error(GoneError("gone", status=410))
    req = w.next_request()
    assert isinstance(req, WatchRequest) and req.send_initial_events  # streaming again


def test_a_streaming_list_the_server_does_not_understand_falls_back_for_good() -> None:
    w = make(streaming_list=True)
    w.next_request()
    w.on_error(InvalidError("sendInitialEvents is forbidden for list", status=422))
    assert isinstance(w.next_request(), ListRequest)
    assert w.statistics().streaming_list is False


def test_an_unknown_event_type_of_megabytes_is_not_echoed_whole() -> None:
    watcher = Watcher(streaming_list=True)
    watcher.next_request()
    with pytest.raises(MalformedResponseError) as caught:
        watcher.on_watch_event({"type": "U" * 8_000_000, "object": {"metadata": {"resourceVersion": "1"}}})
    assert len(str(caught.value)) < 300


def test_a_watch_failing_with_5xx_again_and_again_relists_after_a_few() -> None:
    """A watch that can never work (e.g. its version is one the server cannot parse: 500 each
    time) is not retried forever; an event in between starts the count again."""
    from informers.errors import InternalServerError

    w = synced(make())
    for _ in range(2):
        w.next_request()
        w.on_error(InternalServerError("boom"))
    w.next_request()
    w.on_watch_event(ev("ADDED", "b", "101"))  # the watch worked again
    w.on_applied()
    w.on_error(InternalServerError("boom"))
    assert isinstance(w.next_request(), WatchRequest) and w.statistics().relists == 0
    w.on_error(InternalServerError("boom"))
    assert isinstance(w.next_request(), WatchRequest)
    w.on_error(InternalServerError("boom"))
    req = w.next_request()
    assert isinstance(req, ListRequest) and req.resource_version == "101"
    assert dict(w.statistics().relist_causes) == {"watch-failing": 1}


def test_a_list_refused_as_a_bad_request_for_its_version_becomes_a_consistent_read() -> None:
    from informers.errors import ForbiddenError

    w = synced(make(), rv="x1")
    w.next_request()
    w.on_error(ForbiddenError("may not watch"))  # relists from the last version
    req = w.next_request()
    assert isinstance(req, ListRequest) and req.resource_version == "x1"
    w.on_error(BadRequestError("invalid resource version: x1"))
    req = w.next_request()
    assert isinstance(req, ListRequest) and req.resource_version == ""
    assert w.statistics().relist_causes["invalid-resource-version"] == 1
    w.on_error(BadRequestError("still bad"))  # a consistent read refused: the same page again
    assert w.next_request() == req
