"""Notification handlers of a running informer through the fake kit, in the three delivery modes
(plain functions on worker threads, coroutines, inline), on both anyio backends: a late handler's
replay joins the live changes with no gap and no duplicate; resync reaches only the handlers that
asked; a removed handler gets nothing more (its backlog is dropped); a raising handler is counted,
keeps receiving and never disturbs another. Each test ends with the cache equal to the cluster."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from informers import _bridge
from informers.clock import FakeClock
from informers.events import Notification, ObjectAdded, ObjectUpdated
from informers.handlers import HandlerRegistration
from informers.informer import SharedInformer
from informers.resources import Resource
from informers.testing.fake import FakeCluster

from .conftest import FAST, assert_cache_matches, wait_until_async

pytestmark = pytest.mark.anyio

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
MODES = ["thread", "async", "inline"]


def cm(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}}


@contextlib.asynccontextmanager
async def running(informer: SharedInformer) -> AsyncIterator[SharedInformer]:
    async with anyio.create_task_group() as group:
        group.start_soon(informer.run)
        assert await informer.wait_synced(5)
        yield informer
        group.cancel_scope.cancel()


async def add(
    informer: SharedInformer, mode: str, record: Callable[[Notification], None], **options: Any
) -> HandlerRegistration:
    """Register ``record`` in ``mode``; an inline handler is added off the loop (its replay runs on
    the registering thread)."""
    if mode == "async":

        async def on_notification(note: Notification) -> None:
            record(note)

        return informer.add_handler(on_notification=on_notification, **options)
    if mode == "inline":
        return await _bridge.to_thread(lambda: informer.add_handler(on_notification=record, inline=True, **options))
    return informer.add_handler(on_notification=record, **options)


def name_of(note: Notification) -> str:
    obj = (
        note.obj if isinstance(note, ObjectAdded) else note.new if isinstance(note, ObjectUpdated) else note.last_state
    )
    return str(obj["metadata"]["name"])


@pytest.mark.parametrize("mode", MODES)
async def test_a_late_handler_gets_the_replay_then_every_change_with_no_gap_and_no_duplicate(mode: str) -> None:
    cluster = FakeCluster()
    for i in range(50):
        cluster.create(CONFIGMAPS, cm(f"o{i:03}"))
    informer = SharedInformer(cluster, CONFIGMAPS, options=FAST)  # type: ignore[arg-type]
    registered = threading.Event()

    def write() -> None:  # keeps the watch busy while the handler registers
        for i in range(50, 150):
            if i == 100:
                registered.wait(5)
            cluster.create(CONFIGMAPS, cm(f"o{i:03}"))

    seen: list[Notification] = []
    async with running(informer):
        writer = threading.Thread(target=write)
        writer.start()
        await wait_until_async(lambda: len(informer.store) >= 75)
        handler = await add(informer, mode, seen.append)
        registered.set()
        await _bridge.to_thread(writer.join)
        await wait_until_async(lambda: len(seen) == 150)
        assert await handler.wait_synced(5)
        await assert_cache_matches(cluster, informer)
    assert all(isinstance(note, ObjectAdded) for note in seen)
    names = [name_of(note) for note in seen]
    assert sorted(names) == [f"o{i:03}" for i in range(150)]  # every object once: no gap, no duplicate
    replayed = sorted(name_of(n) for n in seen if isinstance(n, ObjectAdded) and n.in_initial_list)
    live = [name_of(n) for n in seen if isinstance(n, ObjectAdded) and not n.in_initial_list]
    assert replayed == [f"o{i:03}" for i in range(len(replayed))]  # the cache at registration...
    assert live == [f"o{i:03}" for i in range(len(replayed), 150)]  # ...then the rest, in order
    assert len(live) >= 50


async def test_resync_reaches_only_the_handlers_that_asked() -> None:
    clock = FakeClock()
    cluster = FakeCluster()
    for name in ("a", "b", "c"):
        cluster.create(CONFIGMAPS, cm(name))
    informer = SharedInformer(cluster, CONFIGMAPS, options=FAST, clock=clock)  # type: ignore[arg-type]
    asked: list[Notification] = []
    plain: list[Notification] = []
    await add(informer, "async", asked.append, resync_period=1.0)
    await add(informer, "thread", plain.append)

    def resyncs(notes: list[Notification]) -> list[ObjectUpdated]:
        return [n for n in notes if isinstance(n, ObjectUpdated) and n.is_resync]

    async with running(informer):
        await wait_until_async(lambda: len(asked) == 3 and len(plain) == 3)
        clock.advance(1.5)
        late: list[Notification] = []
        await add(informer, "inline", late.append)  # registering also wakes the resync timer
        await wait_until_async(lambda: len(resyncs(asked)) == 3)
        cluster.create(CONFIGMAPS, cm("sentinel"))  # per-handler order: after it, nothing is in flight
        await wait_until_async(lambda: all(name_of(n[-1]) == "sentinel" for n in (asked, plain, late) if n))
        await assert_cache_matches(cluster, informer)
    assert sorted(name_of(n) for n in resyncs(asked)) == ["a", "b", "c"]
    assert all(n.old == n.new for n in resyncs(asked))
    assert resyncs(plain) == [] and resyncs(late) == []
    assert [name_of(n) for n in late] == ["a", "b", "c", "sentinel"]
    assert informer.statistics().resyncs == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_removed_handler_gets_nothing_more(mode: str) -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("before"))
    informer = SharedInformer(cluster, CONFIGMAPS, options=FAST)  # type: ignore[arg-type]
    victim: list[Notification] = []
    witness: list[Notification] = []
    async with running(informer):
        handler = await add(informer, mode, victim.append)
        await add(informer, "thread", witness.append)
        await wait_until_async(lambda: len(victim) == 1 and len(witness) == 1)
        informer.remove_handler(handler)
        cluster.create(CONFIGMAPS, cm("after"))
        await wait_until_async(lambda: [name_of(n) for n in witness] == ["before", "after"])
        await wait_until_async(lambda: handler.stopped)
        await assert_cache_matches(cluster, informer)
    assert [name_of(n) for n in victim] == ["before"]
    assert handler.name not in [h.name for h in informer.statistics().handlers]


async def test_removing_a_busy_handler_drops_its_backlog() -> None:
    cluster = FakeCluster()
    informer = SharedInformer(cluster, CONFIGMAPS, options=FAST)  # type: ignore[arg-type]
    gate = threading.Event()
    handled: list[str] = []

    def slow(note: Notification) -> None:
        handled.append(name_of(note))
        gate.wait(5)

    async with running(informer):
        handler = informer.add_handler(on_notification=slow)
        for i in range(10):
            cluster.create(CONFIGMAPS, cm(f"o{i}"))
        await wait_until_async(lambda: handled == ["o0"] and handler.statistics().pending == 9)
        informer.remove_handler(handler)
        gate.set()  # the notification being handled finishes; the nine behind it are dropped
        await wait_until_async(lambda: handler.stopped)
        await assert_cache_matches(cluster, informer)
    assert handled == ["o0"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_raising_handler_is_counted_keeps_receiving_and_disturbs_no_other(mode: str) -> None:
    cluster = FakeCluster()
    informer = SharedInformer(cluster, CONFIGMAPS, options=FAST)  # type: ignore[arg-type]
    received: list[str] = []
    others: list[Notification] = []

    def explode(note: Notification) -> None:
        received.append(name_of(note))
        if name_of(note) == "boom":
            raise RuntimeError("handler bug")

    async with running(informer):
        handler = await add(informer, mode, explode)
        await add(informer, "thread", others.append)
        for name in ("boom", "fine"):
            cluster.create(CONFIGMAPS, cm(name))
        await wait_until_async(lambda: received == ["boom", "fine"] and len(others) == 2)
        await assert_cache_matches(cluster, informer)
    stats = handler.statistics()
    assert (stats.errors, stats.delivered) == (1, 2) and "handler bug" in (stats.last_error or "")
    assert [name_of(n) for n in others] == ["boom", "fine"]


async def test_a_plain_handler_that_hangs_does_not_hang_the_informers_stop() -> None:
    cluster = FakeCluster()
    informer = SharedInformer(cluster, CONFIGMAPS, options=FAST)  # type: ignore[arg-type]
    gate = threading.Event()
    handled: list[str] = []

    def hangs(note: Notification) -> None:
        handled.append(name_of(note))
        gate.wait(30)  # "forever", as far as the stop is concerned

    try:
        with anyio.fail_after(10):  # before the fix: the stop waited for the handler's thread
            async with running(informer):
                handler = informer.add_handler(on_notification=hangs)
                for i in range(5):
                    cluster.create(CONFIGMAPS, cm(f"o{i}"))
                await wait_until_async(lambda: handled == ["o0"] and handler.statistics().pending == 4)
        assert handler.stopped
    finally:
        gate.set()  # the abandoned call returns; the four behind it are dropped, not delivered
    await anyio.sleep(0.2)
    assert handled == ["o0"]


@pytest.mark.parametrize("mode", ["thread", "async"])
async def test_a_call_in_progress_shows_as_busy_seconds_until_it_returns(mode: str) -> None:
    cluster = FakeCluster()
    informer = SharedInformer(cluster, CONFIGMAPS, options=FAST)  # type: ignore[arg-type]
    gate, entered = threading.Event(), threading.Event()

    def blocks(note: Notification) -> None:
        entered.set()
        gate.wait(30)

    async def blocks_async(note: Notification) -> None:
        entered.set()
        while not gate.is_set():
            await anyio.sleep(0.01)

    try:
        async with running(informer):
            handler = informer.add_handler(on_notification=blocks if mode == "thread" else blocks_async)
            assert handler.statistics().busy_seconds == 0.0
            cluster.create(CONFIGMAPS, cm("o0"))
            await wait_until_async(entered.is_set)
            first = handler.statistics().busy_seconds
            await anyio.sleep(0.05)
            assert handler.statistics().busy_seconds > first > 0.0  # grows while the call runs
            gate.set()
            await wait_until_async(lambda: handler.statistics().delivered == 1)
            assert handler.statistics().busy_seconds == 0.0
    finally:
        gate.set()


async def test_a_plain_handler_fed_a_trickle_stays_on_its_worker_thread_instead_of_hopping_through_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression (bench/peers profile): each lone event cost two hops through the event loop."""
    import informers.handlers as handlers

    monkeypatch.setattr(handlers, "_LINGER", 30.0)  # nothing here may depend on the gaps' length
    hops = 0
    real_to_thread = handlers._bridge.to_thread

    async def counting_to_thread(*args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return await real_to_thread(*args, **kwargs)

    monkeypatch.setattr(handlers._bridge, "to_thread", counting_to_thread)
    seen: list[str] = []
    registration = HandlerRegistration(on_add=lambda obj: seen.append(obj["metadata"]["name"]))

    def produce() -> None:
        for i in range(20):
            registration.push_many([ObjectAdded(cm(f"c{i:02d}"), False)])
            deadline = threading.Event()
            while len(seen) <= i and not deadline.wait(0.001):  # one at a time: each finds it lingering
                pass
        registration.stop()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(registration.run)
            await anyio.to_thread.run_sync(produce)  # not through the counted bridge
    assert seen == [f"c{i:02d}" for i in range(20)]
    assert hops == 1
    assert registration.stopped


async def test_removing_a_lingering_plain_handler_ends_its_worker_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import informers.handlers as handlers

    monkeypatch.setattr(handlers, "_LINGER", 300.0)  # a missed wake-up would hang until fail_after
    seen: list[str] = []
    registration = HandlerRegistration(on_add=lambda obj: seen.append(obj["metadata"]["name"]))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(registration.run)
            registration.push_many([ObjectAdded(cm("first"), False)])
            await wait_until_async(lambda: seen == ["first"])
            await _bridge.to_thread(lambda: registration.stop(discard_pending=True))
    assert registration.stopped and seen == ["first"]
