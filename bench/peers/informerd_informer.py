"""Peer child: informerd's ``SharedInformer`` on all pods, one handler (its defaults: streaming
list, managedFields stripped). Synced = ``wait_synced`` and the handler's registration synced
(client-go's ``registration.HasSynced``); updates are counted by the handler. Protocol: ``child``."""

from __future__ import annotations

import os
import time

from bench.peers import child


def main() -> None:
    p = child.parser(__doc__ or "")
    p.add_argument("--keep-managed-fields", action="store_true")
    p.add_argument("--list", action="store_true", help="LIST pages instead of the streaming list")
    p.add_argument("--inline", action="store_true", help="call the handler on the reflector thread")
    args = p.parse_args()
    channel = child.Channel()

    from informers.client import ApiClient
    from informers.config import load_config
    from informers.informer import InformerOptions, SharedInformer
    from informers.objects import strip_managed_fields
    from informers.resources import Resource

    client = ApiClient(load_config(args.kubeconfig, qps=args.qps, burst=args.burst))
    rss0 = child.baseline()
    informer = SharedInformer(
        client,
        Resource("", "v1", "pods", "Pod", namespaced=True),
        transform=None if args.keep_managed_fields else strip_managed_fields,
        options=InformerOptions(streaming_list=not args.list),
    )
    tracker = child.Tracker(args.token, 0, args.updates)

    def on_update(old: object, new: dict[str, dict[str, object]]) -> None:
        meta = new["metadata"]
        tracker.see(str(meta["uid"]), meta.get("labels"), meta.get("annotations"))  # type: ignore[arg-type]

    registration = informer.add_handler(on_add=lambda obj: None, on_update=on_update, inline=args.inline)  # type: ignore[arg-type]
    started, cpu_start = time.perf_counter(), child.cpu_seconds()
    informer.start()
    if not informer.wait_synced_blocking(args.timeout):
        raise SystemExit(f"informer not synced after {args.timeout} s: {informer.last_error!r}")
    while not registration.has_synced():
        time.sleep(0.001)
    stats = informer.statistics()
    fields = child.synced_fields(started, cpu_start, stats.objects, rss0)
    # How the list was served: a silent fallback from the streaming list would change every figure.
    fields["list_pages"] = stats.watcher.list_pages
    fields["streaming_fallback"] = stats.watcher.streaming_list_fallback_reason
    channel.emit("synced", **fields)
    cpu0 = child.cpu_seconds()
    tracker.done.wait(args.timeout)
    channel.emit("events", **tracker.events_fields(cpu0))
    os._exit(0)  # the informer's threads hold nothing worth a clean stop here


if __name__ == "__main__":
    main()
