"""Every log line written during a reconcile carries the call's identity.

The daemon's JSON logging (``configure_logging``) is captured while a ``Manager`` over a
``FakeCluster`` reconciles with an ``async def`` reconciler and a plain ``def`` one (run in a
worker thread). Lines the reconcilers write through ``ctx.log``, through ``structlog.get_logger()``
and through the standard library's ``logging`` must carry ``controller``, ``resource``,
``namespace``, ``name``, ``uid`` and a ``reconcile_id`` (one per call), as must the worker's own
line about a failed call; lines logged after the reconciles (on the loop and in a worker thread)
must carry none of them."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import orjson
import pytest
import structlog

from controllers import BlockingContext, Context, Manager
from controllers.logsetup import configure_logging
from informers import _bridge
from informers.resources import Resource
from informers.testing.fake import FakeCluster

from .conftest import FAST, wait_until_async

pytestmark = pytest.mark.anyio

WIDGETS = Resource("example.com", "v1", "widgets", "Widget", True)
GADGETS = Resource("example.com", "v1", "gadgets", "Gadget", True)
BOUND = ("controller", "resource", "namespace", "name", "uid", "reconcile_id")


@pytest.fixture
def json_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The daemon's logging configuration, writing to a buffer; undone afterwards."""
    buffer = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging("debug", "json")
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def obj(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": kind, "metadata": {"name": name, "namespace": "ns"}}


async def test_lines_inside_async_and_sync_reconciles_carry_the_call_and_nothing_leaks(json_log: io.StringIO):
    cluster = FakeCluster()
    cluster.register(WIDGETS)
    cluster.register(GADGETS)
    widget = cluster.create(WIDGETS, obj("Widget", "w1"), namespace="ns")
    gadget = cluster.create(GADGETS, obj("Gadget", "g1"), namespace="ns")
    mgr = Manager(client=cluster, name="logging-test", informer_options=FAST)
    attempts = {"widgets": 0, "gadgets": 0}

    @mgr.reconcile(WIDGETS, name="widgets")
    async def reconcile_widget(ctx: Context) -> None:
        attempts["widgets"] += 1
        ctx.log.info("async via ctx.log")
        structlog.get_logger("user.code").info("async via structlog")
        logging.getLogger("user.stdlib").info("async via stdlib")
        if attempts["widgets"] == 1:
            raise ValueError("first async attempt fails")

    @mgr.reconcile(GADGETS, name="gadgets")
    def reconcile_gadget(ctx: BlockingContext) -> None:
        attempts["gadgets"] += 1
        ctx.log.info("sync via ctx.log")
        structlog.get_logger("user.code").info("sync via structlog")
        logging.getLogger("user.stdlib").info("sync via stdlib")
        if attempts["gadgets"] == 1:
            raise ValueError("first sync attempt fails")

    async with anyio.create_task_group() as group:
        group.start_soon(mgr.serve)
        await wait_until_async(lambda: attempts["widgets"] >= 2 and attempts["gadgets"] >= 2)
        group.cancel_scope.cancel()

    structlog.get_logger("user.code").info("after, on the loop")
    logging.getLogger("user.stdlib").info("after, stdlib")
    await _bridge.to_thread(lambda: structlog.get_logger("user.code").info("after, in a thread"))

    records = lines(json_log)
    expected = {
        "async": ("widgets", "example.com/v1/widgets", widget),
        "sync": ("gadgets", "example.com/v1/gadgets", gadget),
    }
    for flavour, (controller, resource, created) in expected.items():
        inside = [r for r in records if r["event"].startswith(f"{flavour} via ")]
        assert {r["event"] for r in inside} == {
            f"{flavour} via ctx.log",
            f"{flavour} via structlog",
            f"{flavour} via stdlib",
        }
        for record in inside:
            assert record["controller"] == controller, record
            assert record["resource"] == resource, record
            assert record["namespace"] == "ns", record
            assert record["name"] == created["metadata"]["name"], record
            assert record["uid"] == created["metadata"]["uid"], record
        # One id per call: both attempts' lines split into two groups of three.
        ids = {r["reconcile_id"] for r in inside}
        assert len(ids) == len(inside) // 3 == attempts[controller] >= 2, inside
        failed = [
            r
            for r in records
            if r["event"] == "reconcile failed; requeued with backoff" and r.get("controller") == controller
        ]
        assert failed and failed[0]["uid"] == created["metadata"]["uid"] and failed[0]["reconcile_id"] in ids

    after = [r for r in records if r["event"].startswith("after, ")]
    assert len(after) == 3
    for record in after:
        assert not set(BOUND) & set(record), record


def test_the_console_format_shows_bound_fields_as_key_value(monkeypatch: pytest.MonkeyPatch):
    buffer = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging("info", "console")
    try:
        from informers._log import bind_context, reset_context

        tokens = bind_context(controller="widgets", uid="u-1")
        structlog.get_logger("user.code").info("inside")
        reset_context(tokens)
        structlog.get_logger("user.code").info("outside")
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
    inside, outside = buffer.getvalue().splitlines()
    assert "inside" in inside and "controller=widgets" in inside and "uid=u-1" in inside
    assert "outside" in outside and "controller=" not in outside and "{" not in inside


async def test_a_traceback_in_the_json_logs_carries_no_local_variables(json_log: io.StringIO):
    """structlog's dict tracebacks show every frame's locals by default: a reconciler holding a
    Secret's data (and the worker's frames holding the object) would leak it into the logs."""
    marker = "sup3r-s3cr3t-value"
    cluster = FakeCluster()
    cluster.create("v1/secrets", {"metadata": {"name": "s", "namespace": "ns"}, "stringData": {"k": marker}})
    mgr = Manager(client=cluster, name="leak-test", informer_options=FAST)
    calls: list[int] = []

    @mgr.reconcile("v1/secrets")
    def reconcile(ctx: BlockingContext) -> None:
        calls.append(1)
        password = ctx.obj["data"]["k"] if ctx.obj else None  # a local holding Secret data
        raise RuntimeError(f"a bug (password is {type(password).__name__})")

    async with anyio.create_task_group() as group:
        group.start_soon(mgr.serve)
        await wait_until_async(lambda: len(calls) >= 2)
        group.cancel_scope.cancel()
    try:
        secret_value = marker
        raise KeyError("boom")
    except KeyError:
        logging.getLogger("user.stdlib").exception("stdlib failure")
        structlog.get_logger("user.code").exception("structlog failure")
    assert secret_value
    records = lines(json_log)
    failed = [r for r in records if r["event"] == "reconcile failed; requeued with backoff"]
    assert failed and failed[0]["exception"][0]["frames"], failed
    assert any(r["event"] == "stdlib failure" and "KeyError" in str(r["exception"]) for r in records)
    text = json_log.getvalue()
    import base64

    assert marker not in text and base64.b64encode(marker.encode()).decode() not in text
    assert '"locals"' not in text
