"""The front door against a real apiserver: a Manager with a decorated reconciler that owns a
ConfigMap per Widget through ``ctx.own`` + server-side apply, writes its Ready condition back only
on change, records Events, and cleans its child up through the finalizer round before the Widget
goes; in the async and the blocking (thread) form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import orjson
import pytest

from controllers import BlockingContext, Context, Manager, Result
from controllers.conditions import get_condition
from informers.resources import Resource
from informers.testing import ControlPlane

from .support import api_client
from .widgets import children_of, create_widget, get, patch_spec, wait_until, widget_crd

pytestmark = pytest.mark.integration

FINALIZER = "example.com/cleanup"


@pytest.fixture(scope="module")
def widgets(control_plane: ControlPlane) -> Iterator[Resource]:
    with widget_crd(control_plane) as resource:
        yield resource


def child_of(ctx: Context | BlockingContext) -> dict[str, Any]:
    assert ctx.obj is not None
    return ctx.own(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{ctx.name}-config"},
            "data": {"size": str(ctx.obj["spec"]["size"])},
        }
    )


def mark_ready(ctx: Context | BlockingContext) -> None:
    assert ctx.obj is not None
    ctx.set_condition("Ready", True, "ChildReady", f"ConfigMap {ctx.name}-config is up to date")
    ctx.obj.setdefault("status", {})["observedGeneration"] = ctx.obj["metadata"]["generation"]


def converged(plane: ControlPlane, widgets: Resource, namespace: str, name: str) -> bool:
    widget = get(plane, widgets.path(namespace, name))
    if widget is None:
        return False
    gen = widget["metadata"]["generation"]
    ready = get_condition(widget, "Ready")
    children = children_of(plane, namespace, widget["metadata"]["uid"])
    return (
        widget.get("status", {}).get("observedGeneration") == gen
        and ready is not None
        and ready["status"] == "True"
        and ready.get("observedGeneration") == gen
        and FINALIZER in widget["metadata"].get("finalizers", [])
        and len(children) == 1
        and children[0]["data"] == {"size": str(widget["spec"]["size"])}
    )


def status_writes(mgr: Manager) -> int:
    assert mgr.writer is not None
    return mgr.writer.statistics().calls.get("patch_status", 0)


async def exercise(plane: ControlPlane, widgets: Resource, namespace: str, mgr: Manager) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(mgr.serve)
        create_widget(plane, widgets, namespace, "alpha", size=1)
        await wait_until(lambda: converged(plane, widgets, namespace, "alpha"), 30, "alpha converged")
        writes = status_writes(mgr)
        assert writes >= 1
        patch_spec(plane, widgets, namespace, "alpha", 3)
        await wait_until(lambda: converged(plane, widgets, namespace, "alpha"), 30, "alpha at size 3")
        assert status_writes(mgr) > writes  # observedGeneration moved: one more write
        # A reconcile with nothing new to say writes no status: touch a label (a reconcile follows,
        # the status it computes is unchanged) and the object's version stays the label's.
        reconciles = mgr.controllers[0].statistics().workers.success_total
        status, body = plane.request(
            "PATCH",
            widgets.path(namespace, "alpha"),
            {"metadata": {"labels": {"touched": "yes"}}},
            content_type="application/merge-patch+json",
        )
        assert status == 200
        touched_rv = orjson.loads(body)["metadata"]["resourceVersion"]
        await wait_until(
            lambda: mgr.controllers[0].statistics().workers.success_total > reconciles,
            30,
            "a reconcile after the label change",
        )
        await anyio.sleep(0.5)
        assert get(plane, widgets.path(namespace, "alpha"))["metadata"]["resourceVersion"] == touched_rv  # type: ignore[index]
        events = plane.request_json("GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")["items"]
        assert any(e["reason"] == "Synced" and e["regarding"]["name"] == "alpha" for e in events)
        uid = get(plane, widgets.path(namespace, "alpha"))["metadata"]["uid"]  # type: ignore[index]
        plane.request("DELETE", widgets.path(namespace, "alpha"))
        # The finalizer holds the Widget until the cleanup deleted its child, then lets it go.
        await wait_until(lambda: get(plane, widgets.path(namespace, "alpha")) is None, 30, "alpha gone")
        assert children_of(plane, namespace, uid) == []
        group.cancel_scope.cancel()


def test_async_front_door_owns_applies_writes_status_once_and_finalizes(
    control_plane: ControlPlane, namespace: str, widgets: Resource
):
    async def main() -> None:
        with api_client(control_plane.admin_kubeconfig) as client:
            mgr = Manager(client=client, namespace=namespace, name="example.com/widgets")

            @mgr.reconcile(widgets, owns=["v1/ConfigMap"], workers=2, timeout=30)
            async def widget(ctx: Context) -> Result | None:
                return await ctx.finalize(FINALIZER, apply=apply, cleanup=cleanup)

            async def apply(ctx: Context) -> Result | None:
                await ctx.api("v1/configmaps").apply(child_of(ctx))
                mark_ready(ctx)
                ctx.event("Synced", "child applied")
                return None

            async def cleanup(ctx: Context) -> Result | None:
                for child in ctx.children("v1/ConfigMap"):
                    await ctx.api("v1/configmaps").delete(child["metadata"]["name"], uid=child["metadata"]["uid"])
                return None

            await exercise(control_plane, widgets, namespace, mgr)

    anyio.run(main)


def test_blocking_front_door_does_the_same_from_a_worker_thread(
    control_plane: ControlPlane, namespace: str, widgets: Resource
):
    async def main() -> None:
        with api_client(control_plane.admin_kubeconfig) as client:
            mgr = Manager(client=client, namespace=namespace, name="example.com/widgets-sync")

            @mgr.reconcile(widgets, owns=["v1/ConfigMap"], workers=2)
            def widget(ctx: BlockingContext) -> Result | None:
                return ctx.finalize(FINALIZER, apply=apply, cleanup=cleanup)

            def apply(ctx: BlockingContext) -> Result | None:
                ctx.api("v1/configmaps").apply(child_of(ctx))
                mark_ready(ctx)
                ctx.event("Synced", "child applied")
                return None

            def cleanup(ctx: BlockingContext) -> Result | None:
                for child in ctx.children("ConfigMap"):
                    ctx.api("v1/configmaps").delete(child["metadata"]["name"], uid=child["metadata"]["uid"])
                return None

            await exercise(control_plane, widgets, namespace, mgr)

    anyio.run(main)
