"""The data set every peer caches, and the writes the driver makes while they watch.

Pods as ``bench/informer_sync.py`` makes them (a running ReplicaSet pod: 2 containers, status from
a "kubelet" manager, ~6.7 KB of JSON with managedFields), spread over 5 namespaces, plus the
``bench.informerd.io/written`` annotation at a fixed width so patches never change a pod's size.
A patch sets the ``bench-tick`` label to ``<token>-<i>`` (how a child tells this run's updates from
others) and the annotation to the time of the write. Pods are only ever added: the driver grows
the set from one scale point to the next.
"""

from __future__ import annotations

import contextlib
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.informer_sync import TICK_LABEL, make_pod, pod_name, pod_status
from bench.peers.child import WRITTEN_ANNOTATION

NAMESPACES = 5
UNWRITTEN = "0000000000.000000"  # the width of every later f"{time.time():.6f}" until 2286


def namespace_of(i: int) -> str:
    return f"bench-{i % NAMESPACES}"


def pod_path(i: int) -> str:
    return f"/api/v1/namespaces/{namespace_of(i)}/pods/{pod_name(i)}"


def count_pods(client: Any) -> int:
    """Pods in the whole cluster (every peer caches all namespaces)."""
    listed = client.get_json("/api/v1/pods", query={"limit": "1"})
    remaining = int(listed["metadata"].get("remainingItemCount") or 0)
    return len(listed.get("items", [])) + remaining


def ensure_pods(client: Any, n: int, writers: int) -> tuple[int, float]:
    """Create pods 0..n-1 that are missing (409 = already there); returns (created, seconds)."""
    from informers.errors import AlreadyExistsError

    for k in range(NAMESPACES):
        with contextlib.suppress(AlreadyExistsError):
            client.request(
                "POST",
                "/api/v1/namespaces",
                body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{k}"}},
            )

    def one(i: int) -> int:
        rng = random.Random(i)
        pod = make_pod(i, namespace_of(i), rng)
        pod["metadata"]["annotations"][WRITTEN_ANNOTATION] = UNWRITTEN
        try:
            client.request(
                "POST", f"/api/v1/namespaces/{namespace_of(i)}/pods", query={"fieldManager": "bench-deployer"}, body=pod
            )
        except AlreadyExistsError:
            return 0
        client.request(
            "PATCH",
            pod_path(i) + "/status",
            query={"fieldManager": "kubelet"},
            body=pod_status(pod, rng),
            content_type="application/strategic-merge-patch+json",
        )
        return 1

    started = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        created = sum(pool.map(one, range(n), chunksize=32))
    return created, time.perf_counter() - started


def patch_pods(client: Any, token: str, m: int, writers: int) -> tuple[float, float]:
    """Patch pods 0..m-1 at once (``writers`` threads): tick label and write time; returns
    (first write sent, last write acknowledged), unix seconds."""

    def one(i: int) -> None:
        client.request(
            "PATCH",
            pod_path(i),
            query={"fieldManager": "bench-deployer"},
            body={
                "metadata": {
                    "labels": {TICK_LABEL: f"{token}-{i:06d}"},
                    "annotations": {WRITTEN_ANNOTATION: f"{time.time():.6f}"},
                }
            },
            content_type="application/merge-patch+json",
        )

    first = time.time()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(one, range(m), chunksize=16))
    return first, time.time()
