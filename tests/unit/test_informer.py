"""SharedInformer through the fake kit, on both anyio backends: the initial list (paginated LIST
and streaming) fills the store and notifies; a relist after a 410 reports what changed while the
watch was down (tombstones, updates, and resync updates for the unchanged, to every handler); a
raising transform, a raising index function and a failing store apply never lose an object. Each
test ends with the informer's cache equal to the cluster's objects."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import anyio
import pytest

from informers import _bridge
from informers.events import Notification, ObjectAdded, ObjectDeleted, ObjectUpdated
from informers.informer import SharedInformer
from informers.objects import RawObject, object_key
from informers.resources import Resource
from informers.testing.fake import FakeCluster

from .conftest import (
    FAST,
    assert_cache_matches,
    assert_cache_matches_blocking,
    cache_of,
    cluster_view,
    wait_until_async,
)

pytestmark = pytest.mark.anyio

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)


def cm(name: str, ns: str = "ns", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, **meta}, "data": {"name": name}}


@contextlib.asynccontextmanager
async def running(informer: SharedInformer) -> AsyncIterator[SharedInformer]:
    async with anyio.create_task_group() as group:
        group.start_soon(informer.run)
        yield informer
        group.cancel_scope.cancel()


class Notes:
    """A plain handler recording every notification (runs on worker threads or inline)."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []

    def __call__(self, note: Notification) -> None:
        self.notes.append(note)

    def keys(self, kind: type) -> list[str]:
        out = []
        for note in list(self.notes):
            if isinstance(note, kind):
                out.append(note.key if isinstance(note, ObjectDeleted) else object_key(_obj(note)))
        return out


def _obj(note: Notification) -> RawObject:
    return (
        note.obj if isinstance(note, ObjectAdded) else note.new if isinstance(note, ObjectUpdated) else note.last_state
    )


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "paginated-list"])
async def test_the_initial_list_fills_the_store_and_notifies_then_changes_follow(streaming: bool) -> None:
    cluster = FakeCluster()
    for i in range(5):
        cluster.create(CONFIGMAPS, cm(f"c{i}"))
    informer = SharedInformer(cluster, CONFIGMAPS, options=replace(FAST, streaming_list=streaming, page_size=2))  # type: ignore[arg-type]
    seen: list[Notification] = []

    async def on_notification(note: Notification) -> None:
        seen.append(note)

    handler = informer.add_handler(on_notification=on_notification)
    async with running(informer):
        assert await informer.wait_synced(5) and await handler.wait_synced(5)
        assert len(informer.store) == 5
        assert [(type(n), n.in_initial_list) for n in seen] == [(ObjectAdded, True)] * 5  # type: ignore[union-attr]
        cluster.create(CONFIGMAPS, cm("live"))
        await wait_until_async(lambda: len(seen) == 6)
        assert isinstance(seen[5], ObjectAdded) and not seen[5].in_initial_list
        await assert_cache_matches(cluster, informer)
    stats = informer.statistics().watcher
    assert (stats.lists, stats.relists, stats.syncs) == (1, 0, 1)
    verbs = [r.verb for r in cluster.requests if r.source == "client"]
    if streaming:
        assert "LIST" not in verbs  # the initial events came on the watch
    else:
        assert verbs.count("LIST") == 3 and stats.list_pages == 3  # 5 objects, pages of 2


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "list"])
async def test_a_relist_after_410_reports_deletes_as_tombstones_and_unchanged_objects_as_resyncs(
    streaming: bool,
) -> None:
    """Regression: relisted objects whose resourceVersion had not changed were dropped instead
    of being delivered as ``ObjectUpdated(is_resync=True)`` to every handler (client-go)."""
    cluster = FakeCluster()
    for name in ("keep", "change", "gone"):
        cluster.create(CONFIGMAPS, cm(name))
    informer = SharedInformer(cluster, CONFIGMAPS, options=replace(FAST, streaming_list=streaming))  # type: ignore[arg-type]
    buffered, inline = Notes(), Notes()
    informer.add_handler(on_notification=buffered)
    await _bridge.to_thread(lambda: informer.add_handler(on_notification=inline, inline=True))
    async with running(informer):
        assert await informer.wait_synced(5)
        await wait_until_async(lambda: len(buffered.notes) == 3 and len(inline.notes) == 3)
        cluster.stall_watches()  # the informer sees none of what follows on its watch
        cluster.delete(CONFIGMAPS, "gone", namespace="ns")
        cluster.patch(CONFIGMAPS, "change", {"data": {"v": "2"}}, namespace="ns")
        cluster.create(CONFIGMAPS, cm("new"))
        cluster.compact()
        cluster.cut_watches()  # it re-watches from its last version: 410, so it relists
        cluster.resume_watches()
        for handler in (buffered, inline):
            await wait_until_async(lambda h=handler: len(h.notes) == 7)  # type: ignore[misc]
            relist = handler.notes[3:]
            by_key = {(n.key if isinstance(n, ObjectDeleted) else object_key(_obj(n))): n for n in relist}
            assert set(by_key) == {"ns/keep", "ns/change", "ns/gone", "ns/new"}
            gone, changed, kept, new = (by_key[f"ns/{k}"] for k in ("gone", "change", "keep", "new"))
            assert isinstance(gone, ObjectDeleted) and gone.final_state_unknown
            assert gone.last_state["metadata"]["name"] == "gone"
            assert isinstance(changed, ObjectUpdated) and not changed.is_resync
            assert (changed.old["data"], changed.new["data"]) == ({"name": "change"}, {"name": "change", "v": "2"})
            assert isinstance(kept, ObjectUpdated) and kept.is_resync and kept.old == kept.new
            assert isinstance(new, ObjectAdded) and not new.in_initial_list
        await assert_cache_matches(cluster, informer)
    stats = informer.statistics().watcher
    assert stats.relist_causes == {"gone": 1} and stats.watch_restarts["gone"] == 1


async def test_objects_moving_into_and_out_of_the_label_selector_arrive_as_adds_and_deletes() -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a", labels={"app": "web"}))
    cluster.create(CONFIGMAPS, cm("b"))
    informer = SharedInformer(cluster, CONFIGMAPS, label_selector="app=web", options=FAST)  # type: ignore[arg-type]
    notes = Notes()
    informer.add_handler(on_notification=notes)
    async with running(informer):
        assert await informer.wait_synced(5)
        cluster.patch(CONFIGMAPS, "a", {"metadata": {"labels": {"app": "db"}}}, namespace="ns")
        cluster.patch(CONFIGMAPS, "b", {"metadata": {"labels": {"app": "web"}}}, namespace="ns")
        await wait_until_async(lambda: len(notes.notes) == 3)
        await assert_cache_matches(cluster, informer)
    assert [(type(n).__name__, object_key(_obj(n))) for n in notes.notes] == [
        ("ObjectAdded", "ns/a"),
        ("ObjectDeleted", "ns/a"),
        ("ObjectAdded", "ns/b"),
    ]
    deleted = notes.notes[1]
    assert isinstance(deleted, ObjectDeleted) and not deleted.final_state_unknown  # the watch sent its state


def _flag(obj: RawObject) -> RawObject:
    """A transform that marks what it saw, and raises on objects labelled bad."""
    if obj["metadata"].get("labels", {}).get("bad"):
        obj["metadata"]["annotations"] = {"half": "done"}  # a partial edit the informer must undo
        raise ValueError("cannot transform this one")
    obj["metadata"]["annotations"] = {"transformed": "yes"}
    return obj


async def test_a_raising_transform_caches_and_delivers_the_object_untransformed_and_the_watch_goes_on() -> None:
    """Regression: the resume version used to move before the store applied the event, so an
    object whose transform raised stayed out of the cache until the next relist."""
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("listed-bad", labels={"bad": "1"}))
    cluster.create(CONFIGMAPS, cm("listed-good"))
    informer = SharedInformer(cluster, CONFIGMAPS, transform=_flag, options=FAST)  # type: ignore[arg-type]
    notes = Notes()
    informer.add_handler(on_notification=notes)
    async with running(informer):
        assert await informer.wait_synced(5)
        cluster.create(CONFIGMAPS, cm("watched-bad", labels={"bad": "1"}))
        cluster.create(CONFIGMAPS, cm("watched-good"))
        await wait_until_async(lambda: len(notes.notes) == 4)
        delivered = {object_key(_obj(n)): _obj(n) for n in notes.notes}
        for name in ("listed-bad", "watched-bad"):
            assert "annotations" not in delivered[f"ns/{name}"]["metadata"]  # as the server sent it
            assert "annotations" not in informer.store.get(f"ns/{name}")["metadata"]  # type: ignore[index]
        assert delivered["ns/watched-good"]["metadata"]["annotations"] == {"transformed": "yes"}
        expected = {key: _flag_or_keep(obj) for key, obj in cluster_view(cluster, informer).items()}
        await wait_until_async(lambda: cache_of(informer) == expected)
        assert cache_of(informer) == expected  # the cluster's objects, through the transform where it worked
    stats = informer.statistics()
    assert stats.transform_errors == 2
    assert (stats.watcher.relists, stats.watcher.errors) == (0, 0)  # no relist was needed to recover


def _flag_or_keep(obj: RawObject) -> RawObject:
    try:
        return _flag(dict(obj, metadata=dict(obj["metadata"])))
    except ValueError:
        return obj


async def test_an_index_function_that_raises_leaves_the_object_cached_and_unindexed() -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("red", labels={"team": "red"}))
    cluster.create(CONFIGMAPS, cm("nobody"))

    def by_team(obj: RawObject) -> list[str]:
        return [obj["metadata"]["labels"]["team"]]  # KeyError without the label

    informer = SharedInformer(cluster, CONFIGMAPS, indexers={"team": by_team}, options=FAST)  # type: ignore[arg-type]
    async with running(informer):
        assert await informer.wait_synced(5)
        cluster.create(CONFIGMAPS, cm("watched-nobody"))
        cluster.create(CONFIGMAPS, cm("blue", labels={"team": "blue"}))
        await assert_cache_matches(cluster, informer)
        store = informer.store
        assert store.index_keys("team", "red") == ["ns/red"] and store.index_keys("team", "blue") == ["ns/blue"]
        assert sorted(store.list_index_values("team")) == ["blue", "red"]
        assert sorted(store.index_keys("namespace", "ns")) == ["ns/blue", "ns/nobody", "ns/red", "ns/watched-nobody"]
    assert informer.statistics().store.index_errors == 2
    assert informer.statistics().watcher.relists == 0


async def test_a_failing_store_apply_relists_from_the_last_applied_version(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a"))
    informer = SharedInformer(cluster, CONFIGMAPS, options=FAST)  # type: ignore[arg-type]
    notes = Notes()
    informer.add_handler(on_notification=notes)
    upsert = informer.store.upsert_view
    failures: list[str] = []

    def flaky_upsert(obj: RawObject) -> Any:
        if obj["metadata"]["name"] == "x" and not failures:
            failures.append(obj["metadata"]["resourceVersion"])
            raise MemoryError("the store could not take it")
        return upsert(obj)

    async with running(informer):
        assert await informer.wait_synced(5)
        applied = informer.watcher.resource_version
        monkeypatch.setattr(informer.store, "upsert_view", flaky_upsert)
        cluster.create(CONFIGMAPS, cm("x"))
        await assert_cache_matches(cluster, informer)
        assert "ns/x" in informer.store
        await wait_until_async(lambda: len(notes.notes) == 3)  # delivered before the informer stops
    stats = informer.statistics().watcher
    assert failures and stats.apply_failures == 1 and stats.relist_causes == {"apply-failed": 1}
    relist = [r for r in cluster.requests if r.verb == "LIST" and r.source == "client"]
    assert [r.query.get("resourceVersion") for r in relist] == [applied]  # a LIST from the last applied version
    added, kept = notes.notes[1:]  # the relist diff: x arrives once; a, unchanged, as a resync update
    assert isinstance(added, ObjectAdded) and object_key(added.obj) == "ns/x" and not added.in_initial_list
    assert isinstance(kept, ObjectUpdated) and kept.is_resync and object_key(kept.new) == "ns/a"


def test_the_thread_form_starts_and_stops_an_informer_without_an_event_loop() -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a"))
    cluster.create(CONFIGMAPS, cm("b", ns="other"))
    informer = SharedInformer(cluster, CONFIGMAPS, namespace="ns", options=FAST)  # type: ignore[arg-type]
    informer.start()
    try:
        assert informer.wait_synced_blocking(5)
        cluster.create(CONFIGMAPS, cm("c"))
        assert_cache_matches_blocking(cluster, informer)
        assert sorted(informer.store.keys()) == ["ns/a", "ns/c"]
    finally:
        informer.stop()
    assert not informer.statistics().reflector.running and cluster.open_watches == 0


@pytest.mark.anyio
async def test_a_huge_label_selector_stays_out_of_names_logs_and_errors() -> None:
    """Regression: informer names embedded the whole label selector, so a 10,000-entry selector made
    every log line and a ``SyncTimeoutError`` message about 1 MB long."""
    from informers.errors import SyncTimeoutError
    from informers.factory import InformerFactory

    cluster = FakeCluster()
    selector = ",".join(f"key-{i}=value-{i}" for i in range(10_000))
    hold = cluster.hold("WATCH")  # the streaming initial list never answers: no sync
    async with InformerFactory(cluster, options=FAST) as factory:  # type: ignore[arg-type]
        informer = await factory.informer("v1/configmaps", label_selector=selector)
        assert len(informer.name) < 120 and informer.label_selector == selector
        with pytest.raises(SyncTimeoutError) as info:
            await factory.wait_synced(timeout=0.2)
        assert len(str(info.value)) < 1000
        hold.release()


@pytest.mark.anyio
async def test_delete_and_recreate_across_a_relist_notifies_the_old_uids_delete_then_the_new_add() -> None:
    """Regression: the relist matched objects by name only, so a handler saw an update from the old
    UID to the new one and never a delete for the old UID."""
    from informers.factory import InformerFactory

    cluster = FakeCluster()
    async with InformerFactory(cluster, options=FAST) as factory:  # type: ignore[arg-type]
        informer = await factory.informer("v1/configmaps")
        notes: list[Notification] = []
        informer.add_handler(on_notification=notes.append, inline=True)
        await factory.wait_synced(5)
        old = cluster.create("v1/configmaps", {"metadata": {"name": "phoenix", "namespace": "ns"}})
        await wait_until_async(lambda: len(notes) == 1)
        cluster.stall_watches()  # the informer misses the delete and the re-create...
        cluster.delete("v1/configmaps", "phoenix", namespace="ns")
        new = cluster.create("v1/configmaps", {"metadata": {"name": "phoenix", "namespace": "ns"}})
        cluster.compact()  # ...and its watch cannot replay them: it must relist
        cluster.resume_watches()
        cluster.cut_watches()
        await wait_until_async(lambda: informer.store.get_by_uid(new["metadata"]["uid"]) is not None)
        later = notes[1:]
        deletes = [n for n in later if isinstance(n, ObjectDeleted)]
        adds = [n for n in later if isinstance(n, ObjectAdded)]
        assert [d.last_state["metadata"]["uid"] for d in deletes] == [old["metadata"]["uid"]]
        assert deletes[0].final_state_unknown
        assert [a.obj["metadata"]["uid"] for a in adds] == [new["metadata"]["uid"]]
        assert later.index(deletes[0]) < later.index(adds[0])
        assert not [n for n in later if isinstance(n, ObjectUpdated) and not n.is_resync]
        await assert_cache_matches(cluster, informer)
