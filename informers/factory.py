"""InformerFactory: one shared informer per (resource, namespace, selectors), for every consumer.

Asking twice for the same resource, namespace and selectors returns the same ``SharedInformer``, so
every consumer shares one watch and one cache. Resources are named by ``Resource``, by
``"group/version/plural"`` (``"v1/configmaps"`` for the core group) or by kind through discovery
(``"Deployment"``, ``"apps/v1/Deployment"``). Used as an async context manager it starts informers
as they are created and stops them all on exit. Invariant: ``wait_synced`` either returns with
every informer synced or raises ``SyncTimeoutError`` naming each unsynced informer and its last error.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from types import TracebackType

import anyio

from .client import ApiClient
from .errors import SyncTimeoutError
from .indexers import IndexFunc
from .informer import InformerOptions, SharedInformer, Transform
from .objects import strip_managed_fields
from .resources import Discovery, Resource

__all__ = ["InformerFactory"]

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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cm: anyio.abc.TaskGroup | None = None

    def resolve(self, resource: Resource | str) -> Resource:
        """A ``Resource`` from a ``Resource``, ``"group/version/plural"``, ``"v1/plural"`` or a kind."""
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

    def informer(
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
        function). If the factory is running, a new informer starts at once (safe from any thread).
        """
        res = self.resolve(resource)
        ns = (namespace or self.namespace) if res.namespaced else None
        key: _Key = (res.group, res.version, res.plural, ns, label_selector or None, field_selector or None)
        with self._lock:
            informer = self._informers.get(key)
            created = informer is None
            if informer is None:
                informer = SharedInformer(
                    self.client, res, namespace=ns, label_selector=label_selector,
                    field_selector=field_selector, indexers=indexers, transform=self.transform,
                    options=self.options,
                )
                self._informers[key] = informer
            group = self._group
        if not created and indexers:
            informer.store.add_indexers(indexers)
        if created and group is not None:
            self._start_soon(group, informer)
        return informer

    def _start_soon(self, group: anyio.abc.TaskGroup, informer: SharedInformer) -> None:
        # A task group may only be touched from its own event loop; other threads hop onto it.
        loop = self._loop
        try:
            on_loop = loop is not None and asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop or loop is None:
            group.start_soon(informer.run, name=f"informer {informer.name}")
        else:
            loop.call_soon_threadsafe(lambda: group.start_soon(informer.run, name=f"informer {informer.name}"))

    @property
    def informers(self) -> list[SharedInformer]:
        with self._lock:
            return list(self._informers.values())

    async def wait_synced(self, timeout: float | None = 120.0) -> None:
        """Wait for every informer's first full list; raise ``SyncTimeoutError`` naming the laggards."""
        with anyio.move_on_after(timeout):
            while not all(i.has_synced() for i in self.informers):
                await anyio.sleep(0.02)
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
            self._loop = asyncio.get_running_loop()
            pending = list(self._informers.values())
        for informer in pending:
            group.start_soon(informer.run, name=f"informer {informer.name}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        with self._lock:
            group, self._group = self._group, None
        if group is not None:
            group.cancel_scope.cancel()
        assert self._cm is not None
        try:
            return await self._cm.__aexit__(exc_type, exc, tb)
        finally:
            self._cm = None
            self._loop = None

    def start(self) -> None:
        """Start every informer without an event loop (plain-function handlers only)."""
        for informer in self.informers:
            informer.start()

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()
