"""FakeCluster: an in-memory apiserver that stands in for ``ApiClient``, for fast tests.

Pass a ``FakeCluster`` wherever an ``ApiClient`` goes (``InformerFactory(cluster)``,
``SharedInformer(cluster, ...)``, ``ApiWriter(cluster)``, ``Discovery(cluster)``) and everything
above the client (discovery, informers with their reflector threads and stores, controllers,
writers, the event recorder) runs unchanged, in milliseconds, without a network. It implements
the client's seam (``request``, ``get_json``, ``watch``, ``close``, ``closed``, ``config``,
``statistics``): answers >= 400 leave as the typed errors of ``api_error_from_response`` built
from real ``Status`` bodies, and 429/5xx answers carrying ``Retry-After`` are retried from the
call's ``RetryBudget`` as the real client does. The server side (``_fake_http``, ``_fake_writes``,
``_fake_store``, ``_fake_watch``) serves aggregated discovery, CRUD with the apiserver's rules,
patches, server-side apply (as a merge), selectors, pagination, resourceVersion semantics, watches
with bookmarks and the streaming list, and 410 after ``compact()``.

For tests: ``create/get/list/update/update_status/patch/apply/delete`` go through the same code
as HTTP requests (but skip the fault hooks); ``fail_next``, ``hold``, ``cut_watches``,
``stall_watches``/``resume_watches`` and ``send_bookmarks`` inject faults; ``writes`` records
every write request. The layers above annotate ``ApiClient``: in type-checked code pass the fake
through ``typing.cast(ApiClient, cluster)``. Everything is thread-safe (the reflector threads,
worker threads and the test all use it at once).
Invariant: every request either leaves the cluster unchanged and raises the typed error, or is
applied whole, gets the next cluster-wide resourceVersion and reaches every matching watch once.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson

from .._retry import RetryBudget, parse_retry_after
from .._tokenbucket import TokenBucketStatistics
from ..client import ClientStatistics, Response
from ..config import ClientConfig
from ..errors import ClientClosedError, ResourceNotFoundError
from ..resources import Resource
from . import _fake_writes as writes
from ._fake_faults import Faults, RequestHold
from ._fake_http import FakeServer
from ._fake_status import FakeStatus, bad_request
from ._fake_store import FakeStore, Kind, clone
from ._fake_watch import FakeWatchStream

__all__ = ["FakeCluster", "FakeWatchStream", "RequestHold", "RequestRecord", "WriteRecord"]

_T = TypeVar("_T")
_HOST = "https://fake-cluster.invalid"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PATCH_TYPES = {
    "merge": writes.MERGE_PATCH,
    "json": writes.JSON_PATCH,
    "strategic": writes.STRATEGIC_PATCH,
    "apply": writes.APPLY,
}

_DEFAULT_RESOURCES: tuple[tuple[Resource, bool], ...] = (
    (Resource("", "v1", "namespaces", "Namespace", namespaced=False), True),
    (Resource("", "v1", "configmaps", "ConfigMap", namespaced=True), False),
    (Resource("", "v1", "secrets", "Secret", namespaced=True), False),
    (Resource("", "v1", "pods", "Pod", namespaced=True), True),
    (Resource("", "v1", "services", "Service", namespaced=True), True),
    (Resource("", "v1", "events", "Event", namespaced=True), False),
    (Resource("apps", "v1", "deployments", "Deployment", namespaced=True), True),
    (Resource("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True), False),
    (Resource("events.k8s.io", "v1", "events", "Event", namespaced=True), False),
)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the cluster answered. ``verb`` is ``LIST``/``WATCH`` for collection reads, else
    the method; ``source`` is ``"client"`` (through the ApiClient seam) or ``"test"`` (the helpers)."""

    method: str
    verb: str
    path: str
    query: Mapping[str, str]
    status: int
    source: str


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One write request (POST, PUT, PATCH, DELETE), whatever its outcome."""

    method: str
    path: str
    query: Mapping[str, str]
    body: Any
    """The decoded JSON body (None for none)."""
    content_type: str
    status: int
    source: str


def _query(query: Mapping[str, Any] | None) -> dict[str, str]:
    """Query values as the wire has them (bools as ``true``/``false``; None dropped)."""
    out: dict[str, str] = {}
    for key, value in (query or {}).items():
        if isinstance(value, (list, tuple)):
            value = value[-1] if value else None
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _decode(body: bytes | str | Mapping[str, Any] | Sequence[Any] | None) -> Any:
    if body is None or isinstance(body, (Mapping, list)):
        return body
    if isinstance(body, (bytes, str)):
        try:
            return orjson.loads(body) if body else None
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"the request body is not JSON: {exc}") from exc
    return list(body)


class FakeCluster:
    """An in-memory apiserver with the ``ApiClient`` interface; see the module docstring.

    ``default_resources`` (default True) serves namespaces, configmaps, secrets, pods, services,
    events (core and events.k8s.io/v1), leases and deployments; ``register`` adds more (CRDs).
    ``streaming_lists`` (default True): honour ``sendInitialEvents``; False answers it with 422,
    as a server without the WatchList feature does. ``config``: what ``cluster.config`` returns
    (default: a dummy host, client-side throttling off).

    The test helpers name a resource by ``Resource`` or by plural, kind, ``v1/configmaps`` or
    ``example.com/v1/widgets``; a namespaced object's namespace is the ``namespace`` argument, else
    its own ``metadata.namespace``, else ``default`` (as kubectl). They raise the typed errors too.
    """

    def __init__(
        self, *, default_resources: bool = True, streaming_lists: bool = True, config: ClientConfig | None = None
    ) -> None:
        self.config = config or ClientConfig(host=_HOST, qps=-1.0)
        self._store = FakeStore()
        self._stalled = False  # guarded by the store's lock
        self._server = FakeServer(self._store, streaming_lists=streaming_lists, stalled=lambda: self._stalled)
        self._lock = threading.Lock()  # records, open watches, counters
        self._closed = threading.Event()
        self._faults = Faults()
        self._watches: list[FakeWatchStream] = []
        self._requests: list[RequestRecord] = []
        self._writes: list[WriteRecord] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self._retries = 0
        self._in_flight = 0
        if default_resources:
            for resource, status in _DEFAULT_RESOURCES:
                self.register(resource, status_subresource=status)

    # -- resources -------------------------------------------------------------------------------

    def register(self, resource: Resource, *, status_subresource: bool = False) -> Resource:
        """Serve ``resource`` (a CRD, say) from now on; returns it with its verbs filled in.
        ``status_subresource``: serve ``/status`` and apply the status rules to writes."""
        return self._store.register(resource, status_subresource=status_subresource).resource

    @property
    def resources(self) -> list[Resource]:
        return [kind.resource for kind in self._store.kinds()]

    @property
    def resource_version(self) -> str:
        """The cluster-wide resourceVersion of the last write."""
        return str(self._store.resource_version)

    def compact(self, resource_version: str | int | None = None) -> str:
        """Make versions older than ``resource_version`` (default: the current one) answer 410 Gone:
        a watch from one gets an ERROR event, a list at one (``Exact``, or a continue token) a 410."""
        return str(self._store.compact(None if resource_version is None else int(resource_version)))

    # -- the ApiClient seam ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: bytes | str | Mapping[str, Any] | list[Any] | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        budget: RetryBudget | None = None,
    ) -> Response:
        """``ApiClient.request``: the answer, or the typed error (``timeout`` is ignored)."""
        method = method.upper()
        path, params = self._split(path, query)
        accept = next((v for k, v in (headers or {}).items() if k.lower() == "accept"), "application/json")

        def attempt() -> Response:
            decoded = _decode(body)
            status, answer_headers, payload = self._exchange(
                method, path, params, decoded, content_type, accept, source="client"
            )
            return Response(status=status, headers=answer_headers, body=payload)

        return self._with_retries(method, path, budget, attempt)

    def get_json(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        """``ApiClient.get_json``."""
        return self.request("GET", path, query=query).json()

    def watch(self, path: str, query: Mapping[str, Any] | None = None, *, idle_timeout: float) -> FakeWatchStream:
        """``ApiClient.watch``: an open ``FakeWatchStream`` (the ``WatchStream`` interface)."""
        if not idle_timeout > 0:
            raise ValueError("idle_timeout must be a positive number of seconds")
        path, params = self._split(path, query)
        params.setdefault("watch", "true")

        def attempt() -> FakeWatchStream:
            try:
                self._faults.before("WATCH", "GET", path)
                stream = self._server.open_watch(path, params, idle_timeout=idle_timeout, on_release=self._watch_done)
            except FakeStatus as refusal:
                self._record("GET", "WATCH", path, params, None, "", refusal.code, "client")
                raise
            self._record("GET", "WATCH", path, params, None, "", 200, "client")
            with self._lock:
                self._watches.append(stream)
            return stream

        stream = self._with_retries("GET", path, None, attempt)
        if self.closed:
            stream.close()
        return stream

    def close(self) -> None:
        """Close every open watch and fail held and later requests with ``ClientClosedError``.
        The cluster's data stays readable through the test helpers."""
        self._closed.set()
        self._faults.close()
        with self._lock:
            watches = list(self._watches)
        for stream in watches:
            stream.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __enter__(self) -> FakeCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def statistics(self) -> ClientStatistics:
        """``ApiClient.statistics``: no throttling, no connection retries."""
        with self._lock:
            burst = self.config.burst
            return ClientStatistics(
                host=_HOST.split("//", 1)[1],
                requests=dict(self._counts),
                retries=self._retries,
                connection_retries=0,
                throttle_waits=0,
                long_throttle_waits=0,
                throttle_seconds=0.0,
                in_flight=self._in_flight,
                open_watches=len(self._watches),
                token_bucket=TokenBucketStatistics(
                    rate=self.config.qps,
                    burst=burst,
                    tokens=float(burst),
                    reservations=0,
                    delayed_reservations=0,
                    total_delay_seconds=0.0,
                ),
            )

    # -- faults ----------------------------------------------------------------------------------

    def fail_next(
        self, method: str, path_prefix: str, status: int, times: int = 1, retry_after: float | None = None
    ) -> None:
        """Answer the next ``times`` client requests matching ``method`` and ``path_prefix`` with
        ``status`` (a Status body; ``Retry-After: retry_after`` when given). ``method``: an HTTP
        method (``GET`` covers lists and watches), ``LIST``, ``WATCH``, or ``*``."""
        self._faults.fail_next(method, path_prefix, status, times, retry_after)

    def hold(self, method: str = "LIST", path_prefix: str = "") -> RequestHold:
        """Make matching client requests block until the returned hold is released (a LIST that
        hangs, for "stop while blocked" tests). ``method`` as for ``fail_next``."""
        return self._faults.hold(method, path_prefix)

    def cut_watches(self) -> int:
        """End every open watch as a dropped connection (its reader raises ``TransportError``);
        returns how many were cut. Later watches work."""
        with self._lock:
            watches = list(self._watches)
        for stream in watches:
            stream.cut()
        return len(watches)

    def stall_watches(self) -> None:
        """Stop delivering on every watch, open or opened later (a half-open connection): readers
        see nothing until ``resume_watches()`` or their idle deadline (``StreamStalledError``)."""
        with self._store.lock:
            self._stalled = True

    def resume_watches(self) -> None:
        with self._store.changed:
            self._stalled = False
            self._store.changed.notify_all()

    def send_bookmarks(self) -> None:
        """Send a BOOKMARK at the current resourceVersion on every watch that allows bookmarks."""
        with self._store.changed:
            rv = str(self._store.resource_version)
            for stream in self._store.listeners():
                if isinstance(stream, FakeWatchStream) and stream.bookmarks:
                    stream.push_bookmark(rv)
            self._store.changed.notify_all()

    @property
    def open_watches(self) -> int:
        with self._lock:
            return len(self._watches)

    # -- records ---------------------------------------------------------------------------------

    @property
    def writes(self) -> list[WriteRecord]:
        """Every write request so far, in order (``source`` tells the client's from the helpers')."""
        with self._lock:
            return list(self._writes)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def clear_records(self) -> None:
        with self._lock:
            self._writes.clear()
            self._requests.clear()

    # -- test helpers: the same code path as requests, without the faults -------------------------

    def create(
        self, resource: Resource | str, obj: Mapping[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        kind = self._kind(resource)
        return self._call("POST", kind.resource.path(self._namespace(kind, obj, namespace)), body=obj)

    def get(self, resource: Resource | str, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        kind = self._kind(resource)
        return self._call("GET", kind.resource.path(self._namespace(kind, None, namespace), name))

    def list(
        self,
        resource: Resource | str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """The objects (all namespaces unless ``namespace``), sorted by namespace and name, each with
        its ``kind`` and ``apiVersion`` (as an informer caches them)."""
        kind = self._kind(resource)
        ns = namespace if kind.resource.namespaced else None
        body = self._call(
            "GET",
            kind.resource.path(ns or None),
            query={"labelSelector": label_selector, "fieldSelector": field_selector},
        )
        res = kind.resource
        return [{"apiVersion": res.api_version, "kind": res.kind, **item} for item in body["items"]]

    def update(
        self, resource: Resource | str, obj: Mapping[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        """PUT ``obj`` (conditional on its resourceVersion when it has one)."""
        return self._put(resource, obj, namespace, None)

    def update_status(
        self, resource: Resource | str, obj: Mapping[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        return self._put(resource, obj, namespace, "status")

    def patch(
        self,
        resource: Resource | str,
        name: str,
        patch: Mapping[str, Any] | Sequence[Any],
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """``patch_type``: ``merge``, ``json``, ``strategic``, ``apply`` or a content type."""
        kind = self._kind(resource)
        path = kind.resource.path(self._namespace(kind, None, namespace), name, subresource)
        return self._call(
            "PATCH",
            path,
            body=patch,
            content_type=_PATCH_TYPES.get(patch_type, patch_type),
            query={"fieldManager": field_manager},
        )

    def apply(
        self,
        resource: Resource | str,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str = "fake-cluster",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply (create, or merge over the live object)."""
        kind = self._kind(resource)
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("apply needs metadata.name")
        body = {"apiVersion": kind.resource.api_version, "kind": kind.resource.kind, **obj}
        path = kind.resource.path(self._namespace(kind, obj, namespace), name, subresource)
        return self._call("PATCH", path, body=body, content_type=writes.APPLY, query={"fieldManager": field_manager})

    def delete(
        self,
        resource: Resource | str,
        name: str,
        *,
        namespace: str | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """DELETE; returns the final state (or, with finalizers, the object now being deleted)."""
        kind = self._kind(resource)
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": preconditions} if preconditions else None
        return self._call("DELETE", kind.resource.path(self._namespace(kind, None, namespace), name), body=body)

    # -- internals -------------------------------------------------------------------------------

    def _kind(self, resource: Resource | str) -> Kind:
        if isinstance(resource, Resource):
            kind = self._store.find(resource.group, resource.version, resource.plural)
        else:
            kind = self._store.find_any(resource)
        if kind is None:
            raise ResourceNotFoundError(
                f"the FakeCluster does not serve {resource}; register it first", reason="NotFound"
            )
        return kind

    @staticmethod
    def _namespace(kind: Kind, obj: Mapping[str, Any] | None, namespace: str | None) -> str | None:
        if not kind.resource.namespaced:
            return None
        own = ((obj or {}).get("metadata") or {}).get("namespace")
        return namespace or own or "default"

    def _put(
        self, resource: Resource | str, obj: Mapping[str, Any], namespace: str | None, subresource: str | None
    ) -> dict[str, Any]:
        kind = self._kind(resource)
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("an update needs metadata.name")
        return self._call("PUT", kind.resource.path(self._namespace(kind, obj, namespace), name, subresource), body=obj)

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        params = _query(query)
        try:
            _, _, payload = self._exchange(
                method, path, params, _decode(body), content_type, "application/json", source="test"
            )
        except FakeStatus as refusal:
            raise refusal.error(method, path) from None
        decoded: dict[str, Any] = orjson.loads(payload)
        return decoded

    @staticmethod
    def _split(path: str, query: Mapping[str, Any] | None) -> tuple[str, dict[str, str]]:
        params = _query(query)
        if "?" in path:
            path, _, encoded = path.partition("?")
            params = {**dict(parse_qsl(encoded, keep_blank_values=True)), **params}
        return path, params

    def _exchange(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Any,
        content_type: str,
        accept: str,
        *,
        source: str,
    ) -> tuple[int, dict[str, str], bytes]:
        verb = self._server.verb(method, path, params)
        with self._lock:
            self._in_flight += 1
        try:
            if source == "client":
                self._faults.before(verb, method, path)
            status, headers, payload = self._server.handle(method, path, params, body, content_type, accept)
        except FakeStatus as refusal:
            self._record(method, verb, path, params, body, content_type, refusal.code, source)
            raise
        finally:
            with self._lock:
                self._in_flight -= 1
        self._record(method, verb, path, params, body, content_type, status, source)
        return status, headers, payload

    def _with_retries(self, method: str, path: str, budget: RetryBudget | None, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt`` as the real client sends a call: 429/5xx with ``Retry-After`` repeat from
        the call's budget; other refusals leave as the typed error."""
        if budget is None:
            budget = RetryBudget(self.config.max_retries, connection_retries=self.config.connection_retries)
        while True:
            if self.closed:
                raise ClientClosedError(f"{method} {path}: the FakeCluster is closed")
            budget.start_attempt()
            try:
                return attempt()
            except FakeStatus as refusal:
                wait = parse_retry_after(refusal.headers.get("Retry-After"))
                if (
                    (refusal.code == 429 or refusal.code >= 500)
                    and wait is not None
                    and budget.retry_in_client
                    and budget.spend()
                ):
                    with self._lock:
                        self._retries += 1
                    self._closed.wait(wait)
                    continue
                raise refusal.error(method, path) from None

    def _record(
        self,
        method: str,
        verb: str,
        path: str,
        query: Mapping[str, str],
        body: Any,
        content_type: str,
        status: int,
        source: str,
    ) -> None:
        frozen = dict(query)
        snapshot = clone(body) if method in _WRITES and body is not None else None
        with self._lock:
            self._requests.append(RequestRecord(method, verb, path, frozen, status, source))
            if source == "client":
                self._counts[(method, f"{str(status)[0]}xx")] += 1
            if method in _WRITES:
                self._writes.append(WriteRecord(method, path, frozen, snapshot, content_type, status, source))

    def _watch_done(self, stream: FakeWatchStream) -> None:
        with self._lock:
            if stream in self._watches:
                self._watches.remove(stream)
