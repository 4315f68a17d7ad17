"""``python -m informers.testing install|up|demo``: build the binaries, or run a control plane.

``install`` builds the pinned etcd, kube-apiserver, promtool and helm into the cache (idempotent) and prints the
directory as its last line, ready for ``KUBEBUILDER_ASSETS``. ``up`` runs a control plane in the
foreground, prints the admin kubeconfig path, and stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from .assets import AssetBuildError, MissingBinaryError, install
from .controlplane import ControlPlane, ControlPlaneError


def _up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    started = time.monotonic()
    with ControlPlane(apiserver_args=args.apiserver_arg or ()) as plane:
        print(f"control plane up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        print(f"apiserver: {plane.server}", file=sys.stderr)
        print(f"etcd: {plane.etcd_url}", file=sys.stderr)
        print(f"export KUBECONFIG={plane.admin_kubeconfig}", file=sys.stderr)
        print(plane.admin_kubeconfig, flush=True)
        while not stop.wait(0.5):
            for proc in (plane.etcd, plane.apiserver):
                if proc is not None:
                    proc.check_alive()
    print("control plane stopped", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m informers.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="build the pinned etcd, kube-apiserver, promtool and helm into the cache")
    up = sub.add_parser("up", help="run a control plane in the foreground")
    up.add_argument("--apiserver-arg", action="append", help="extra kube-apiserver flag (repeatable)")
    demo = sub.add_parser("demo", help="control plane + a watch printing events for objects it creates")
    demo.add_argument("--rounds", type=int, default=0, help="stop after N rounds (default: run until Ctrl-C)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(install())
            return 0
        if args.command == "demo":
            from .demo import run_demo

            return run_demo(args.rounds)
        return _up(args)
    except (AssetBuildError, MissingBinaryError, ControlPlaneError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
