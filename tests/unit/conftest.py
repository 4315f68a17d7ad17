"""Helpers shared by the unit tests: waiting for a condition another thread or task will make
true (a wait, never a timing assertion), one ``pod()`` factory, the anyio backends to run async
tests on, and the check every test that watches a ``FakeCluster`` ends with (cache == cluster).
Import them from the test modules (``from .conftest import pod, wait_until``)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from informers._bridge import SUPPORTED_BACKENDS
from informers.informer import InformerOptions, SharedInformer
from informers.objects import object_key
from informers.testing.fake import FakeCluster

_POLL = 0.001
_DEFAULT_SPEC: dict[str, Any] = {"containers": [{"name": "c", "image": "img"}]}

FAST = InformerOptions(backoff_initial=0.01, backoff_cap=0.05)
"""Informer options for tests: backoffs of milliseconds, everything else the defaults."""


@pytest.fixture(params=SUPPORTED_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every ``@pytest.mark.anyio`` test runs on each backend informerd supports."""
    return str(request.param)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition another thread will make true (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(_POLL)


async def wait_until_async(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """``wait_until`` for tasks: polls without blocking the event loop."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(_POLL)


def pod(
    name: str = "p",
    ns: str | None = "default",
    rv: str | None = "1",
    uid: str | None = "",
    *,
    typed: bool = True,
    spec: dict[str, Any] | None = _DEFAULT_SPEC,
    **meta: Any,
) -> dict[str, Any]:
    """A Pod as a raw dict. ``uid=""`` derives ``uid-<ns>-<name>``; ``None`` leaves a field out
    (``ns``, ``rv``, ``uid``, ``spec``); ``typed=False`` leaves out ``kind``/``apiVersion`` (as
    list items come); ``meta`` adds or overrides metadata fields (``labels=...``...)."""
    metadata: dict[str, Any] = {"name": name}
    if ns is not None:
        metadata["namespace"] = ns
    if uid is not None:
        metadata["uid"] = uid or f"uid-{ns}-{name}"
    if rv is not None:
        metadata["resourceVersion"] = rv
    metadata.update(meta)
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod"} if typed else {}
    obj["metadata"] = metadata
    if spec is not None:
        obj["spec"] = copy.deepcopy(spec)
    return obj


def cache_of(informer: SharedInformer) -> dict[str, dict[str, Any]]:
    return {object_key(obj): obj for obj in informer.store.list()}


def cluster_view(cluster: FakeCluster, informer: SharedInformer) -> dict[str, dict[str, Any]]:
    """The objects ``informer`` should hold: its resource, namespace and selectors, read from ``cluster``."""
    objects = cluster.list(
        informer.resource,
        namespace=informer.namespace,
        label_selector=informer.label_selector,
        field_selector=informer.field_selector,
    )
    return {object_key(obj): obj for obj in objects}


async def assert_cache_matches(cluster: FakeCluster, informer: SharedInformer, timeout: float = 5.0) -> None:
    """Wait for the informer to catch up with the cluster, then assert its cache equals it."""
    with anyio.move_on_after(timeout):
        while cache_of(informer) != cluster_view(cluster, informer):
            await anyio.sleep(_POLL)
    assert cache_of(informer) == cluster_view(cluster, informer)


def assert_cache_matches_blocking(cluster: FakeCluster, informer: SharedInformer, timeout: float = 5.0) -> None:
    """``assert_cache_matches`` for threads."""
    deadline = time.monotonic() + timeout
    while cache_of(informer) != cluster_view(cluster, informer) and time.monotonic() < deadline:
        time.sleep(_POLL)
    assert cache_of(informer) == cluster_view(cluster, informer)
