"""The fake apiserver's HTTP surface: URL routing, discovery documents, reads, writes and watches.

``FakeServer.handle`` answers one request as the apiserver would, from ``FakeStore``: aggregated
discovery (``/api``, ``/apis`` as ``APIGroupDiscoveryList`` when asked for, else the legacy
documents), GET of one object, LIST with selectors, ``limit``/``continue`` pagination over one
snapshot and the ``resourceVersion``/``resourceVersionMatch`` rules the reflector relies on
(``0`` or none: now; ``NotOlderThan``: now, 504 if the version is in the future; ``Exact``: that
snapshot, 410 if compacted), and the writes of ``_fake_writes``. ``open_watch`` starts a
``FakeWatchStream``: a streaming list (``sendInitialEvents``: ADDED for every object, then the
BOOKMARK annotated ``k8s.io/initial-events-end``), a replay from an older version (an ERROR 410
event if it was compacted), or the current state followed by changes.
Invariant: a refusal is raised as ``FakeStatus`` before anything changes, and a watch's replay and
its registration for later changes happen under one hold of the store's lock (no gap, no duplicate).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from . import _fake_writes as writes
from ._fake_select import Selector, parse_selectors
from ._fake_status import FakeStatus, bad_request, expired, invalid, not_found, too_large
from ._fake_store import FakeStore, Key, Kind
from ._fake_watch import FakeWatchStream

__all__ = ["FakeServer", "Route"]

_JSON = {"Content-Type": "application/json"}
_AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_NO_RESOURCE = "the server could not find the requested resource"
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter."
)


@dataclass(frozen=True, slots=True)
class Route:
    """What a path names: a discovery document, or a resource's collection, object or subresource."""

    discovery: str | None = None
    """``"api"``, ``"apis"`` or a group-version path for the legacy resource list."""
    kind: Kind | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"invalid {what} {value!r}") from None


def _token(snapshot: int, after: Key) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"rv": snapshot, "start": list(after)})).decode()


def _untoken(token: str) -> tuple[int, Key]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (binascii.Error, orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
        raise bad_request(f"continue key is not valid: {token!r}") from None


class FakeServer:
    def __init__(self, store: FakeStore, *, streaming_lists: bool, stalled: Callable[[], bool]) -> None:
        self.store = store
        self.streaming_lists = streaming_lists
        self._stalled = stalled

    # -- routing ---------------------------------------------------------------------------------

    def route(self, path: str) -> Route:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts in (["api"], ["apis"]):
            return Route(discovery=parts[0])
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise FakeStatus(404, _NO_RESOURCE)
        if not rest:
            return Route(discovery=f"{group}/{version}" if group else version)
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            scoped = self.store.find(group, version, rest[2])
            if scoped is not None and scoped.resource.namespaced:
                namespace, rest = rest[1], rest[2:]
        kind = self.store.find(group, version, rest[0])
        if kind is None or len(rest) > 3:
            raise FakeStatus(404, _NO_RESOURCE)
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if (subresource is not None and (subresource != "status" or not kind.status_subresource)) or (
            kind.resource.namespaced and name is not None and namespace is None
        ):
            raise FakeStatus(404, _NO_RESOURCE)
        return Route(kind=kind, namespace=namespace, name=name, subresource=subresource)

    def verb(self, method: str, path: str, query: Mapping[str, str]) -> str:
        """``LIST`` or ``WATCH`` for collection reads, else the HTTP method (for fault matching)."""
        if method != "GET":
            return method
        if query.get("watch") in ("true", "1"):
            return "WATCH"
        try:
            route = self.route(path)
        except FakeStatus:
            return method
        return "LIST" if route.kind is not None and route.name is None else method

    # -- requests --------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: Mapping[str, str], body: Any, content_type: str, accept: str
    ) -> tuple[int, dict[str, str], bytes]:
        route = self.route(path)
        if route.discovery is not None:
            if method != "GET":
                raise FakeStatus(405, "the server does not allow this method on the requested resource")
            return self._discovery(route.discovery, accept)
        kind = route.kind
        assert kind is not None
        dry_run = query.get("dryRun") == "All"
        status, obj = 200, None
        if method == "GET" and route.name is None:
            if query.get("watch") in ("true", "1"):
                raise bad_request("watch requests are served by FakeCluster.watch(), not request()")
            return 200, dict(_JSON), orjson.dumps(self._list(kind, route.namespace, query))
        if method == "POST" and route.name is None and (route.namespace or not kind.resource.namespaced):
            status, obj = 201, writes.create(self.store, kind, route.namespace, body, dry_run=dry_run)
        elif route.name is None:
            raise FakeStatus(405, "the server does not allow this method on the requested resource")
        elif method == "GET":
            with self.store.lock:
                obj = self.store.get(kind, (route.namespace or "", route.name))
                if obj is None:
                    raise not_found(kind.resource.plural, kind.resource.group, route.name)
                return 200, dict(_JSON), orjson.dumps(self._present(kind, obj))
        elif method == "PUT":
            obj = writes.update(
                self.store, kind, route.namespace, route.name, body, subresource=route.subresource, dry_run=dry_run
            )
        elif method == "PATCH":
            status, obj = writes.patch(
                self.store,
                kind,
                route.namespace,
                route.name,
                body,
                content_type,
                subresource=route.subresource,
                field_manager=query.get("fieldManager"),
                dry_run=dry_run,
            )
        elif method == "DELETE" and route.subresource is None:
            obj = writes.delete(self.store, kind, route.namespace, route.name, body, dry_run=dry_run)
        else:
            raise FakeStatus(405, "the server does not allow this method on the requested resource")
        with self.store.lock:
            return status, dict(_JSON), orjson.dumps(self._present(kind, obj))

    @staticmethod
    def _present(kind: Kind, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """The object as served at this endpoint's version."""
        if obj.get("apiVersion") != kind.resource.api_version:
            return {**obj, "apiVersion": kind.resource.api_version}
        return obj

    def _selected(
        self, kind: Kind, namespace: str | None, selector: Selector, objects: Mapping[Key, Mapping[str, Any]]
    ) -> list[tuple[Key, Mapping[str, Any]]]:
        return [
            (key, obj)
            for key, obj in sorted(objects.items())
            if (not namespace or key[0] == namespace) and selector.matches(obj)
        ]

    def _list(self, kind: Kind, namespace: str | None, query: Mapping[str, str]) -> dict[str, Any]:
        selector = parse_selectors(query.get("labelSelector"), query.get("fieldSelector"))
        limit = _int(query["limit"], "limit") if query.get("limit") else 0
        token, rv, match = query.get("continue"), query.get("resourceVersion"), query.get("resourceVersionMatch")
        store = self.store
        with store.lock:
            current, after = store.resource_version, None
            if token:
                if rv:
                    raise bad_request("specifying resource version is not allowed when using continue")
                snapshot, after = _untoken(token)
                if snapshot < store.compacted:
                    raise expired(_CONTINUE_EXPIRED)
            elif match not in (None, "", "Exact", "NotOlderThan"):
                raise bad_request(f"invalid resourceVersionMatch {match!r}")
            elif match and not rv:
                raise bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
            elif match == "Exact":
                snapshot = _int(rv or "", "resourceVersion")
                if snapshot < store.compacted:
                    raise expired(f"too old resource version: {snapshot} ({store.compacted})")
                if snapshot > current:
                    raise too_large(snapshot, current)
            else:
                if rv and rv != "0" and _int(rv, "resourceVersion") > current:
                    raise too_large(int(rv), current)
                snapshot = current
            items = self._selected(kind, namespace, selector, store.snapshot(kind, snapshot))
            if after is not None:
                items = [(key, obj) for key, obj in items if key > after]
            meta: dict[str, Any] = {"resourceVersion": str(snapshot)}
            if limit and len(items) > limit:
                items, rest = items[:limit], len(items) - limit
                meta.update({"continue": _token(snapshot, items[-1][0]), "remainingItemCount": rest})
            # As the apiserver does for built-in types, items carry no kind/apiVersion (the list does).
            listed = [{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")} for _, obj in items]
        return {
            "kind": f"{kind.resource.kind}List",
            "apiVersion": kind.resource.api_version,
            "metadata": meta,
            "items": listed,
        }

    # -- watches ---------------------------------------------------------------------------------

    def open_watch(
        self, path: str, query: Mapping[str, str], *, idle_timeout: float, on_release: Callable[[FakeWatchStream], None]
    ) -> FakeWatchStream:
        route = self.route(path)
        kind = route.kind
        if kind is None or route.name is not None:
            raise FakeStatus(405, "watch a collection (use fieldSelector=metadata.name=... for one object)")
        selector = parse_selectors(query.get("labelSelector"), query.get("fieldSelector"))
        initial = query.get("sendInitialEvents") == "true"
        bookmarks = query.get("allowWatchBookmarks") == "true"
        match, rv = query.get("resourceVersionMatch"), query.get("resourceVersion") or ""
        what = kind.resource.kind
        if initial and not self.streaming_lists:
            raise invalid(
                what,
                kind.resource.group,
                "",
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the "
                "WatchList feature gate is enabled",
            )
        if initial and (match != "NotOlderThan" or not bookmarks):
            raise invalid(
                what,
                kind.resource.group,
                "",
                "sendInitialEvents requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan",
            )
        if match and not initial:
            raise invalid(
                what,
                kind.resource.group,
                "",
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch "
                "unless sendInitialEvents is provided",
            )
        timeout = float(_int(query["timeoutSeconds"], "timeoutSeconds")) if query.get("timeoutSeconds") else None
        store = self.store
        with store.lock:
            current = store.resource_version
            since = _int(rv, "resourceVersion") if rv not in ("", "0") else None
            if since is not None and since > current:
                raise too_large(since, current)
            stream = FakeWatchStream(
                store,
                kind,
                path=path,
                idle_timeout=idle_timeout,
                timeout_seconds=timeout,
                namespace=route.namespace,
                selector=selector,
                bookmarks=bookmarks,
                stalled=self._stalled,
                on_release=on_release,
            )
            if initial or since is None:
                for _, obj in self._selected(kind, route.namespace, selector, store.snapshot(kind)):
                    stream.push("ADDED", obj)
                if initial:
                    stream.push_bookmark(str(current), initial_events_end=True)
            elif since < store.compacted:
                stream.push("ERROR", expired(f"too old resource version: {since} ({store.compacted})").status())
            else:
                for change in store.changes_after(kind, since):
                    stream.offer(change)
            if not stream.ending:
                store.add_listener(kind, stream)
        return stream

    # -- discovery -------------------------------------------------------------------------------

    def _discovery(self, which: str, accept: str) -> tuple[int, dict[str, str], bytes]:
        kinds = self.store.kinds()
        if which in ("api", "apis") and "as=APIGroupDiscoveryList" in accept:
            core = which == "api"
            document = _aggregated([k for k in kinds if (k.resource.group == "") == core])
            return 200, {"Content-Type": _AGGREGATED}, orjson.dumps(document)
        if which == "api":
            versions = sorted({k.resource.version for k in kinds if not k.resource.group})
            document = {"kind": "APIVersions", "versions": versions}
        elif which == "apis":
            document = {"kind": "APIGroupList", "apiVersion": "v1", "groups": _legacy_groups(kinds)}
        else:
            served = [k for k in kinds if k.resource.api_version == which]
            if not served:
                raise FakeStatus(404, _NO_RESOURCE)
            document = {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": which,
                "resources": [entry for k in served for entry in _legacy_entries(k)],
            }
        return 200, dict(_JSON), orjson.dumps(document)


def _grouped(kinds: list[Kind]) -> dict[str, dict[str, list[Kind]]]:
    """group -> version -> kinds, in registration order (the first version is the preferred one)."""
    groups: dict[str, dict[str, list[Kind]]] = {}
    for kind in kinds:
        groups.setdefault(kind.resource.group, {}).setdefault(kind.resource.version, []).append(kind)
    return groups


def _aggregated(kinds: list[Kind]) -> dict[str, Any]:
    items = []
    for group, versions in _grouped(kinds).items():
        entries = []
        for version, served in versions.items():
            resources = []
            for kind in served:
                r = kind.resource
                response_kind = {"group": group, "version": version, "kind": r.kind}
                entry: dict[str, Any] = {
                    "resource": r.plural,
                    "responseKind": response_kind,
                    "singularResource": r.kind.lower(),
                    "scope": "Namespaced" if r.namespaced else "Cluster",
                    "verbs": list(r.verbs),
                }
                if kind.status_subresource:
                    entry["subresources"] = [
                        {"subresource": "status", "responseKind": response_kind, "verbs": ["get", "patch", "update"]}
                    ]
                resources.append(entry)
            entries.append({"version": version, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": group}, "versions": entries})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


def _legacy_groups(kinds: list[Kind]) -> list[dict[str, Any]]:
    groups = []
    for group, versions in _grouped(kinds).items():
        if not group:
            continue
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": listed, "preferredVersion": listed[0]})
    return groups


def _legacy_entries(kind: Kind) -> list[dict[str, Any]]:
    r = kind.resource
    entries = [
        {
            "name": r.plural,
            "singularName": r.kind.lower(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
    ]
    if kind.status_subresource:
        entries.append(
            {
                "name": f"{r.plural}/status",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return entries
