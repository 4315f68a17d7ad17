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
import inspect
import os
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.abc

from informers import _bridge
from informers._log import get_logger
from informers.client import ApiClient
from informers.config import ClientConfig, load_config
from informers.factory import InformerFactory
from informers.informer import InformerOptions
from informers.resources import Resource

from .context import Services, front_door
from .controller import Controller
from .errors import ControllerStateError
from .predicates import Predicate
from .ratelimit import RateLimiter
from .recorder import EventRecorder
from .triggers import ObjectMapper, Trigger
from .triggers import owns as owns_trigger
from .triggers import watches as watches_trigger
from .writer import ApiWriter, WriterOptions, client_config_for_workers

__all__ = ["Manager"]

_log = get_logger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclasses.dataclass
class _Registration:
    """A reconciler declared with ``@reconcile``; its Controller is built when ``serve`` starts."""

    fn: Callable[..., Any]
    resource: Resource | str
    triggers: list[Trigger]
    options: dict[str, Any]


@dataclasses.dataclass
class _Handler:
    resource: Resource | str
    fn: Callable[..., Any]
    namespace: str | None
    label_selector: str | None
    resync_period: float | None


class Manager:
    """See the module docstring. ``name`` labels the event recorder (``reportingController``) and is
    the default field manager of writes; ``namespace`` scopes every informer (default: all
    namespaces); ``events=False`` records no Kubernetes Events; ``drain_timeout`` (seconds, default
    30) bounds how long a stop waits for in-flight reconciles."""

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
    ) -> None:
        self.name = name
        self.namespace = namespace
        self._config = config
        self._client: Any = client
        self._informer_options = informer_options
        self._writer_options = writer_options or WriterOptions(field_manager=field_manager or name)
        self._events = events
        self.drain_timeout = drain_timeout
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
    ) -> Callable[[_F], _F]:
        """Register ``async def fn(ctx: Context)`` (or ``def fn(ctx: BlockingContext)``) as the
        reconciler of ``resource``, keyed by UID. ``owns``: child resources whose controller owner
        is enqueued (``ctx.own(child)`` sets that reference); ``watches``: other resources with a
        mapper from their objects to primary UIDs/objects. ``workers`` (default 1) reconciles run
        at once; ``timeout`` (seconds, default none) bounds each one; the rest as ``Controller``.
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
            self._registrations.append(_Registration(fn, resource, triggers, options))
            return fn

        return register

    def on(
        self,
        resource: Resource | str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        resync_period: float | None = None,
    ) -> Callable[[_F], _F]:
        """Register ``fn(notification)`` (plain or ``async def``) for every notification of
        ``resource``'s shared informer (``ObjectAdded``/``ObjectUpdated``/``ObjectDeleted``). It
        runs isolated: if it raises, the error is logged and counted and it keeps receiving."""

        def register(fn: _F) -> _F:
            if self._serving:
                raise ControllerStateError("register handlers before the manager starts")
            self._handlers.append(_Handler(resource, fn, namespace, label_selector, resync_period))
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
        return ApiClient(client_config_for_workers(config, workers, watches=watches)), True

    def _controller(self, factory: InformerFactory, writer: ApiWriter, registration: _Registration) -> Controller:
        services = Services(writer, factory, self.recorder)
        adapter = front_door(registration.fn, services, is_async=inspect.iscoroutinefunction(registration.fn))
        options = {k: v for k, v in registration.options.items() if v is not None or k == "reconcile_timeout"}
        controller = Controller(
            factory,
            registration.resource,
            adapter,
            triggers=registration.triggers,
            drain_timeout=self.drain_timeout,
            **options,
        )
        services.bind(controller)
        return controller

    async def serve(self) -> None:
        """Run everything until cancelled, then stop it all in order (see the module docstring)."""
        if self._serving:
            raise ControllerStateError("a manager serves once")
        self._serving = True
        client, owned = self._open_client()
        try:
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
                        informer.add_handler(
                            on_notification=handler.fn,
                            resync_period=handler.resync_period,
                            name=getattr(handler.fn, "__qualname__", None),
                        )
                    _log.info(
                        "manager starting",
                        manager=self.name,
                        controllers=[c.name for c in self._controllers],
                        handlers=len(self._handlers),
                    )
                    async with anyio.create_task_group() as group:
                        for controller in self._controllers:
                            group.start_soon(controller.run, name=f"controller {controller.name}")
                finally:
                    with anyio.CancelScope(shield=True):
                        if self.recorder is not None:
                            await _bridge.to_thread(self.recorder.close)
                        writer.close()
        finally:
            if owned:
                client.close()
            _log.info("manager stopped", manager=self.name)

    def run(self, *, backend: str = "asyncio") -> None:
        """Serve until SIGTERM or SIGINT, then drain and stop; a second signal exits at once (1)."""
        anyio.run(self._serve_until_signalled, backend=backend)

    async def _serve_until_signalled(self) -> None:
        async with anyio.create_task_group() as outer:
            serving = anyio.CancelScope()
            outer.start_soon(_watch_signals, serving)
            with serving:
                await self.serve()
            outer.cancel_scope.cancel()


async def _watch_signals(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            if scope.cancel_called:
                _log.warning("second signal: exiting without draining", signal=signal.Signals(signum).name)
                os._exit(1)
            _log.info("signal received: draining", signal=signal.Signals(signum).name)
            scope.cancel()
