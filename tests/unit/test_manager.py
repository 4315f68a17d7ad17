"""The front door over ``FakeCluster``, on both anyio backends: ``@mgr.reconcile`` with a Context
per call (own + apply, children, status written once and only on change, Events, the finalizer
round), the blocking form in a worker thread, ``@mgr.on`` handlers, ``ctx.own`` refusals, and a
reconciler that raises still writing the conditions it set. Milliseconds, no server."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from controllers import BlockingContext, Context, Manager, Result, TerminalError
from controllers.conditions import get_condition
from controllers.context import OwnershipError
from informers.events import Notification, ObjectAdded
from informers.resources import Resource
from informers.testing.fake import FakeCluster

from .conftest import FAST, wait_until_async

pytestmark = pytest.mark.anyio

WIDGETS = Resource("example.com", "v1", "widgets", "Widget", True)
FINALIZER = "example.com/cleanup"


def cluster_with_widgets() -> FakeCluster:
    cluster = FakeCluster()
    cluster.register(WIDGETS, status_subresource=True)
    return cluster


def widget(name: str, size: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"size": size},
    }


def status_writes(cluster: FakeCluster, name: str) -> int:
    return sum(1 for w in cluster.writes if w.path.endswith(f"/widgets/{name}/status") and w.status < 300)


def children(cluster: FakeCluster, owner_uid: str) -> list[dict[str, Any]]:
    return [
        cm
        for cm in cluster.list("v1/configmaps", namespace="ns")
        if any(r.get("uid") == owner_uid and r.get("controller") for r in cm["metadata"].get("ownerReferences", []))
    ]


async def serving(mgr: Manager, body: Any) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(mgr.serve)
        await wait_until_async(lambda: bool(mgr.controllers) and all(c.has_synced() for c in mgr.controllers))
        await body()
        group.cancel_scope.cancel()


async def test_the_front_door_owns_applies_writes_status_once_records_events_and_finalizes():
    cluster = cluster_with_widgets()
    mgr = Manager(client=cluster, name="example.com/widgets", informer_options=FAST)
    calls: list[str] = []

    @mgr.reconcile(WIDGETS, owns=["v1/ConfigMap"], workers=2)
    async def reconcile(ctx: Context) -> Result | None:
        calls.append(ctx.uid)
        return await ctx.finalize(FINALIZER, apply=apply, cleanup=cleanup)

    async def apply(ctx: Context) -> Result | None:
        assert ctx.obj is not None
        child = ctx.own(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{ctx.name}-config"},
                "data": {"size": str(ctx.obj["spec"]["size"])},
            }
        )
        await ctx.api("v1/configmaps").apply(child)
        ctx.set_condition("Ready", True, "ChildReady", "config map applied")
        ctx.event("Synced", "child applied")
        return None

    async def cleanup(ctx: Context) -> Result | None:
        for cm in ctx.children("v1/ConfigMap"):
            await ctx.api("v1/configmaps").delete(cm["metadata"]["name"])
        return None

    async def body() -> None:
        made = cluster.create(WIDGETS, widget("alpha"))
        uid = made["metadata"]["uid"]

        def converged() -> bool:
            current = cluster.get(WIDGETS, "alpha", namespace="ns")
            ready = get_condition(current, "Ready")
            return (
                ready is not None
                and ready["status"] == "True"
                and len(children(cluster, uid)) == 1
                and FINALIZER in current["metadata"].get("finalizers", [])
            )

        await wait_until_async(converged)
        assert status_writes(cluster, "alpha") == 1
        ready = get_condition(cluster.get(WIDGETS, "alpha", namespace="ns"), "Ready")
        assert ready is not None and ready["observedGeneration"] == 1
        # More reconciles with nothing new (a label edit): no second status write.
        before = len(calls)
        cluster.patch(WIDGETS, "alpha", {"metadata": {"labels": {"x": "y"}}}, namespace="ns")
        await wait_until_async(lambda: len(calls) > before)
        await wait_until_async(lambda: mgr.controllers[0].statistics().queue.processing == 0)
        assert status_writes(cluster, "alpha") == 1
        events = cluster.list("events.k8s.io/v1/events", namespace="ns")
        assert any(e["reason"] == "Synced" and e["regarding"]["uid"] == uid for e in events)
        cluster.delete(WIDGETS, "alpha", namespace="ns")
        await wait_until_async(lambda: not cluster.list(WIDGETS, namespace="ns"))
        assert children(cluster, uid) == []

    await serving(mgr, body)


async def test_the_blocking_form_runs_in_a_worker_thread_with_the_same_context():
    import threading

    cluster = cluster_with_widgets()
    mgr = Manager(client=cluster, informer_options=FAST)
    loop_thread = threading.get_ident()
    threads: list[int] = []

    @mgr.reconcile("example.com/v1/Widget", owns=["v1/ConfigMap"])
    def reconcile(ctx: BlockingContext) -> Result | None:
        threads.append(threading.get_ident())
        if ctx.obj is None:
            return None
        ctx.api("v1/configmaps").apply(
            ctx.own({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{ctx.name}-config"}})
        )
        ctx.set_condition("Ready", True, "ChildReady")
        return None

    async def body() -> None:
        uid = cluster.create(WIDGETS, widget("beta"))["metadata"]["uid"]
        await wait_until_async(lambda: get_condition(cluster.get(WIDGETS, "beta", namespace="ns"), "Ready") is not None)
        assert len(children(cluster, uid)) == 1

    await serving(mgr, body)
    assert threads and loop_thread not in threads


async def test_a_failing_reconcile_still_writes_the_conditions_it_set_and_terminal_errors_stop_retries():
    cluster = cluster_with_widgets()
    mgr = Manager(client=cluster, informer_options=FAST)
    attempts: list[int] = []

    @mgr.reconcile(WIDGETS)
    async def reconcile(ctx: Context) -> None:
        attempts.append(ctx.attempt)
        ctx.set_condition("Ready", False, "InvalidSpec", "size must be positive")
        raise TerminalError("size must be positive")

    async def body() -> None:
        cluster.create(WIDGETS, widget("gamma", size=-1))
        await wait_until_async(
            lambda: get_condition(cluster.get(WIDGETS, "gamma", namespace="ns"), "Ready") is not None
        )
        await wait_until_async(lambda: mgr.controllers[0].statistics().workers.terminal_errors_total >= 1)
        ready = get_condition(cluster.get(WIDGETS, "gamma", namespace="ns"), "Ready")
        assert ready is not None and (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
        await anyio.sleep(0.2)  # room for retries, if any were (wrongly) scheduled

    await serving(mgr, body)
    # Terminal: the key is forgotten, never retried with backoff (every call is a first attempt).
    # The status write's own notification may reconcile it once more, with nothing to write.
    assert attempts and set(attempts) == {0} and len(attempts) <= 2


async def test_own_refuses_a_child_controlled_by_another_object():
    cluster = cluster_with_widgets()
    mgr = Manager(client=cluster, informer_options=FAST, events=False)
    refusals: list[str] = []

    @mgr.reconcile(WIDGETS)
    async def reconcile(ctx: Context) -> None:
        if ctx.obj is None:
            return
        taken = {
            "metadata": {
                "name": "x",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Other", "name": "o", "uid": "someone-else", "controller": True}
                ],
            }
        }
        try:
            ctx.own(taken)
        except OwnershipError as exc:
            refusals.append(str(exc))
        with pytest.raises(OwnershipError):
            ctx.own({"metadata": {"name": "y", "namespace": "elsewhere"}})

    async def body() -> None:
        cluster.create(WIDGETS, widget("delta"))
        await wait_until_async(lambda: bool(refusals))

    await serving(mgr, body)
    assert "already controlled by Other 'o'" in refusals[0]


async def test_handlers_registered_with_on_receive_notifications():
    cluster = cluster_with_widgets()
    mgr = Manager(client=cluster, informer_options=FAST)
    seen: list[str] = []

    @mgr.on("v1/ConfigMap")
    async def note(notification: Notification) -> None:
        if isinstance(notification, ObjectAdded):
            seen.append(notification.obj["metadata"]["name"])

    async with anyio.create_task_group() as group:
        group.start_soon(mgr.serve)
        cluster.create("v1/configmaps", {"metadata": {"name": "hello", "namespace": "ns"}})
        await wait_until_async(lambda: seen == ["hello"])
        group.cancel_scope.cancel()


async def _get(port: int, path: str) -> tuple[int, str]:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        await stream.send(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        try:
            while chunk := await stream.receive():
                data += chunk
        except anyio.EndOfStream:
            pass
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_metrics_and_probes_are_served_from_the_running_manager():
    cluster = cluster_with_widgets()
    mgr = Manager(
        client=cluster,
        informer_options=FAST,
        metrics_bind_address="127.0.0.1:0",
        health_probe_bind_address="127.0.0.1:0",
    )

    @mgr.reconcile(WIDGETS, workers=2)
    async def reconcile(ctx: Context) -> None:
        return None

    async def body() -> None:
        cluster.create(WIDGETS, widget("m1"))
        await wait_until_async(lambda: mgr.controllers[0].statistics().workers.success_total >= 1)
        status, text = await _get(mgr.servers["metrics"], "/metrics")
        assert status == 200
        assert 'controller_runtime_reconcile_total{controller="widget",result="success"} 1.0' in text
        assert 'controller_runtime_max_concurrent_reconciles{controller="widget"} 2.0' in text
        assert "controller_runtime_reconcile_time_seconds_bucket" in text
        assert 'workqueue_adds_total{controller="widget",name="widget"}' in text
        assert (await _get(mgr.servers["probes"], "/readyz"))[0] == 200
        status, verbose = await _get(mgr.servers["probes"], "/healthz?verbose")
        assert status == 200 and "[+]watches ok" in verbose and "[+]workers ok" in verbose
        assert (await _get(mgr.servers["probes"], "/nope"))[0] == 404

    await serving(mgr, body)


async def test_with_leader_election_only_the_leader_reconciles_and_a_clean_stop_hands_over():
    from controllers.leader import ElectionOptions

    cluster = cluster_with_widgets()
    options = ElectionOptions(lease_duration=3, renew_deadline=2, retry_period=0.2)
    seen: dict[str, list[str]] = {"a": [], "b": []}

    def manager(name: str) -> Manager:
        mgr = Manager(
            client=cluster,
            informer_options=FAST,
            leader_election=True,
            leader_election_id="widgets",
            leader_election_namespace="ns",
            election_options=options,
            events=False,
        )

        @mgr.reconcile(WIDGETS)
        async def reconcile(ctx: Context) -> None:
            seen[name].append(ctx.name)

        return mgr

    first, second = manager("a"), manager("b")
    async with anyio.create_task_group() as group:
        stop_first = anyio.CancelScope()

        async def run_first() -> None:
            with stop_first:
                await first.serve()

        group.start_soon(run_first)
        await wait_until_async(lambda: first.elector is not None and first.elector.is_leader())
        group.start_soon(second.serve)
        await wait_until_async(lambda: second.elector is not None)
        cluster.create(WIDGETS, widget("one"))
        await wait_until_async(lambda: seen["a"] == ["one"])
        assert not second.elector.is_leader() and seen["b"] == []  # a warm standby
        stop_first.cancel()  # a clean stop releases the Lease: the standby takes over at once
        await wait_until_async(lambda: second.elector.is_leader(), timeout=2.5)
        cluster.create(WIDGETS, widget("two"))
        await wait_until_async(lambda: "two" in seen["b"])
        group.cancel_scope.cancel()
    assert "two" not in seen["a"]


async def test_a_plugins_errors_and_timeouts_are_counted_under_its_name_and_bound_to_its_logs():
    import structlog

    cluster = cluster_with_widgets()
    mgr = Manager(client=cluster, informer_options=FAST, metrics_bind_address="127.0.0.1:0")
    plugins_seen: list[object] = []

    @mgr.reconcile(WIDGETS, name="raising", plugin="raiser", label_selector="kind=raise")
    async def raising(ctx: Context) -> None:
        plugins_seen.append(structlog.contextvars.get_contextvars().get("plugin"))
        raise RuntimeError("plugin bug")

    @mgr.reconcile(WIDGETS, name="hanging", plugin="hanger", label_selector="kind=hang", timeout=0.05)
    async def hanging(ctx: Context) -> None:
        await anyio.sleep_forever()

    @mgr.reconcile(WIDGETS, name="plain", label_selector="kind=fine")
    async def plain(ctx: Context) -> None:
        plugins_seen.append(structlog.contextvars.get_contextvars().get("plugin"))

    @mgr.on("v1/ConfigMap", plugin="bad-handler")
    def handler(note: Notification) -> None:
        raise ValueError("handler bug")

    def labelled(name: str, kind: str) -> dict[str, Any]:
        obj = widget(name)
        obj["metadata"]["labels"] = {"kind": kind}
        return obj

    async def body() -> None:
        cluster.create(WIDGETS, labelled("r", "raise"))
        cluster.create(WIDGETS, labelled("h", "hang"))
        cluster.create(WIDGETS, labelled("f", "fine"))
        cluster.create("v1/configmaps", {"metadata": {"name": "c", "namespace": "ns"}})
        assert mgr.exporter is not None

        def errors() -> dict[tuple[str, str], int]:
            assert mgr.exporter is not None
            return dict(mgr.exporter._plugin_errors)

        await wait_until_async(
            lambda: (
                errors().get(("raiser", "reconcile"), 0) >= 2
                and errors().get(("hanger", "reconcile"), 0) >= 2
                and errors().get(("bad-handler", "handler"), 0) >= 1
                and None in plugins_seen
            )
        )
        by_name = {c.name: c.statistics().workers for c in mgr.controllers}
        assert by_name["hanging"].timeouts_total >= 2
        assert by_name["plain"].error_total == 0
        assert {k for k in errors() if k[0] not in ("raiser", "hanger", "bad-handler")} == set()
        status, text = await _get(mgr.servers["metrics"], "/metrics")
        assert status == 200 and 'informerd_plugin_errors_total{kind="handler",plugin="bad-handler"} 1.0' in text
        assert "informerd_handler_errors_total{" in text and 'handler="bad-handler"' in text

    await serving(mgr, body)
    assert set(plugins_seen) == {"raiser", None}  # bound for the plugin's controller only


async def test_a_manager_with_handlers_only_serves_until_cancelled():
    cluster = cluster_with_widgets()
    mgr = Manager(client=cluster, informer_options=FAST)
    seen: list[str] = []

    @mgr.on("v1/ConfigMap")
    def note(notification: Notification) -> None:
        seen.append(type(notification).__name__)

    finished = anyio.Event()

    async def serve() -> None:
        await mgr.serve()
        finished.set()

    async with anyio.create_task_group() as group:
        group.start_soon(serve)
        await wait_until_async(lambda: mgr.factory is not None and all(i.has_synced() for i in mgr.factory.informers))
        await anyio.sleep(0.2)
        assert not finished.is_set()  # before the fix it returned as soon as it had started
        cluster.create("v1/configmaps", {"metadata": {"name": "late", "namespace": "ns"}})
        await wait_until_async(lambda: seen == ["ObjectAdded"])
        group.cancel_scope.cancel()


async def test_losing_the_lease_raises_leader_election_lost_error_itself_not_a_group():
    from controllers.leader import ElectionOptions, LeaderElectionLostError

    cluster = cluster_with_widgets()
    mgr = Manager(
        client=cluster,
        informer_options=FAST,
        leader_election=True,
        leader_election_id="widgets",
        leader_election_namespace="ns",
        election_options=ElectionOptions(lease_duration=3, renew_deadline=2, retry_period=0.2),
        events=False,
        metrics_bind_address="127.0.0.1:0",  # a server task group around the election, as in the daemon
    )

    @mgr.reconcile(WIDGETS)
    async def reconcile(ctx: Context) -> None:
        return None

    raised: list[BaseException] = []

    async def serve() -> None:
        try:
            await mgr.serve()
        except BaseException as exc:
            raised.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(serve)
        await wait_until_async(lambda: mgr.elector is not None and mgr.elector.is_leader())
        lease = cluster.get("coordination.k8s.io/v1/leases", "widgets", namespace="ns")
        lease["spec"]["holderIdentity"] = "thief"
        lease["spec"]["leaseDurationSeconds"] = 3600
        cluster.update("coordination.k8s.io/v1/leases", lease)
        await wait_until_async(lambda: bool(raised), timeout=10)
    assert len(raised) == 1 and type(raised[0]) is LeaderElectionLostError, repr(raised)
