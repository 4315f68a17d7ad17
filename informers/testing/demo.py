"""The kit's informer demo (``python -m informers.testing demo``; ``make demo`` runs the daemon's,
``backup_controller.demo``): a control plane, a shared informer, and objects created so events flow.

A ``SharedInformer`` on ConfigMaps prints one line per notification (added/updated/deleted, with the
resourceVersion) while the demo creates, updates and deletes ConfigMaps, and prints the informer's
statistics at the end. Runs until Ctrl-C/SIGTERM, or for ``--rounds`` rounds.
"""

from __future__ import annotations

import signal
import sys
import threading

import structlog

from ..client import ApiClient
from ..config import load_config
from ..events import Notification, ObjectAdded, ObjectDeleted, ObjectUpdated
from ..informer import SharedInformer
from ..resources import Resource
from .controlplane import ControlPlane

__all__ = ["run_demo"]

_CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)


def _print(note: Notification) -> None:
    if isinstance(note, ObjectAdded):
        what, obj = "added", note.obj
    elif isinstance(note, ObjectUpdated):
        what, obj = ("resync" if note.is_resync else "updated"), note.new
    elif isinstance(note, ObjectDeleted):
        what, obj = ("deleted?" if note.final_state_unknown else "deleted"), note.last_state
    meta = obj["metadata"]
    print(
        f"event {what:<8} {meta['namespace']}/{meta['name']} rv={meta['resourceVersion']} data={obj.get('data')}",
        flush=True,
    )


def run_demo(rounds: int = 0) -> int:
    # logs to stderr, event lines to stdout: the two streams don't interleave mid-line
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ControlPlane() as plane:
        print(f"control plane up: {plane.server}  KUBECONFIG={plane.admin_kubeconfig}", flush=True)
        namespace = "demo"
        plane.request_json(
            "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
        with ApiClient(load_config(plane.admin_kubeconfig)) as client:
            informer = SharedInformer(client, _CONFIGMAPS, namespace=namespace)
            informer.add_handler(on_notification=_print, name="printer")
            informer.start()
            informer.wait_synced_blocking(30)
            print(f"informer synced: {informer.name}", flush=True)
            base = f"/api/v1/namespaces/{namespace}/configmaps"
            n = 0
            while not stop.is_set() and (rounds == 0 or n < rounds):
                name = f"cm-{n}"
                plane.request_json(
                    "POST",
                    base,
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"round": str(n)}},
                )
                obj = plane.request_json("GET", f"{base}/{name}")
                obj["data"]["touched"] = "yes"
                plane.request_json("PUT", f"{base}/{name}", obj)
                if n >= 2:
                    plane.request_json("DELETE", f"{base}/cm-{n - 2}")
                n += 1
                stop.wait(1.0)
            stop.wait(0.5)  # let the last events print
            stats = informer.statistics()
            print(
                f"cache holds {stats.objects} objects; watch events {dict(stats.watcher.events)}; "
                f"lists {stats.watcher.lists}, relists {stats.watcher.relists}",
                flush=True,
            )
            informer.stop()
    print("demo stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
