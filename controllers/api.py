"""Writes addressed by resource name: ``ctx.api("v1/configmaps").apply(obj)``.

``Api`` (coroutines) and ``BlockingApi`` (plain calls, for threads) are two doors to one
implementation, ``ApiWriter``: the blocking form calls it in place, the async form hands the same
call to a worker thread through the bridge, so retries, the circuit breaker, the in-flight cap and
the retry budget are identical. The resource is named as ``InformerFactory.resolve`` accepts it
(``"v1/configmaps"``, ``"apps/v1/Deployment"``, ``"Widget"`` or a ``Resource``) and resolved once,
through discovery, on first use. A namespaced object without ``metadata.namespace`` goes to the
``namespace`` the API was opened with (a reconcile context opens it in the object's namespace).
Invariant: every request of both forms goes through the same ``ApiWriter`` instance.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from informers import _bridge
from informers.objects import RawObject
from informers.resources import Resource

from .writer import ApiWriter

__all__ = ["Api", "BlockingApi", "Resolver"]

_Patch = Mapping[str, Any] | Sequence[Mapping[str, Any]]


class Resolver(Protocol):
    """What the APIs need to turn a name into a ``Resource`` (an ``InformerFactory`` provides it)."""

    async def resolve(self, resource: Resource | str) -> Resource: ...

    def resolve_blocking(self, resource: Resource | str) -> Resource: ...


_OBJECT_VERBS = frozenset({"create", "update", "update_status", "apply"})  # first argument: the object


class _Target:
    """What both forms share: the writer, the resource (resolved lazily), the default namespace,
    and how one verb becomes one ``ApiWriter`` call."""

    __slots__ = ("name", "namespace", "resolver", "resource", "writer")

    def __init__(self, writer: ApiWriter, resolver: Resolver, resource: Resource | str, namespace: str | None):
        self.writer = writer
        self.resolver = resolver
        self.name = resource
        self.namespace = namespace
        self.resource = resource if isinstance(resource, Resource) else None

    def call(self, verb: str, resource: Resource, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], Any]:
        """The writer call for ``verb``, with the namespace defaulted (object's, then the API's)."""
        namespace = kwargs.pop("namespace", None)
        if resource.namespaced and not namespace:
            own = args[0].get("metadata", {}).get("namespace") if verb in _OBJECT_VERBS else None
            namespace = own or self.namespace
        if not resource.namespaced:
            namespace = None
        return functools.partial(getattr(self.writer, verb), resource, *args, namespace=namespace, **kwargs)


class Api:
    """Coroutine writes to one resource; see the module docstring. Keyword options are those of the
    ``ApiWriter`` method of the same name (``field_manager``, ``dry_run``, ``force``...)."""

    def __init__(
        self, writer: ApiWriter, resolver: Resolver, resource: Resource | str, *, namespace: str | None = None
    ) -> None:
        self._t = _Target(writer, resolver, resource, namespace)

    async def resource(self) -> Resource:
        """The resolved ``Resource`` (discovery runs off the loop, once)."""
        if self._t.resource is None:
            self._t.resource = await self._t.resolver.resolve(self._t.name)
        return self._t.resource

    async def _run(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        call = self._t.call(verb, await self.resource(), args, kwargs)
        return await _bridge.to_thread(call)

    async def get(self, name: str, *, namespace: str | None = None) -> RawObject:
        """A live read (reconcilers normally read their caches)."""
        return await self._run("get", name, namespace=namespace)  # type: ignore[no-any-return]

    async def create(self, obj: Mapping[str, Any], **kwargs: Any) -> RawObject:
        return await self._run("create", obj, **kwargs)  # type: ignore[no-any-return]

    async def update(self, obj: Mapping[str, Any], **kwargs: Any) -> RawObject:
        return await self._run("update", obj, **kwargs)  # type: ignore[no-any-return]

    async def update_status(self, obj: Mapping[str, Any], **kwargs: Any) -> RawObject:
        return await self._run("update_status", obj, **kwargs)  # type: ignore[no-any-return]

    async def patch(self, name: str, patch: _Patch, **kwargs: Any) -> RawObject:
        """A merge patch unless ``patch_type=PatchType.JSON`` (or ``STRATEGIC``)."""
        return await self._run("patch", name, patch, **kwargs)  # type: ignore[no-any-return]

    async def patch_status(self, name: str, patch: _Patch, **kwargs: Any) -> RawObject:
        return await self._run("patch_status", name, patch, **kwargs)  # type: ignore[no-any-return]

    async def apply(self, obj: Mapping[str, Any], **kwargs: Any) -> RawObject:
        """Server-side apply (creates if missing; the writer's field manager unless given)."""
        return await self._run("apply", obj, **kwargs)  # type: ignore[no-any-return]

    async def delete(self, name: str, **kwargs: Any) -> RawObject | None:
        """Delete; None if it was already gone."""
        return await self._run("delete", name, **kwargs)  # type: ignore[no-any-return]


class BlockingApi:
    """The same calls as ``Api`` for plain functions running in a thread (sync reconcilers)."""

    def __init__(
        self, writer: ApiWriter, resolver: Resolver, resource: Resource | str, *, namespace: str | None = None
    ) -> None:
        self._t = _Target(writer, resolver, resource, namespace)

    def resource(self) -> Resource:
        if self._t.resource is None:
            self._t.resource = self._t.resolver.resolve_blocking(self._t.name)
        return self._t.resource

    def _run(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        return self._t.call(verb, self.resource(), args, kwargs)()

    def get(self, name: str, *, namespace: str | None = None) -> RawObject:
        return self._run("get", name, namespace=namespace)  # type: ignore[no-any-return]

    def create(self, obj: Mapping[str, Any], **kwargs: Any) -> RawObject:
        return self._run("create", obj, **kwargs)  # type: ignore[no-any-return]

    def update(self, obj: Mapping[str, Any], **kwargs: Any) -> RawObject:
        return self._run("update", obj, **kwargs)  # type: ignore[no-any-return]

    def update_status(self, obj: Mapping[str, Any], **kwargs: Any) -> RawObject:
        return self._run("update_status", obj, **kwargs)  # type: ignore[no-any-return]

    def patch(self, name: str, patch: _Patch, **kwargs: Any) -> RawObject:
        return self._run("patch", name, patch, **kwargs)  # type: ignore[no-any-return]

    def patch_status(self, name: str, patch: _Patch, **kwargs: Any) -> RawObject:
        return self._run("patch_status", name, patch, **kwargs)  # type: ignore[no-any-return]

    def apply(self, obj: Mapping[str, Any], **kwargs: Any) -> RawObject:
        return self._run("apply", obj, **kwargs)  # type: ignore[no-any-return]

    def delete(self, name: str, **kwargs: Any) -> RawObject | None:
        return self._run("delete", name, **kwargs)  # type: ignore[no-any-return]
