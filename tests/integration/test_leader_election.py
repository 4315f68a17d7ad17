"""Leader election and sharding against a real kube-apiserver.

Two electors in one process campaign for one Lease (short timings: lease 3 s, renew deadline
2 s, retry 0.5 s): exactly one leads; a clean exit releases the Lease and the standby leads at
once (well under the lease duration); a leader that stops renewing without releasing (a crash) is
replaced once the Lease has expired by the standby's own observation; a leader cut off from the
apiserver loses (its body cancelled) before the standby can take over. Leaderships never overlap.
Sharding: three controllers with ``ShardFilter``s split 300 real ConfigMaps, each UID reconciled
by exactly one shard. The only timed assertions are generous upper bounds that state the
semantics (handover < lease duration, and so on); the figures observed are printed.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import anyio
import pytest

from controllers.controller import Controller
from controllers.leader import (
    JITTER_FACTOR,
    ElectionOptions,
    LeaderElectionLostError,
    LeaderElector,
    LeaseRecord,
)
from controllers.recorder import EventRecorder
from controllers.request import Request
from controllers.sharding import Shard, ShardFilter
from controllers.writer import ApiWriter, WriterOptions
from informers.client import ApiClient
from informers.factory import InformerFactory
from informers.resources import Resource
from informers.testing import ControlPlane, FaultProxy

from .support import api_client

pytestmark = pytest.mark.integration

OPTIONS = ElectionOptions(lease_duration=3, renew_deadline=2, retry_period=0.5)
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)
LEASE = "informerd-test-leader"


class Timeline:
    """When each identity's leadership body started and ended (monotonic seconds)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[tuple[str, str, float]] = []

    def add(self, who: str, what: str) -> float:
        now = time.monotonic()
        with self.lock:
            self.entries.append((who, what, now))
        return now

    def first(self, who: str, what: str) -> float | None:
        with self.lock:
            return next((t for w, x, t in self.entries if (w, x) == (who, what)), None)

    def leaders(self) -> set[str]:
        with self.lock:
            return {w for w, x, _ in self.entries if x == "lead"}

    def assert_no_overlap(self) -> None:
        with self.lock:
            intervals: dict[str, list[float]] = {}
            for who, what, t in self.entries:
                if what in ("lead", "end"):
                    intervals.setdefault(who, []).append(t)
        spans = sorted((ts[0], ts[1] if len(ts) > 1 else float("inf"), who) for who, ts in intervals.items())
        for (_, end, who), (start, _, other) in itertools.pairwise(spans):
            assert end <= start, f"{who} and {other} led at the same time"


async def campaign(
    elector: LeaderElector, timeline: Timeline, stop: anyio.Event, outcome: dict[str, BaseException | None]
) -> None:
    try:
        async with elector.leadership():
            timeline.add(elector.identity, "lead")
            try:
                await stop.wait()
            finally:
                timeline.add(elector.identity, "end")
        outcome[elector.identity] = None
    except LeaderElectionLostError as exc:
        outcome[elector.identity] = exc


async def wait_for(condition: Any, timeout: float, what: str) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


@pytest.fixture
def writers(control_plane: ControlPlane) -> Iterator[list[ApiWriter]]:
    """Two writers with their own clients (as two replicas would have)."""
    with ExitStack() as stack:
        out = []
        for _ in range(2):
            client = stack.enter_context(api_client(control_plane.admin_kubeconfig, qps=-1))
            writer = ApiWriter(client, WriterOptions(field_manager="leader-tests"))
            stack.callback(writer.close)
            out.append(writer)
        yield out


def lease_record(plane: ControlPlane, namespace: str) -> LeaseRecord:
    lease = plane.request_json("GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE}")
    return LeaseRecord.from_lease(lease)


def test_exactly_one_leads_and_a_clean_exit_hands_over_at_once(
    control_plane: ControlPlane, namespace: str, writers: list[ApiWriter]
) -> None:
    recorder = EventRecorder(writers[0], "informerd.test/leader-election")
    electors = [
        LeaderElector(w, LEASE, namespace, identity=f"replica-{n}_{uuid.uuid4()}", options=OPTIONS, recorder=recorder)
        for n, w in enumerate(writers)
    ]
    timeline = Timeline()
    outcome: dict[str, BaseException | None] = {}
    seen: dict[str, Any] = {}

    async def main() -> None:
        stops = {e.identity: anyio.Event() for e in electors}
        async with anyio.create_task_group() as group:
            for elector in electors:
                group.start_soon(campaign, elector, timeline, stops[elector.identity], outcome)
            await wait_for(lambda: timeline.leaders(), 10, "a leader")
            # Longer than the lease duration: a standby misjudging expiry would take over now.
            await anyio.sleep(OPTIONS.lease_duration + 1)
            assert len(timeline.leaders()) == 1
            (leader,) = timeline.leaders()
            standby = next(e for e in electors if e.identity != leader)
            assert standby.statistics().holder == leader and not standby.is_leader()
            record = lease_record(control_plane, namespace)
            assert (record.holder_identity, record.lease_duration_seconds) == (leader, 3)
            seen["leader"], seen["standby"] = leader, standby.identity

            stopped = time.monotonic()
            stops[leader].set()  # a clean exit: the body ends, then the Lease is released
            await wait_for(lambda: timeline.first(standby.identity, "lead"), 10, "the standby to lead")
            seen["handover"] = (timeline.first(standby.identity, "lead") or 0) - stopped
            stops[standby.identity].set()

    anyio.run(main)
    recorder.flush(10)
    recorder.close()
    print(f"\nclean handover after release: {seen['handover']:.3f} s")
    assert seen["handover"] < OPTIONS.lease_duration  # released: no waiting for expiry
    assert outcome == {seen["leader"]: None, seen["standby"]: None}
    timeline.assert_no_overlap()
    record = lease_record(control_plane, namespace)
    assert (record.holder_identity, record.leader_transitions) == ("", 1)  # released again at the end
    events = control_plane.request_json("GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")["items"]
    notes = {e["note"] for e in events if e["regarding"]["kind"] == "Lease" and e["reason"] == "LeaderElection"}
    assert notes == {
        f"{seen['leader']} became leader",
        f"{seen['leader']} stopped leading",
        f"{seen['standby']} became leader",
        f"{seen['standby']} stopped leading",
    }


def test_a_crashed_leader_is_replaced_once_the_lease_expires(
    control_plane: ControlPlane, namespace: str, writers: list[ApiWriter]
) -> None:
    crashing = LeaderElector(
        writers[0], LEASE, namespace, identity="crashing", options=ElectionOptions(3, 2, 0.5, release_on_cancel=False)
    )
    standby = LeaderElector(writers[1], LEASE, namespace, identity="standby", options=OPTIONS)
    timeline = Timeline()
    outcome: dict[str, BaseException | None] = {}
    seen: dict[str, float] = {}

    async def main() -> None:
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            crash = anyio.CancelScope()

            async def run_crashing() -> None:
                with crash:
                    await campaign(crashing, timeline, anyio.Event(), outcome)

            group.start_soon(run_crashing)
            await wait_for(lambda: timeline.leaders() == {"crashing"}, 10, "the first leader")
            group.start_soon(campaign, standby, timeline, stop, outcome)
            await anyio.sleep(1.5)  # the standby is campaigning and respects the valid Lease
            assert not standby.is_leader() and standby.statistics().holder == "crashing"
            seen["crash"] = time.monotonic()
            crash.cancel()  # stops renewing and never releases
            await wait_for(lambda: timeline.first("standby", "lead"), 15, "the standby to take over")
            stop.set()

    anyio.run(main)
    takeover = (timeline.first("standby", "lead") or 0) - seen["crash"]
    print(f"\ntakeover after a crash (no release): {takeover:.3f} s")
    # Expired by the standby's own observation: lease duration after the last renewal it saw, at
    # its next jittered retry.
    assert takeover < OPTIONS.lease_duration + 2 * OPTIONS.retry_period * (1 + JITTER_FACTOR)
    timeline.assert_no_overlap()
    assert lease_record(control_plane, namespace).leader_transitions == 1


def test_a_leader_cut_off_from_the_apiserver_loses_before_the_standby_takes_over(
    control_plane: ControlPlane, namespace: str, fault_proxy: FaultProxy, writers: list[ApiWriter]
) -> None:
    with api_client(control_plane.kubeconfig(server=fault_proxy.url), qps=-1) as proxied:
        cut_off = LeaderElector(ApiWriter(proxied), LEASE, namespace, identity="cut-off", options=OPTIONS)
        standby = LeaderElector(writers[1], LEASE, namespace, identity="standby", options=OPTIONS)
        timeline = Timeline()
        outcome: dict[str, BaseException | None] = {}
        seen: dict[str, float] = {}

        async def main() -> None:
            stop = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(campaign, cut_off, timeline, anyio.Event(), outcome)
                await wait_for(lambda: timeline.leaders() == {"cut-off"}, 10, "the first leader")
                group.start_soon(campaign, standby, timeline, stop, outcome)
                await anyio.sleep(1.0)
                seen["stall"] = time.monotonic()
                fault_proxy.stall()  # requests hang: a half-open network to the apiserver
                fault_proxy.cut()
                await wait_for(lambda: timeline.first("standby", "lead"), 15, "the standby to take over")
                stop.set()

        anyio.run(main)
        fault_proxy.pass_through()
    lost = (timeline.first("cut-off", "end") or 0) - seen["stall"]
    takeover = (timeline.first("standby", "lead") or 0) - seen["stall"]
    print(f"\ncut-off leader lost after {lost:.3f} s; standby leads after {takeover:.3f} s")
    assert isinstance(outcome["cut-off"], LeaderElectionLostError) and outcome["standby"] is None
    assert lost < OPTIONS.retry_period + OPTIONS.renew_deadline + 1.0  # at the renew deadline
    assert takeover < OPTIONS.lease_duration + 2 * OPTIONS.retry_period * (1 + JITTER_FACTOR)
    timeline.assert_no_overlap()  # the cut-off leader stopped before the standby started


def test_three_shards_reconcile_300_configmaps_each_exactly_once(control_plane: ControlPlane, namespace: str) -> None:
    seen: list[set[str]] = [set(), set(), set()]
    lock = threading.Lock()

    def reconciler(shard: int) -> Any:
        def reconcile(request: Request, obj: Any, ctx: Any) -> None:
            with lock:
                seen[shard].add(request.uid)

        return reconcile

    created: set[str] = set()
    with api_client(control_plane.admin_kubeconfig, qps=-1) as client:
        writer = ApiWriter(client)
        for i in range(300):
            cm = writer.create(
                CONFIGMAPS, {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}}, namespace=namespace
            )
            created.add(cm["metadata"]["uid"])
        writer.close()
        filters = [ShardFilter(Shard(n, 3)) for n in range(3)]

        async def main() -> None:
            async with InformerFactory(client, namespace=namespace) as factory:
                controllers = [
                    Controller(
                        factory,
                        CONFIGMAPS,
                        reconciler(n),
                        name=f"cm-shard-{n}",
                        key_filter=filters[n],
                        max_concurrent_reconciles=4,
                    )
                    for n in range(3)
                ]
                async with anyio.create_task_group() as group:
                    for controller in controllers:
                        group.start_soon(controller.run)
                    await wait_for(lambda: sum(len(s) for s in seen) >= len(created), 60, "300 reconciles")
                    await anyio.sleep(0.5)  # nothing more arrives
                    group.cancel_scope.cancel()

        anyio.run(main)
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])  # no overlap
    assert seen[0] | seen[1] | seen[2] == created  # no gap
    for n in range(3):
        assert seen[n] == {u for u in created if Shard(n, 3).keeps(u)}
        assert filters[n].statistics().kept == len(seen[n])
    print(f"\nshard sizes of 300: {[len(s) for s in seen]}")


def test_controllers_reconcile_only_while_leading_with_caches_warmed_before(
    control_plane: ControlPlane, namespace: str, fault_proxy: FaultProxy
) -> None:
    """The Manager's wiring: informers synced before the campaign, controllers inside
    ``leadership()``. The leader's elector is cut off from the apiserver (its informers are not):
    its controller stops at the loss, and a ConfigMap created after it is reconciled only by the
    new leader."""
    calls: list[tuple[str, str, float]] = []  # (replica, configmap, when)
    lock = threading.Lock()

    def reconciler(replica: str) -> Any:
        def reconcile(request: Request, obj: Any, ctx: Any) -> None:
            with lock:
                calls.append((replica, request.name, time.monotonic()))

        return reconcile

    timeline = Timeline()
    outcome: dict[str, BaseException | None] = {}

    async def replica(name: str, client: ApiClient, election_client: ApiClient, stop: anyio.Event) -> None:
        async with InformerFactory(client, namespace=namespace) as factory:
            await factory.informer(CONFIGMAPS)  # warm the caches before campaigning
            await factory.wait_synced(30)
            elector = LeaderElector(
                ApiWriter(election_client),
                LEASE,
                namespace,
                identity=name,
                options=OPTIONS,
                on_lost=lambda: timeline.add(name, "lost"),
            )
            controller = Controller(factory, CONFIGMAPS, reconciler(name), name=f"cm-{name}")
            try:
                async with elector.leadership():
                    timeline.add(name, "lead")
                    try:
                        async with anyio.create_task_group() as group:
                            group.start_soon(controller.run)
                            await stop.wait()
                            group.cancel_scope.cancel()
                    finally:
                        timeline.add(name, "end")
                outcome[name] = None
            except LeaderElectionLostError as exc:
                outcome[name] = exc

    with ExitStack() as stack:
        direct = [stack.enter_context(api_client(control_plane.admin_kubeconfig, qps=-1)) for _ in range(2)]
        proxied = stack.enter_context(api_client(control_plane.kubeconfig(server=fault_proxy.url), qps=-1))
        writer = ApiWriter(direct[0])
        stack.callback(writer.close)

        async def main() -> None:
            stop = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(replica, "first", direct[0], proxied, anyio.Event())
                await wait_for(lambda: timeline.leaders() == {"first"}, 15, "the first leader")
                group.start_soon(replica, "second", direct[1], direct[1], stop)
                await anyio.to_thread.run_sync(
                    lambda: writer.create(CONFIGMAPS, {"metadata": {"name": "before"}}, namespace=namespace)
                )
                await wait_for(lambda: any(c[1] == "before" for c in calls), 10, "the first reconcile")
                fault_proxy.stall()
                fault_proxy.cut()
                await wait_for(lambda: timeline.first("first", "end"), 10, "the loss")
                await anyio.to_thread.run_sync(
                    lambda: writer.create(CONFIGMAPS, {"metadata": {"name": "after"}}, namespace=namespace)
                )
                await wait_for(lambda: any(c[1] == "after" for c in calls), 15, "the new leader's reconcile")
                await anyio.sleep(0.5)
                stop.set()

        anyio.run(main)
        fault_proxy.pass_through()
    lost_at = timeline.first("first", "lost") or 0
    assert isinstance(outcome["first"], LeaderElectionLostError) and outcome["second"] is None
    assert all(when < lost_at for who, _, when in calls if who == "first")  # nothing started after the loss
    assert {name for who, name, _ in calls if who == "first"} == {"before"}
    assert {name for who, name, _ in calls if who == "second"} >= {"after"}
    timeline.assert_no_overlap()
