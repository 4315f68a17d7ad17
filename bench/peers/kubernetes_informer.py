"""Peer child: the official client's ``kubernetes.informer.SharedInformer`` (kubernetes >= 37) on
``CoreV1Api.list_pod_for_all_namespaces``: V1Pod models in its ``ObjectCache``, handlers called on
its watch thread. It has no ``has_synced``: synced = its first list is applied and every ADDED
handler call made (it then records the list's resourceVersion, which we poll). Protocol: ``child``."""

from __future__ import annotations

import os
import time
from typing import Any

from bench.peers import child


def main() -> None:
    args = child.parser(__doc__ or "").parse_args()
    channel = child.Channel()

    from kubernetes import client as kclient
    from kubernetes import config as kconfig
    from kubernetes.informer import ADDED, MODIFIED, SharedInformer

    kconfig.load_kube_config(config_file=args.kubeconfig)
    api = kclient.CoreV1Api()
    rss0 = child.baseline()
    informer = SharedInformer(api.list_pod_for_all_namespaces)
    tracker = child.Tracker(args.token, 0, args.updates)

    def on_modified(pod: Any) -> None:
        meta = pod.metadata
        tracker.see(meta.uid, meta.labels, meta.annotations)

    informer.add_event_handler(ADDED, lambda pod: None)
    informer.add_event_handler(MODIFIED, on_modified)
    started, cpu_start = time.perf_counter(), child.cpu_seconds()
    informer.start()
    deadline = time.monotonic() + args.timeout
    while informer._resource_version is None:  # set once the first list and its handlers are done
        if time.monotonic() > deadline:
            raise SystemExit(f"official SharedInformer not synced after {args.timeout} s")
        time.sleep(0.001)
    fields = child.synced_fields(started, cpu_start, len(informer.cache.list_keys()), rss0)
    channel.emit("synced", **fields)
    cpu0 = child.cpu_seconds()
    tracker.done.wait(args.timeout)
    channel.emit("events", **tracker.events_fields(cpu0))
    os._exit(0)


if __name__ == "__main__":
    main()
