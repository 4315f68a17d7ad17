"""The ``informerd`` command line.

``informerd watch RESOURCE`` runs one shared informer and prints its notifications as JSON lines
(the seed of the daemon: kubeconfig or in-cluster configuration, structlog JSON logs on stderr,
clean stop on SIGTERM/Ctrl-C). ``informerd version`` prints the version.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from importlib.metadata import PackageNotFoundError, version

import anyio
import orjson
import structlog

from informers import (
    ApiClient,
    InformerdError,
    InformerFactory,
    load_config,
    Notification,
    ObjectAdded,
    ObjectDeleted,
    ObjectUpdated,
)
from informers.errors import ConfigError

__all__ = ["main"]


def _version() -> str:
    try:
        return version("informerd")
    except PackageNotFoundError:
        return "unknown"


def _configure_logging(level: str) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o).decode()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def _line(note: Notification) -> bytes:
    if isinstance(note, ObjectAdded):
        record = {"type": "added", "initial": note.in_initial_list, "object": note.obj}
    elif isinstance(note, ObjectUpdated):
        record = {"type": "resync" if note.is_resync else "updated", "object": note.new}
    else:
        assert isinstance(note, ObjectDeleted)
        record = {"type": "deleted", "final_state_unknown": note.final_state_unknown, "object": note.last_state}
    return orjson.dumps(record) + b"\n"


async def _until_signalled(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _watch(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer

    def emit(note: Notification) -> None:  # a plain handler: called for one note at a time, in order
        out.write(_line(note))
        out.flush()

    config = load_config(args.kubeconfig, args.context, qps=args.qps, burst=args.burst)
    with ApiClient(config) as client:
        async with anyio.create_task_group() as group:
            group.start_soon(_until_signalled, group.cancel_scope)
            async with InformerFactory(client, namespace=args.namespace) as factory:
                informer = await factory.informer(args.resource, label_selector=args.selector)
                informer.add_handler(on_notification=emit, name="stdout")
                if not await informer.wait_synced(args.sync_timeout):
                    cause = informer.last_error
                    structlog.get_logger("informerd").error(
                        "informer did not sync", informer=informer.name, timeout=args.sync_timeout,
                        cause=None if cause is None else f"{type(cause).__name__}: {cause}")
                    group.cancel_scope.cancel()
                    return 2
                await anyio.sleep_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="informerd", description="Kubernetes informer/cache event engine")
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error (default: info)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version")
    watch = sub.add_parser("watch", help="run one shared informer and print its notifications as JSON lines")
    watch.add_argument("resource", help='"v1/pods", "apps/v1/deployments", or a kind such as "Deployment"')
    watch.add_argument("-n", "--namespace", default=None, help="namespace (default: all namespaces)")
    watch.add_argument("-l", "--selector", default=None, help="label selector")
    watch.add_argument("--kubeconfig", default=None, help="kubeconfig path (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    watch.add_argument("--context", default=None, help="kubeconfig context")
    watch.add_argument("--qps", type=float, default=5.0, help="client-side requests per second (negative: off)")
    watch.add_argument("--burst", type=int, default=10, help="client-side burst")
    watch.add_argument("--sync-timeout", type=float, default=120.0, help="seconds to wait for the first list")
    args = parser.parse_args(argv)
    if args.command == "version":
        print(_version())
        return 0
    _configure_logging(args.log_level)
    try:
        return anyio.run(_watch, args)
    except (ConfigError, InformerdError) as exc:
        structlog.get_logger("informerd").error("informerd failed", error=f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
