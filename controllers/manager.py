"""The Manager: the one object a controller process needs (controller-runtime's manager).

It owns the ``ApiClient``, one ``InformerFactory``, one ``ApiWriter`` and ``EventRecorder``, and the
controllers and handlers registered on it, and starts and stops them in order: client, informers,
writer and recorder, then controllers and handlers; on the way out controllers drain first, the
recorder flushes, and the informers and client close last. Reconcilers are registered with a
decorator, the front door over ``Controller``::

    mgr = Manager()

    @mgr.reconcile("example.com/v1/Widget", owns=["v1/ConfigMap"], workers=4, timeout=30)
    async def widget(ctx: Context) -> Result | None:
        ...

    mgr.run()   # blocks; SIGTERM/SIGINT drain and stop (a second signal exits at once)

``await mgr.serve()`` runs the same inside an application's own event loop. Pass ``client=`` to
share a client (or a ``informers.testing.fake.FakeCluster`` in unit tests); by default the client
comes from ``load_config()`` (kubeconfig or in-cluster) with a connection pool sized for the
workers. Invariant: no reconcile starts before its controller's caches have synced, and
``serve()`` returns only after every controller has drained and every component it opened is
closed.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.abc

from informers import _bridge
from informers._log import bind_context, get_logger, reset_context
from informers.client import ApiClient
from informers.config import ClientConfig, load_config
from informers.factory import InformerFactory
from informers.informer import InformerOptions
from informers.resources import Resource

from .checks import controllers_synced, informers_synced, watches_healthy, workers_not_wedged
from .context import Services, front_door
from .controller import Controller, default_controller_name
from .errors import ControllerStateError
from .leader import ElectionOptions, LeaderElector
from .metrics import MetricsExporter
from .predicates import Predicate
from .probes import HealthChecks, ping
from .ratelimit import RateLimiter
from .recorder import EventRecorder
from .servers import metrics_server, probe_server
from .sharding import Shard, ShardFilter
from .triggers import ObjectMapper, Trigger
from .triggers import owns as owns_trigger
from .triggers import watches as watches_trigger
from .writer import ApiWriter, WriterOptions, client_config_for_workers

__all__ = ["Manager"]

_log = get_logger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])
_SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclasses.dataclass
class _Registration:
    """A reconciler declared with ``@reconcile``; its Controller is built when ``serve`` starts."""

    fn: Callable[..., Any]
    resource: Resource | str
    triggers: list[Trigger]
    options: dict[str, Any]
    plugin: str | None = None


@dataclasses.dataclass
class _Handler:
    resource: Resource | str
    fn: Callable[..., Any]
    namespace: str | None
    label_selector: str | None
    resync_period: float | None
    plugin: str | None = None


class Manager:
    """See the module docstring. ``name`` labels the event recorder (``reportingController``) and is
    the default field manager of writes; ``namespace`` scopes every informer (default: all
    namespaces); ``events=False`` records no Kubernetes Events; ``drain_timeout`` (seconds, default
    30) bounds how long a stop waits for in-flight reconciles.

    Daemon options (controller-runtime's names): ``metrics_bind_address`` / ``health_probe_bind_address``
    (``":8080"``, ``"127.0.0.1:8081"``; None or ``"0"``: off, the default for embedded use);
    ``stall_grace`` (seconds, default 30: the ``grace`` of /healthz's ``watches`` check,
    ``checks.watches_healthy``; the deadline it is added to follows ``informer_options``'
    ``idle_timeout`` and ``backoff_cap``); ``leader_election`` (caches warm on every replica, reconcilers run only while holding the Lease
    ``leader_election_id`` in ``leader_election_namespace`` (default: the pod's, else ``default``);
    losing it stops the manager with ``LeaderElectionLostError``); ``shard`` (``Shard(n, m)``: only
    keys whose UID hashes to ``n`` are reconciled, and the Lease name gets the shard suffix)."""

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        client: ApiClient | Any | None = None,
        namespace: str | None = None,
        name: str = "informerd",
        field_manager: str | None = None,
        informer_options: InformerOptions | None = None,
        writer_options: WriterOptions | None = None,
        events: bool = True,
        drain_timeout: float = 30.0,
        metrics_bind_address: str | None = None,
        health_probe_bind_address: str | None = None,
        stall_grace: float = 30.0,
        leader_election: bool = False,
        leader_election_id: str | None = None,
        leader_election_namespace: str | None = None,
        election_options: ElectionOptions | None = None,
        shard: Shard | None = None,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self._config = config
        self._client: Any = client
        self._informer_options = informer_options
        self._writer_options = writer_options or WriterOptions(field_manager=field_manager or name)
        self._events = events
        self.drain_timeout = drain_timeout
        self.metrics_bind_address = metrics_bind_address
        self.health_probe_bind_address = health_probe_bind_address
        self.stall_grace = stall_grace
        self.leader_election = leader_election
        self.leader_election_id = leader_election_id or f"{name.replace('/', '-').replace('.', '-')}-leader"
        self.leader_election_namespace = leader_election_namespace
        self._election_options = election_options or ElectionOptions()
        self.shard = shard or Shard()
        self.exporter: MetricsExporter | None = None
        self.elector: LeaderElector | None = None
        self.healthz = HealthChecks("healthz")
        self.readyz = HealthChecks("readyz")
        self.servers: dict[str, int] = {}
        """The ports the metrics and probe servers bound (``metrics``, ``probes``), once serving."""
        self._registrations: list[_Registration] = []
        self._handlers: list[_Handler] = []
        self._controllers: list[Controller] = []
        self._serving = False
        self.factory: InformerFactory | None = None
        self.writer: ApiWriter | None = None
        self.recorder: EventRecorder | None = None

    # -- registration --------------------------------------------------------------------------
    def reconcile(
        self,
        resource: Resource | str,
        *,
        owns: Iterable[Resource | str] = (),
        watches: Mapping[Resource | str, ObjectMapper] | None = None,
        workers: int = 1,
        timeout: float | None = None,
        predicates: Predicate | Sequence[Predicate] | None = None,
        namespace: str | None = None,
        label_selector: str | None = None,
        rate_limiter: RateLimiter | None = None,
        cache_sync_timeout: float = 120.0,
        name: str | None = None,
        plugin: str | None = None,
    ) -> Callable[[_F], _F]:
        """Register ``async def fn(ctx: Context)`` (or ``def fn(ctx: BlockingContext)``) as the
        reconciler of ``resource``, keyed by UID. ``owns``: child resources whose controller owner
        is enqueued (``ctx.own(child)`` sets that reference); ``watches``: other resources with a
        mapper from their objects to primary UIDs/objects. ``workers`` (default 1) reconciles run
        at once; ``timeout`` (seconds, default none) bounds each one; ``plugin`` (the daemon's
        entry point name) is added to every log line of the controller and its failures (errors,
        timeouts) are counted in ``informerd_plugin_errors_total``; the rest as ``Controller``.
        Returns ``fn`` unchanged."""
        triggers: list[Trigger] = [owns_trigger(r) for r in owns]
        triggers += [watches_trigger(r, mapper) for r, mapper in (watches or {}).items()]
        options = {
            "max_concurrent_reconciles": workers,
            "reconcile_timeout": timeout,
            "predicates": predicates,
            "namespace": namespace,
            "label_selector": label_selector,
            "rate_limiter": rate_limiter,
            "cache_sync_timeout": cache_sync_timeout,
            "name": name,
        }

        def register(fn: _F) -> _F:
            if self._serving:
                raise ControllerStateError("register reconcilers before the manager starts")
            self._registrations.append(_Registration(fn, resource, triggers, options, plugin))
            return fn

        return register

    def on(
        self,
        resource: Resource | str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        resync_period: float | None = None,
        plugin: str | None = None,
    ) -> Callable[[_F], _F]:
        """Register ``fn(notification)`` (plain or ``async def``) for every notification of
        ``resource``'s shared informer (``ObjectAdded``/``ObjectUpdated``/``ObjectDeleted``). It
        runs isolated: if it raises, the error is logged and counted and it keeps receiving.
        ``plugin`` (the daemon's entry point name) names the handler in logs and metrics and counts
        its failures in ``informerd_plugin_errors_total``."""

        def register(fn: _F) -> _F:
            if self._serving:
                raise ControllerStateError("register handlers before the manager starts")
            self._handlers.append(_Handler(resource, fn, namespace, label_selector, resync_period, plugin))
            return fn

        return register

    @property
    def controllers(self) -> list[Controller]:
        """The running controllers (built when ``serve`` starts), in registration order."""
        return list(self._controllers)

    # -- running -------------------------------------------------------------------------------
    def _open_client(self) -> tuple[Any, bool]:
        if self._client is not None:
            return self._client, False
        config = self._config or load_config()
        workers = sum(r.options["max_concurrent_reconciles"] for r in self._registrations) or 1
        watches = sum(1 + len(r.triggers) for r in self._registrations) + len(self._handlers)
        observer = self.exporter.request_observer if self.exporter is not None else None
        return ApiClient(client_config_for_workers(config, workers, watches=watches), observer=observer), True

    def record_plugin_error(self, plugin: str, kind: str) -> None:
        """Count a plugin failure in ``informerd_plugin_errors_total`` (no-op without metrics)."""
        if self.exporter is not None:
            self.exporter.record_plugin_error(plugin, kind)

    def _observe(self) -> None:
        """The metrics exporter and the health checks, before anything starts (they read lazily)."""
        if self.metrics_bind_address not in (None, "", "0"):
            self.exporter = MetricsExporter(
                informers=lambda: self.factory.informers if self.factory is not None else (),
                controllers=lambda: self._controllers,
                client=lambda: self._client,
                writer=lambda: self.writer,
                recorder=lambda: self.recorder,
                leader=lambda: {self.elector.name: self.elector.is_leader()} if self.elector is not None else None,
            )
        factory = lambda: self.factory.informers if self.factory is not None else ()  # noqa: E731
        self.healthz.add("ping", ping)
        self.healthz.add("watches", watches_healthy(factory, grace=self.stall_grace))
        self.healthz.add("workers", workers_not_wedged(lambda: self._controllers))
        self.readyz.add("ping", ping)
        self.readyz.add("informers", informers_synced(factory))
        if not self.leader_election:  # a standby is ready with warm caches, leading or not
            self.readyz.add("controllers", controllers_synced(lambda: self._controllers))

    def _controller(self, factory: InformerFactory, writer: ApiWriter, registration: _Registration) -> Controller:
        services = Services(writer, factory, self.recorder)
        adapter = front_door(registration.fn, services, is_async=inspect.iscoroutinefunction(registration.fn))
        options = {k: v for k, v in registration.options.items() if v is not None or k == "reconcile_timeout"}
        name = registration.options.get("name") or default_controller_name(registration.resource)
        hooks: dict[str, Any] = {}
        if self.exporter is not None:
            metrics: Any = self.exporter.reconcile_metrics(name)
            if registration.plugin is not None:
                metrics = _PluginFailures(metrics, self.exporter, registration.plugin)
            hooks = {"metrics": metrics, "queue_metrics": self.exporter.workqueue_metrics(name)}
        if self.shard.enabled:
            hooks["key_filter"] = ShardFilter(self.shard)
        options["name"] = name
        controller = Controller(
            factory,
            registration.resource,
            adapter,
            triggers=registration.triggers,
            drain_timeout=self.drain_timeout,
            **options,
            **hooks,
        )
        services.bind(controller)
        return controller

    async def serve(self) -> None:
        """Run everything until cancelled, then stop it all in order (see the module docstring).
        Raises ``LeaderElectionLostError`` when leadership is lost (the process should exit)."""
        if self._serving:
            raise ControllerStateError("a manager serves once")
        self._serving = True
        self._observe()
        client, owned = self._open_client()
        self._client = client
        try:
            await _unwrap(self._serve_and_servers(client))
        finally:
            if owned:
                client.close()
            _log.info("manager stopped", manager=self.name)

    async def _serve_and_servers(self, client: Any) -> None:
        async with anyio.create_task_group() as servers:
            await self._start_servers(servers)
            try:
                await _unwrap(self._serve_with(client))
            finally:
                servers.cancel_scope.cancel()

    async def _start_servers(self, group: anyio.abc.TaskGroup) -> None:
        """``/metrics`` and the probes come up first, so the kubelet sees the start-up and the drain."""
        servers = [("probes", probe_server(self.health_probe_bind_address or "0", self.healthz, self.readyz))]
        if self.exporter is not None:
            servers.insert(0, ("metrics", metrics_server(self.metrics_bind_address or "0", self.exporter)))
        for name, server in servers:
            if server is not None:
                self.servers[name] = await group.start(server.serve)
                _log.info("serving", server=name, address=server.url)

    async def _serve_with(self, client: Any) -> None:
        async with InformerFactory(client, namespace=self.namespace, options=self._informer_options) as factory:
            self.factory = factory
            writer = self.writer = ApiWriter(client, self._writer_options)
            if self._events:
                self.recorder = EventRecorder(writer, self.name)
            try:
                self._controllers = [self._controller(factory, writer, r) for r in self._registrations]
                for handler in self._handlers:
                    informer = await factory.informer(
                        handler.resource, namespace=handler.namespace, label_selector=handler.label_selector
                    )
                    fn = handler.fn
                    if handler.plugin is not None:
                        fn = _count_failures(fn, self, handler.plugin)
                    informer.add_handler(
                        on_notification=fn,
                        resync_period=handler.resync_period,
                        name=handler.plugin or getattr(handler.fn, "__qualname__", None),
                    )
                _log.info(
                    "manager starting",
                    manager=self.name,
                    controllers=[c.name for c in self._controllers],
                    handlers=len(self._handlers),
                    shard=str(self.shard),
                    leader_election=self.leader_election,
                )
                if self.leader_election:
                    await self._lead(factory, writer)
                else:
                    await self._run_controllers()
            finally:
                with anyio.CancelScope(shield=True):
                    if self.recorder is not None:
                        await _bridge.to_thread(self.recorder.close)
                    writer.close()

    async def _run_controllers(self) -> None:
        if not self._controllers:  # handlers only: they run in the informers; serve until cancelled
            await anyio.sleep_forever()
        async with anyio.create_task_group() as group:
            for controller, registration in zip(self._controllers, self._registrations, strict=True):
                group.start_soon(_run_logged, controller, registration.plugin, name=f"controller {controller.name}")

    async def _lead(self, factory: InformerFactory, writer: ApiWriter) -> None:
        """Warm every cache, then reconcile only while holding the Lease (controller-runtime's order)."""
        for controller in self._controllers:
            await controller.prepare()
        timeout = max((r.options["cache_sync_timeout"] for r in self._registrations), default=120.0)
        await factory.wait_synced(timeout)
        self.elector = LeaderElector(
            writer,
            self.shard.lease_name(self.leader_election_id),
            self.leader_election_namespace or _pod_namespace(),
            recorder=self.recorder,
            options=self._election_options,
        )
        _log.info("caches warm; campaigning", lease=self.elector.name, identity=self.elector.identity)
        async with self.elector.leadership():
            _log.info("leading: starting controllers", lease=self.elector.name)
            await self._run_controllers()

    def run(self, *, backend: str = "asyncio") -> None:
        """Serve until SIGTERM or SIGINT, then drain and stop; a second signal exits at once (1)."""
        anyio.run(_unwrap, self._serve_until_signalled(), backend=backend)

    async def _serve_until_signalled(self) -> None:
        async with anyio.create_task_group() as outer:
            serving = anyio.CancelScope()
            outer.start_soon(_watch_signals, serving)
            with serving:
                await self.serve()
            outer.cancel_scope.cancel()


async def _run_logged(controller: Controller, plugin: str | None) -> None:
    """Run ``controller`` with its plugin's name bound to every log line of it (its workers' tasks
    and threads inherit the context)."""
    if plugin is None:
        await controller.run()
        return
    tokens = bind_context(plugin=plugin)
    try:
        await controller.run()
    finally:
        reset_context(tokens)


class _PluginFailures:
    """A controller's ``metrics=`` hook that also counts its plugin's failed calls (errors and
    timeouts alike) in ``informerd_plugin_errors_total{kind="reconcile"}``."""

    __slots__ = ("_exporter", "_inner", "_plugin")

    def __init__(self, inner: Any, exporter: MetricsExporter, plugin: str) -> None:
        self._inner, self._exporter, self._plugin = inner, exporter, plugin

    def on_reconcile(self, result: str, seconds: float) -> None:
        if result == "error":
            self._exporter.record_plugin_error(self._plugin, "reconcile")
        self._inner.on_reconcile(result, seconds)


def _count_failures(fn: Callable[..., Any], manager: Manager, plugin: str) -> Callable[..., Any]:
    """The handler ``fn`` counting what it raises in ``informerd_plugin_errors_total{kind="handler"}``;
    the error still propagates (the handler's listener isolates and logs it)."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def counted_async(*args: Any) -> Any:
            try:
                return await fn(*args)
            except Exception:
                manager.record_plugin_error(plugin, "handler")
                raise

        return counted_async

    @functools.wraps(fn)
    def counted(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:
            manager.record_plugin_error(plugin, "handler")
            raise

    return counted


def _lone(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one error inside nested task-group wrapping, or None when there are several."""
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return None


async def _unwrap(work: Awaitable[None]) -> None:
    """Raise a lone error out of task-group wrapping (however deep) as itself (callers catch by type)."""
    try:
        await work
    except BaseExceptionGroup as group:
        error = _lone(group)
        if error is None:
            raise
        raise error from error.__cause__


def _pod_namespace() -> str:
    """The namespace a Lease goes to by default: the pod's (service account file, then
    ``POD_NAMESPACE``), else ``default``."""
    try:
        with open(_SA_NAMESPACE) as file:
            return file.read().strip() or "default"
    except OSError:
        return os.environ.get("POD_NAMESPACE") or "default"


async def _watch_signals(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            if scope.cancel_called:
                _log.warning("second signal: exiting without draining", signal=signal.Signals(signum).name)
                os._exit(1)
            _log.info("signal received: draining", signal=signal.Signals(signum).name)
            scope.cancel()
