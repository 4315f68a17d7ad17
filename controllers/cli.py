"""The ``informerd`` command line: ``run``, ``check-config``, ``plugins``, ``config-schema``, ``version``
and ``watch``.

Flags follow controller-runtime where it has one (``--kubeconfig``, ``--metrics-bind-address``,
``--health-probe-bind-address``, ``--leader-elect``...), and every flag can also be set with an
``INFORMERD_*`` environment variable (``--metrics-bind-address`` <- ``INFORMERD_METRICS_BIND_ADDRESS``);
a flag given on the command line wins over the variable, which wins over the config file.
Exit codes: 0 success, 1 a runtime failure, 2 bad usage or an invalid config.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import anyio
import orjson

from informers import ApiClient, InformerdError, InformerFactory, load_config
from informers._log import get_logger
from informers.events import Notification, ObjectAdded, ObjectDeleted, ObjectUpdated

from .config import ConfigFileError, DaemonConfig, config_lines, config_schema, load_config_file
from .daemon import client_config, manager_from_config
from .logsetup import configure_logging
from .manager import Manager
from .plugins import PluginConfigError, discover
from .sharding import resolve_shard

__all__ = ["main"]

_log = get_logger("informerd")

_STUCK_THREAD_GRACE = 1.0  # seconds a thread still running plugin code at exit gets to return


def _version() -> str:
    try:
        return version("informerd")
    except PackageNotFoundError:
        return "unknown"


def _env(flag: str) -> str:
    return "INFORMERD_" + flag.lstrip("-").upper().replace("-", "_")


def _add(parser: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    """A flag whose default comes from its ``INFORMERD_*`` variable (help shows the variable)."""
    env = _env(flag)
    raw = os.environ.get(env)
    if raw is not None:
        if kwargs.get("action") == "store_true":
            kwargs["default"] = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            kwargs["default"] = kwargs.get("type", str)(raw)
    kwargs["help"] = f"{kwargs.get('help', '')} [env {env}]"
    parser.add_argument(flag, **kwargs)


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
                    _log.error(
                        "informer did not sync",
                        informer=informer.name,
                        timeout=args.sync_timeout,
                        cause=None if cause is None else f"{type(cause).__name__}: {cause}",
                    )
                    group.cancel_scope.cancel()
                    return 2
                await anyio.sleep_forever()
    return 0


def _load(path: str | None) -> DaemonConfig:
    return load_config_file(path) if path else DaemonConfig()


def _with_flags(config: DaemonConfig, args: argparse.Namespace) -> DaemonConfig:
    """The config with the flags that were given (or set through the environment) applied."""
    updates: dict[str, Any] = {}
    if args.metrics_bind_address is not None:
        updates["metrics_bind_address"] = args.metrics_bind_address
    if args.health_probe_bind_address is not None:
        updates["health_probe_bind_address"] = args.health_probe_bind_address
    election: dict[str, Any] = {}
    if args.leader_elect:
        election["enabled"] = True
    if args.leader_election_id is not None:
        election["id"] = args.leader_election_id
    if args.leader_election_namespace is not None:
        election["namespace"] = args.leader_election_namespace
    if election:
        updates["leader_election"] = config.leader_election.model_copy(update=election)
    return config.model_copy(update=updates)


def _with_lines(error: PluginConfigError, path: str | None) -> ConfigFileError:
    """The plugin problems of the config file ``path`` as a ``ConfigFileError``, each with its line."""
    lines: dict[str, int] = {}
    if path:
        with contextlib.suppress(OSError):
            lines = config_lines(Path(path).read_text())
    problems = [p.model_copy(update={"line": lines.get(p.path)}) for p in error.problems]
    return ConfigFileError(path or "<config>", problems)


def _manager(config: DaemonConfig, path: str | None, **options: Any) -> Manager:
    try:
        return manager_from_config(config, **options)
    except PluginConfigError as exc:
        raise _with_lines(exc, path) from exc


def _run(args: argparse.Namespace) -> int:
    config = _with_flags(_load(args.config), args)
    try:
        shard = resolve_shard(args.total_shards, args.shard)
    except ValueError as exc:
        print(f"informerd: {exc}", file=sys.stderr)
        return 2
    manager = _manager(
        config, args.config, client_config=client_config(config, kubeconfig=args.kubeconfig), shard=shard
    )
    _log.info(
        "informerd starting",
        version=_version(),
        config=args.config,
        reconcilers=[r.plugin for r in config.reconcilers],
        handlers=[h.plugin for h in config.handlers],
    )
    manager.run()
    return 0


def _exit_past_stuck_threads(code: int) -> None:
    """Exit with ``code`` now if plugin code still runs on threads the drain abandoned (a sync
    reconciler or handler that hangs): Python would otherwise wait for them at exit, forever.
    Everything the daemon owns is closed by now (a clean stop, a lost lease, a failure); only the
    stuck calls are cut off."""
    stuck = [
        t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if not stuck:
        return
    time.sleep(_STUCK_THREAD_GRACE)  # a call that was about to return gets a moment
    stuck = [
        t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if stuck:
        _log.warning("exiting with plugin calls still running on threads", threads=len(stuck), names=sorted(set(stuck)))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    _manager(config, args.config, client=object())  # loads and validates every plugin, connects nowhere
    print(f"{args.config}: ok ({len(config.reconcilers)} reconciler(s), {len(config.handlers)} handler(s))")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    found = discover()
    if args.output == "json":
        print(
            orjson.dumps(
                [
                    {
                        "name": p.name,
                        "kind": p.kind,
                        "value": p.value,
                        "distribution": p.distribution,
                        "version": p.version,
                    }
                    for p in found
                ]
            ).decode()
        )
        return 0
    if not found:
        print("no plugins installed")
    for p in found:
        print(f"{p.kind:<10} {p.name:<24} {p.value:<40} {p.distribution or '?'} {p.version or '?'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="informerd", description="Kubernetes informer and controller daemon")
    _add(parser, "--log-level", default="info", help="debug, info, warning or error (default: info)")
    _add(parser, "--log-format", default="json", choices=["json", "console"], help="log line format")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version")
    sub.add_parser("config-schema", help="print the config file's JSON Schema")
    plugins = sub.add_parser("plugins", help="list installed plugins with their distribution and version")
    plugins.add_argument("-o", "--output", choices=["text", "json"], default="text")
    check = sub.add_parser("check-config", help="validate a config file and load its plugins")
    _add(check, "--config", required=os.environ.get(_env("--config")) is None, help="config file (YAML)")
    run = sub.add_parser("run", help="run the daemon")
    _add(run, "--config", default=None, help="config file (YAML); default: no plugins")
    _add(run, "--kubeconfig", default=None, help="kubeconfig path (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    _add(
        run,
        "--metrics-bind-address",
        default=None,
        help="where /metrics listens, '0' disables (default: the config's, ':8080')",
    )
    _add(
        run,
        "--health-probe-bind-address",
        default=None,
        help="where /healthz and /readyz listen, '0' disables (default: the config's, ':8081')",
    )
    _add(
        run,
        "--leader-elect",
        action="store_true",
        default=False,
        help="reconcile only while holding the Lease (caches stay warm on standbys)",
    )
    _add(run, "--leader-election-id", default=None, help="Lease name (default: the config's, '<name>-leader')")
    _add(run, "--leader-election-namespace", default=None, help="Lease namespace (default: the pod's)")
    _add(
        run,
        "--shard",
        type=int,
        default=None,
        help="this replica's shard, 0-based (default: the ordinal of "
        "a StatefulSet pod name in POD_NAME or the hostname)",
    )
    _add(run, "--total-shards", type=int, default=1, help="replicas splitting the objects by UID (default 1: off)")
    watch = sub.add_parser("watch", help="run one shared informer and print its notifications as JSON lines")
    watch.add_argument("resource", help='"v1/pods", "apps/v1/deployments", or a kind such as "Deployment"')
    watch.add_argument("-n", "--namespace", default=None, help="namespace (default: all namespaces)")
    watch.add_argument("-l", "--selector", default=None, help="label selector")
    _add(watch, "--kubeconfig", default=None, help="kubeconfig path")
    watch.add_argument("--context", default=None, help="kubeconfig context")
    watch.add_argument("--qps", type=float, default=5.0, help="client-side requests per second (negative: off)")
    watch.add_argument("--burst", type=int, default=10, help="client-side burst")
    watch.add_argument("--sync-timeout", type=float, default=120.0, help="seconds to wait for the first list")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(_version())
        return 0
    if args.command == "config-schema":
        print(orjson.dumps(config_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
        return 0
    try:
        configure_logging(args.log_level, args.log_format)
    except ValueError as exc:
        print(f"informerd: {exc}", file=sys.stderr)
        return 2
    code = _command(args)
    if args.command == "run":
        _exit_past_stuck_threads(code)
    return code


def _command(args: argparse.Namespace) -> int:
    try:
        if args.command == "plugins":
            return _plugins(args)
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "run":
            return _run(args)
        return anyio.run(_watch, args)
    except ConfigFileError as exc:
        print(f"informerd: {exc}", file=sys.stderr)
        return 2
    except InformerdError as exc:
        _log.error("informerd failed", error=f"{type(exc).__name__}: {exc}")
        print(f"informerd: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
