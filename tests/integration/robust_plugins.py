"""Test-only plugins for the daemon's robustness tests.

``plugin_distribution`` (in ``daemon_process``) copies this file into a temporary directory as the
module ``robust_plugins`` with a ``informerd-robust-plugins-0.1.dist-info`` declaring the entry
points below, so an ``informerd`` subprocess with that directory on ``PYTHONPATH`` discovers them
exactly as it would an installed package. Well-behaved plugins record what they did in files the
test reads (one line per call, appended: small appends to one file do not interleave).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict

from controllers import Result
from controllers.plugins import handler_plugin, reconciler_plugin

ENTRY_POINTS = {
    "informerd.reconcilers": {
        "robust-children": "robust_plugins:children",
        "robust-raises": "robust_plugins:raises",
        "robust-hangs": "robust_plugins:hangs",
        "robust-hangs-blocking": "robust_plugins:hangs_blocking",
        "robust-grows": "robust_plugins:grows",
        "robust-explodes": "robust_plugins:explodes",
        "robust-broken": "robust_broken:factory",
    },
    "informerd.handlers": {
        "robust-recorder": "robust_plugins:recorder",
        "robust-raising-handler": "robust_plugins:raising_handler",
        "robust-hanging-handler": "robust_plugins:hanging_handler",
        "robust-hanging-async-handler": "robust_plugins:hanging_async_handler",
    },
}
"""group -> {entry point name: module:attribute}; ``robust_broken`` fails to import."""

BROKEN_MODULE = "raise ImportError('No module named boto3 (robust_broken needs it)')\n"


def _append(path: str, line: str) -> None:
    with Path(path).open("a") as file:
        file.write(line + "\n")


class ChildOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record: str
    """A file: one line ``<tag> <uid> <name>`` per successful reconcile."""
    tag: str = ""
    delay: float = 0.0
    """Seconds each reconcile sleeps first (a slow plugin)."""


@reconciler_plugin(options=ChildOptions, permissions={"v1/configmaps": ["create", "patch"]})
def children(options: ChildOptions) -> Any:
    """Applies one child ConfigMap ``<name>-child`` per primary (idempotent), then records the call."""

    async def reconcile(ctx: Any) -> None:
        if ctx.obj is None:
            return None
        if options.delay:
            await anyio.sleep(options.delay)
        child = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{ctx.name}-child", "labels": {"robust/child": "yes"}},
            "data": {"parent": ctx.name, "tag": options.tag},
        }
        await ctx.api("v1/configmaps").apply(ctx.own(child))
        _append(options.record, f"{options.tag} {ctx.uid} {ctx.name}")
        return None

    return reconcile


@reconciler_plugin()
def raises(options: None) -> Any:
    async def reconcile(ctx: Any) -> None:
        raise RuntimeError(f"robust-raises refuses {ctx.name}")

    return reconcile


@reconciler_plugin()
def hangs(options: None) -> Any:
    """Never returns (cancellable: the timeout cancels it)."""

    async def reconcile(ctx: Any) -> None:
        await anyio.sleep_forever()

    return reconcile


@reconciler_plugin()
def hangs_blocking(options: None) -> Any:
    """Blocks its thread for an hour and ignores ``ctx.cancelled``: the worker must abandon it."""

    def reconcile(ctx: Any) -> None:
        time.sleep(3600)

    return reconcile


class GrowOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chunk_bytes: int = 1 << 20
    max_chunks: int = 32
    every: float = 0.05


_HOARD: list[bytes] = []


@reconciler_plugin(options=GrowOptions)
def grows(options: GrowOptions) -> Any:
    """Keeps ``chunk_bytes`` more (touched) memory per call, up to ``max_chunks``, and asks again."""

    async def reconcile(ctx: Any) -> Result:
        if len(_HOARD) < options.max_chunks:
            _HOARD.append(b"\x01" * options.chunk_bytes)
        return Result.requeue_after(options.every)

    return reconcile


@reconciler_plugin()
def explodes(options: None) -> Any:
    raise RuntimeError("robust-explodes cannot start: no credentials")


class RecorderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record: str
    """A file: one line ``<notification type> <name>`` per notification."""


@handler_plugin(options=RecorderOptions)
def recorder(options: RecorderOptions) -> Any:
    def handle(note: Any) -> None:
        obj = getattr(note, "obj", None) or getattr(note, "new", None) or note.last_state
        _append(options.record, f"{type(note).__name__} {obj['metadata']['name']}")

    return handle


@handler_plugin()
def raising_handler(options: None) -> Any:
    def handle(note: Any) -> None:
        raise ValueError(f"robust-raising-handler refuses {type(note).__name__}")

    return handle


@handler_plugin()
def hanging_handler(options: None) -> Any:
    def handle(note: Any) -> None:
        time.sleep(3600)

    return handle


@handler_plugin()
def hanging_async_handler(options: None) -> Any:
    async def handle(note: Any) -> None:
        await anyio.sleep_forever()

    return handle
