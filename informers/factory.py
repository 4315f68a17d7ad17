"""InformerFactory: one shared informer per (resource, namespace, selectors), for every consumer.

Asking twice for the same resource, namespace and selectors returns the same ``SharedInformer``, so
every consumer shares one watch and one cache. Resources are named by ``Resource``, by
``"group/version/plural"`` (``"v1/configmaps"`` for the core group) or by kind through discovery
(``"Deployment"``, ``"apps/v1/Deployment"``); discovery's HTTP runs off the event loop, so
``informer()`` and ``resolve()`` are awaitable. Used as an async context manager the factory runs
its informers as tasks (started as they are created) and stops them all on exit. Code without an
event loop uses ``factory.blocking()``: the same factory, run on a private loop thread.
Invariant: ``wait_synced`` either returns with every informer synced or raises ``SyncTimeoutError``
naming each unsynced informer and its last error.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from . import _bridge
from .client import ApiClient
from .errors import SyncTimeoutError
from .indexers import IndexFunc
from .informer import InformerOptions, SharedInformer, Transform
from .objects import strip_managed_fields
from .resources import Discovery, Resource

__all__ = ["BlockingFactory", "InformerFactory"]

_Key = tuple[str, str, str, str | None, str | None, str | None]


class InformerFactory:
    def __init__(
        self,
        client: ApiClient,
        *,
        namespace: str | None = None,
        options: InformerOptions | None = None,
        transform: Transform | None = strip_managed_fields,
        discovery: Discovery | None = None,
    ) -> None:
        """``namespace``: default namespace scope of informers (``None``: all namespaces).
        ``options``/``transform``: defaults for every informer the factory creates."""
        self.client = client
        self.namespace = namespace or None
        self.options = options or InformerOptions()
        self.transform = transform
        self.discovery = discovery or Discovery(client)
        self._lock = threading.Lock()
        self._informers: dict[_Key, SharedInformer] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._loop: _bridge.Loop | None = None
        self._cm: anyio.abc.TaskGroup | None = None

    async def resolve(self, resource: Resource | str) -> Resource:
        """A ``Resource`` from a ``Resource``, ``"group/version/plural"``, ``"v1/plural"`` or a kind
        (discovery's requests run on a worker thread)."""
        if isinstance(resource, Resource):
            return resource
        return await _bridge.to_thread(self.resolve_blocking, resource)

    def resolve_blocking(self, resource: Resource | str) -> Resource:
        """The thread form of ``resolve``; never call it on the event loop."""
        if isinstance(resource, Resource):
            return resource
        parts = resource.split("/")
        if len(parts) == 1:
            return self.discovery.resolve_kind(parts[0])
        api_version, last = "/".join(parts[:-1]), parts[-1]
        if last[:1].isupper():
            return self.discovery.resolve_kind(last, api_version)
        group, version = ("", parts[0]) if len(parts) == 2 else (parts[0], parts[1])
        return self.discovery.resolve(group, version, last)

    async def informer(
        self,
        resource: Resource | str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
    ) -> SharedInformer:
        """The shared informer for this resource/namespace/selectors, created on first use.

        ``indexers`` are added to the informer (existing ones with the same name must be the same
        function). If the factory is running, a new informer starts at once.
        """
        res = await self.resolve(resource)
        return self.informer_for(
            res, namespace=namespace, label_selector=label_selector, field_selector=field_selector, indexers=indexers
        )

    def informer_for(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
    ) -> SharedInformer:
        """``informer`` for an already resolved ``Resource``: no I/O, safe from any thread."""
        ns = (namespace or self.namespace) if resource.namespaced else None
        key: _Key = (
            resource.group,
            resource.version,
            resource.plural,
            ns,
            label_selector or None,
            field_selector or None,
        )
        with self._lock:
            informer = self._informers.get(key)
            created = informer is None
            if informer is None:
                informer = SharedInformer(
                    self.client,
                    resource,
                    namespace=ns,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    indexers=indexers,
                    transform=self.transform,
                    options=self.options,
                )
                self._informers[key] = informer
            group, loop = self._group, self._loop
        if not created and indexers:
            informer.store.add_indexers(indexers)
        if created and group is not None and loop is not None:
            # A task group may only be touched from its own event loop; other threads hop onto it.
            loop.run_sync(lambda: group.start_soon(informer.run, name=f"informer {informer.name}"))
        return informer

    @property
    def informers(self) -> list[SharedInformer]:
        with self._lock:
            return list(self._informers.values())

    async def wait_synced(self, timeout: float | None = 120.0) -> None:
        """Wait for every informer's first full list; raise ``SyncTimeoutError`` naming the laggards."""
        with anyio.move_on_after(timeout):
            while laggards := [i for i in self.informers if not i.has_synced()]:
                for informer in laggards:  # then look again: informers may have been added
                    await informer.wait_synced()
        laggards = [i for i in self.informers if not i.has_synced()]
        if laggards:
            causes = {i.name: i.last_error for i in laggards}
            detail = "; ".join(
                f"{name}: {'no error yet (still listing)' if err is None else f'{type(err).__name__}: {err}'}"
                for name, err in causes.items()
            )
            raise SyncTimeoutError(f"{len(laggards)} informer(s) not synced after {timeout} s: {detail}", causes)

    async def __aenter__(self) -> InformerFactory:
        self._cm = anyio.create_task_group()
        group = await self._cm.__aenter__()
        with self._lock:
            self._group = group
            self._loop = _bridge.Loop.current()
            pending = list(self._informers.values())
        for informer in pending:
            group.start_soon(informer.run, name=f"informer {informer.name}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        with self._lock:
            group, self._group = self._group, None
            self._loop = None
        if group is not None:
            group.cancel_scope.cancel()
        assert self._cm is not None
        try:
            return await self._cm.__aexit__(exc_type, exc, tb)
        finally:
            self._cm = None

    def blocking(self, backend: str = "asyncio") -> BlockingFactory:
        """This factory for code without an event loop (see ``BlockingFactory``)."""
        return BlockingFactory(self, backend=backend)


class BlockingFactory:
    """The thread-friendly form of an ``InformerFactory``: ``with factory.blocking() as f:`` runs
    the factory on a private event-loop thread until the block ends. Its methods are the async
    ones, called through that loop, so there is one implementation. Store reads and
    ``add_handler`` need no loop and are called on the informers directly.
    """

    def __init__(self, factory: InformerFactory, *, backend: str = "asyncio") -> None:
        self.factory = factory
        self._loop = _bridge.BackgroundLoop(backend)

    def __enter__(self) -> BlockingFactory:
        self._loop.__enter__()
        try:
            self._loop.enter(self.factory)
        except BaseException:
            self._loop.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._loop.__exit__(*exc_info)

    def informer(self, resource: Resource | str, **kwargs: Any) -> SharedInformer:
        """``InformerFactory.informer``, from a thread."""
        informer: SharedInformer = self._loop.call(lambda: self.factory.informer(resource, **kwargs))
        return informer

    def wait_synced(self, timeout: float | None = 120.0) -> None:
        """``InformerFactory.wait_synced``, from a thread."""
        self._loop.call(self.factory.wait_synced, timeout)

    @property
    def informers(self) -> list[SharedInformer]:
        return self.factory.informers
