"""The reflector's list-then-watch loop on its thread, through the fake kit: paginated and
streaming initial lists, cut and stalled watches resuming from the last resourceVersion without a
relist, bookmarks moving the resume point, and stopping while blocked on a watch or inside a LIST.
Each test ends with the cache equal to the cluster's objects."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import anyio
import pytest

from informers import _bridge
from informers._backoff import Backoff
from informers._listbody import RawInitApply
from informers._reflector import Reflector
from informers._watcher import Watcher
from informers.events import Apply, Delete, Init, InitApply, InitDone, WatchEvent
from informers.informer import SharedInformer
from informers.objects import object_key
from informers.resources import Resource
from informers.store import ReplaceBuffer, Store
from informers.testing.fake import FakeCluster

from .conftest import FAST, assert_cache_matches, wait_until, wait_until_async

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
SECRETS = Resource("", "v1", "secrets", "Secret", namespaced=True)


def cm(name: str, ns: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "data": {"v": "1"}}


class Sink:
    """What the informer does with the reflector's events, in miniature: a store and its replace buffer."""

    def __init__(self) -> None:
        self.store = Store()
        self.buffer: ReplaceBuffer | None = None
        self.batches: list[list[WatchEvent | RawInitApply]] = []

    def __call__(self, events: list[WatchEvent | RawInitApply]) -> None:
        self.batches.append(events)
        for event in events:
            if isinstance(event, Init):
                self.buffer = self.store.begin_replace()
            elif isinstance(event, InitApply):
                assert self.buffer is not None
                self.buffer.add(event.obj)
            elif isinstance(event, RawInitApply):  # a LIST page's item, still JSON
                assert self.buffer is not None
                self.buffer.add(event.decode())
            elif isinstance(event, InitDone):
                assert self.buffer is not None
                self.buffer.commit(event.resource_version)
            elif isinstance(event, Apply):
                self.store.upsert(event.obj)
            elif isinstance(event, Delete):
                self.store.delete(event.obj)

    def matches(self, cluster: FakeCluster) -> bool:
        cached = {object_key(o): o for o in self.store.list()}
        return cached == {object_key(o): o for o in cluster.list(CONFIGMAPS)}


def start(
    cluster: FakeCluster, sink: Sink, *, streaming: bool, page_size: int | None = 500
) -> tuple[Reflector, threading.Thread]:
    watcher = Watcher(page_size=page_size, streaming_list=streaming)
    reflector = Reflector(cluster, CONFIGMAPS, sink, watcher=watcher, backoff=Backoff(0.01, 0.05))  # type: ignore[arg-type]
    thread = threading.Thread(target=reflector.run, name="test-reflector", daemon=True)
    thread.start()
    return reflector, thread


def stop(reflector: Reflector, thread: threading.Thread) -> None:
    reflector.stop()
    thread.join(5)
    assert not thread.is_alive()


def test_a_paginated_initial_list_fills_the_store_page_by_page_then_watches_from_its_version() -> None:
    cluster = FakeCluster()
    for i in range(5):
        cluster.create(CONFIGMAPS, cm(f"c{i}"))
    listed_at = cluster.resource_version
    sink = Sink()
    reflector, thread = start(cluster, sink, streaming=False, page_size=2)
    wait_until(lambda: reflector.watcher.state == "watching" and cluster.open_watches == 1)
    client = [r for r in cluster.requests if r.source == "client"]
    assert [(r.verb, r.query.get("resourceVersion"), r.query.get("limit"), "continue" in r.query) for r in client] == [
        ("LIST", "0", "2", False),
        ("LIST", None, "2", True),
        ("LIST", None, "2", True),
        ("WATCH", listed_at, None, False),
    ]
    assert client[-1].query["allowWatchBookmarks"] == "true"
    # LIST items stay JSON until stored (one decoded at a time); nothing visible before InitDone
    assert [type(e) for e in sink.batches[0]] == [Init, RawInitApply, RawInitApply]
    cluster.create(CONFIGMAPS, cm("live"))
    cluster.delete(CONFIGMAPS, "c0", namespace="ns")
    wait_until(lambda: sink.matches(cluster))
    stop(reflector, thread)


def test_a_streaming_initial_list_needs_no_list_request() -> None:
    cluster = FakeCluster()
    for i in range(3):
        cluster.create(CONFIGMAPS, cm(f"c{i}"))
    sink = Sink()
    reflector, thread = start(cluster, sink, streaming=True)
    wait_until(lambda: reflector.watcher.statistics().syncs == 1)
    (request,) = [r for r in cluster.requests if r.source == "client"]
    assert request.verb == "WATCH" and request.query["sendInitialEvents"] == "true"
    assert request.query["resourceVersionMatch"] == "NotOlderThan"
    cluster.create(CONFIGMAPS, cm("live"))  # the same stream goes on with live events
    wait_until(lambda: sink.matches(cluster))
    assert reflector.watcher.statistics().watch_requests == 1
    stop(reflector, thread)


def test_a_continue_token_compacted_between_pages_falls_back_to_one_full_list(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster()
    for i in range(5):
        cluster.create(CONFIGMAPS, cm(f"c{i}"))
    request = cluster.request
    compacted: list[str] = []

    def compact_before_page_two(method: str, path: str, *, query: Any = None, **kwargs: Any) -> Any:
        if query and query.get("continue") and not compacted:
            compacted.append(cluster.create(CONFIGMAPS, cm("late"))["metadata"]["resourceVersion"])
            cluster.compact()  # the snapshot behind the continue token is gone: 410 Expired
        return request(method, path, query=query, **kwargs)

    monkeypatch.setattr(cluster, "request", compact_before_page_two)
    sink = Sink()
    reflector, thread = start(cluster, sink, streaming=False, page_size=2)
    wait_until(lambda: sink.matches(cluster) and cluster.open_watches == 1)
    lists = [r.query for r in cluster.requests if r.verb == "LIST" and r.source == "client"]
    assert [(q.get("resourceVersion"), q.get("limit"), "continue" in q) for q in lists] == [
        ("0", "2", False),
        (None, "2", True),
        ("", None, False),
    ]  # then one consistent, unpaged list
    assert reflector.watcher.statistics().list_fallbacks == 1
    stop(reflector, thread)


def test_a_server_without_streaming_lists_is_listed_instead() -> None:
    cluster = FakeCluster(streaming_lists=False)
    cluster.create(CONFIGMAPS, cm("a"))
    sink = Sink()
    reflector, thread = start(cluster, sink, streaming=True)
    wait_until(lambda: sink.matches(cluster) and cluster.open_watches == 1)
    stats = reflector.watcher.statistics()
    assert not stats.streaming_list and "WatchList" in (stats.streaming_list_fallback_reason or "")
    assert [r.verb for r in cluster.requests if r.source == "client"] == ["WATCH", "LIST", "WATCH"]
    cluster.create(CONFIGMAPS, cm("b"))
    wait_until(lambda: sink.matches(cluster))
    stop(reflector, thread)


def test_a_cut_watch_resumes_from_the_last_resource_version_without_a_relist() -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a"))
    sink = Sink()
    reflector, thread = start(cluster, sink, streaming=True)
    wait_until(lambda: sink.matches(cluster) and cluster.open_watches == 1)
    last = reflector.watcher.resource_version
    cluster.stall_watches()
    cluster.create(CONFIGMAPS, cm("b"))  # made while the connection is down: must come on the new watch
    cluster.cut_watches()
    cluster.resume_watches()
    wait_until(lambda: sink.matches(cluster))
    stats = reflector.watcher.statistics()
    assert (stats.lists, stats.relists, stats.watch_restarts["error"]) == (1, 0, 1)
    rewatch = [r for r in cluster.requests if r.verb == "WATCH"][-1]
    assert rewatch.query["resourceVersion"] == last and "sendInitialEvents" not in rewatch.query
    stop(reflector, thread)


@pytest.mark.anyio
async def test_a_stalled_watch_is_restarted_after_its_idle_deadline_without_a_relist() -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a"))
    informer = SharedInformer(cluster, CONFIGMAPS, options=replace(FAST, idle_timeout=0.05))  # type: ignore[arg-type]
    async with anyio.create_task_group() as group:
        group.start_soon(informer.run)
        assert await informer.wait_synced(5)
        cluster.stall_watches()  # a half-open connection: nothing arrives, nothing fails
        cluster.create(CONFIGMAPS, cm("b"))
        await wait_until_async(lambda: informer.watcher.statistics().watch_restarts["stalled"] >= 1)
        assert "ns/b" not in informer.store
        cluster.resume_watches()
        await assert_cache_matches(cluster, informer)
        group.cancel_scope.cancel()
    stats = informer.watcher.statistics()
    assert (stats.lists, stats.relists) == (1, 0)


def test_bookmarks_move_the_resume_point() -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a"))
    sink = Sink()
    reflector, thread = start(cluster, sink, streaming=True)
    wait_until(lambda: sink.matches(cluster) and cluster.open_watches == 1)
    for i in range(3):
        cluster.create(SECRETS, {"metadata": {"name": f"s{i}", "namespace": "ns"}})  # other resources move the clock
    cluster.send_bookmarks()
    wait_until(lambda: reflector.watcher.resource_version == cluster.resource_version)
    cluster.cut_watches()
    wait_until(lambda: reflector.watcher.statistics().watch_restarts["error"] == 1 and cluster.open_watches == 1)
    assert [r for r in cluster.requests if r.verb == "WATCH"][-1].query["resourceVersion"] == cluster.resource_version
    assert sink.matches(cluster)
    stop(reflector, thread)


def test_stop_while_blocked_on_a_watch_returns_promptly_and_the_thread_ends() -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a"))
    sink = Sink()
    reflector, thread = start(cluster, sink, streaming=False)
    wait_until(lambda: sink.matches(cluster) and cluster.open_watches == 1)
    assert reflector.statistics().running
    reflector.stop()  # the watch has a server timeout of minutes: only the close can end it
    thread.join(5)
    assert not thread.is_alive() and not reflector.statistics().running
    assert cluster.open_watches == 0 and reflector.statistics().backoffs == 0
    assert sink.matches(cluster)


@pytest.mark.anyio
async def test_stop_while_blocked_in_a_list_aborts_the_list_and_the_thread_exits_at_once() -> None:
    """Regression: stop() returned while the reflector thread was still blocked in a LIST (only a
    watch whose headers had arrived could be interrupted). Now the request in flight is aborted
    (for a real one: its socket is shut down), the thread ends at once, nothing late is applied."""
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a"))
    hold = cluster.hold("LIST", CONFIGMAPS.path())
    informer = SharedInformer(cluster, CONFIGMAPS, options=replace(FAST, streaming_list=False))  # type: ignore[arg-type]
    scope = anyio.CancelScope()
    stopped = anyio.Event()

    async def run() -> None:
        with scope:
            await informer.run()
        stopped.set()

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        assert await _bridge.to_thread(hold.wait_held)
        thread = next(t for t in threading.enumerate() if t.name == f"informer-{informer.name}")
        scope.cancel()
        with anyio.fail_after(5):
            await stopped.wait()  # run() returned with the LIST still held: it was aborted
    assert not thread.is_alive() and hold.waiting == 0
    stats = informer.statistics()
    assert not stats.reflector.running and not stats.synced and len(informer.store) == 0
    assert stats.watcher.watch_requests == 0 and stats.reflector.backoffs == 0
    hold.release()
