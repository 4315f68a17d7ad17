"""The README's first command: a control plane, a watch, and objects created so events flow.

Prints one line per watch event (type, namespace/name, resourceVersion) while it creates, updates and
deletes ConfigMaps. Runs until Ctrl-C/SIGTERM, or for ``--rounds`` rounds.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

import orjson
import urllib3

from .controlplane import ControlPlane

__all__ = ["run_demo"]


def _watch(plane: ControlPlane, namespace: str, stop: threading.Event, ready: threading.Event) -> None:
    assert plane.workdir is not None
    certs = plane.workdir / "certs"
    pool = urllib3.PoolManager(ca_certs=str(plane.ca_file), cert_file=str(certs / "admin.crt"),
                               key_file=str(certs / "admin.key"))
    resp = pool.request("GET", f"{plane.server}/api/v1/namespaces/{namespace}/configmaps?watch=1",
                        preload_content=False, timeout=urllib3.Timeout(connect=5, read=None), retries=False)
    ready.set()
    buffer = b""
    try:
        for chunk in resp.stream(65536):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                event = orjson.loads(line)
                meta = event["object"]["metadata"]
                print(f"event {event['type']:<8} {meta['namespace']}/{meta['name']} rv={meta['resourceVersion']}",
                      flush=True)
            if stop.is_set():
                break
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # closed by shutdown


def run_demo(rounds: int = 0) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ControlPlane() as plane:
        print(f"control plane up: {plane.server}  KUBECONFIG={plane.admin_kubeconfig}", flush=True)
        namespace = "demo"
        plane.request_json("POST", "/api/v1/namespaces",
                           {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        ready = threading.Event()
        watcher = threading.Thread(target=_watch, args=(plane, namespace, stop, ready), daemon=True)
        watcher.start()
        ready.wait(10)
        base = f"/api/v1/namespaces/{namespace}/configmaps"
        n = 0
        while not stop.is_set() and (rounds == 0 or n < rounds):
            name = f"cm-{n}"
            plane.request_json("POST", base, {"apiVersion": "v1", "kind": "ConfigMap",
                                              "metadata": {"name": name}, "data": {"round": str(n)}})
            obj = plane.request_json("GET", f"{base}/{name}")
            obj["data"]["touched"] = "yes"
            plane.request_json("PUT", f"{base}/{name}", obj)
            if n >= 2:
                plane.request_json("DELETE", f"{base}/cm-{n - 2}")
            n += 1
            stop.wait(1.0)
        time.sleep(0.5)  # let the last events print
        stop.set()
    print("demo stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
