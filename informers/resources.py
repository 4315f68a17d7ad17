"""Resource identity and API discovery: which URL serves a kind, and whether it is namespaced.

``Resource`` names one served resource (group, version, plural, kind, scope) and builds its URLs.
``Discovery`` finds Resources through the apiserver's discovery documents: the aggregated form
(``/api`` and ``/apis`` as ``APIGroupDiscoveryList``, two requests for everything, served since
Kubernetes 1.26) when the server offers it, else the legacy documents (``/api``, ``/api/v1``,
``/apis``, ``/apis/<group>/<version>``). Documents are cached; a miss fetches once more so
resources added after start (a new CRD) resolve. Subresources (``pods/status``) are never mapped.
Invariant: a lookup either returns a Resource the server listed in its latest fetched document or
raises ``ResourceNotFoundError`` naming what was looked up; it never guesses.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from ._log import get_logger
from .errors import NotFoundError, ResourceNotFoundError

__all__ = ["Discovery", "DiscoveryStatistics", "Resource"]

_log = get_logger(__name__)


def _segment(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} must not be empty")
    return quote(value, safe=":@")


@dataclass(frozen=True, slots=True)
class Resource:
    """One served resource; ``group`` is ``""`` for the core group. Equality ignores ``verbs``."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = field(default=(), compare=False)
    """The verbs discovery listed (``list``, ``watch``...); empty when built by hand."""

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``<group>/<version>`` otherwise (as in ``apiVersion``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of the collection, or of one object (and its subresource).

        A namespaced resource without ``namespace`` gives the all-namespaces collection (list and
        watch only); a cluster-scoped one rejects a namespace.
        """
        parts = [self.group_version_path]
        if namespace is not None:
            if not self.namespaced:
                raise ValueError(f"{self} is cluster-scoped; it takes no namespace (got {namespace!r})")
            parts.append(f"namespaces/{_segment(namespace, 'namespace')}")
        elif self.namespaced and name is not None:
            raise ValueError(f"{self} is namespaced; an object path needs a namespace")
        parts.append(self.plural)
        if name is not None:
            parts.append(_segment(name, "name"))
        if subresource is not None:
            if name is None:
                raise ValueError("a subresource path needs an object name")
            parts.append(_segment(subresource, "subresource"))
        return "/".join(parts)

    def supports(self, verb: str) -> bool:
        """Whether discovery listed ``verb``; unknown (hand-built, no verbs) counts as supported."""
        return not self.verbs or verb in self.verbs

    def __str__(self) -> str:
        # kubectl's fully qualified form: deployments.v1.apps, pods.v1
        return f"{self.plural}.{self.version}.{self.group}" if self.group else f"{self.plural}.{self.version}"


class _Answer(Protocol):
    def json(self) -> Any: ...


class _Requester(Protocol):
    """What Discovery needs of ``ApiClient``."""

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None) -> _Answer: ...


# Aggregated discovery first (v2, then v2beta1), the legacy documents as the server's fallback.
_INDEX_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


@dataclass(frozen=True, slots=True)
class DiscoveryStatistics:
    aggregated: bool | None
    """Whether the server serves aggregated discovery (None: not asked yet)."""
    documents: int
    """Discovery documents fetched (each GET counts)."""
    refreshes: int
    """Lookups that missed the cache and fetched again."""
    cached_group_versions: int
    hits: int
    misses: int


def _parse_resource_list(group: str, version: str, document: Mapping[str, Any]) -> dict[str, Resource]:
    """Plural -> Resource from an APIResourceList, subresources skipped."""
    found: dict[str, Resource] = {}
    for item in document.get("resources") or ():
        name = str(item.get("name") or "")
        if not name or "/" in name:
            continue
        found[name] = Resource(
            group=group,
            version=version,
            plural=name,
            kind=str(item.get("kind") or ""),
            namespaced=bool(item.get("namespaced")),
            verbs=tuple(str(v) for v in item.get("verbs") or ()),
        )
    return found


def _is_aggregated(document: Mapping[str, Any]) -> bool:
    return document.get("kind") == "APIGroupDiscoveryList"


def _parse_aggregated(
    document: Mapping[str, Any],
    order: list[tuple[str, str]],
    resources: dict[tuple[str, str], dict[str, Resource]],
) -> None:
    """Add an APIGroupDiscoveryList's group-versions: versions come in preference order."""
    for item in document.get("items") or ():
        group = str((item.get("metadata") or {}).get("name") or "")
        for position, entry in enumerate(item.get("versions") or ()):
            version = str(entry.get("version") or "")
            if not version:
                continue
            found: dict[str, Resource] = {}
            for res in entry.get("resources") or ():
                plural = str(res.get("resource") or "")
                if not plural or "/" in plural:
                    continue  # subresources are listed apart; skip any stray ones anyway
                found[plural] = Resource(
                    group=group,
                    version=version,
                    plural=plural,
                    kind=str((res.get("responseKind") or {}).get("kind") or ""),
                    namespaced=res.get("scope") == "Namespaced",
                    verbs=tuple(str(v) for v in res.get("verbs") or ()),
                )
            resources[(group, version)] = found
            if position == 0:
                order.append((group, version))


def _parse_legacy_index(core: Mapping[str, Any], groups: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Preferred group-versions from APIVersions (/api) and APIGroupList (/apis)."""
    order: list[tuple[str, str]] = []
    versions = core.get("versions")
    if versions:
        order.append(("", str(versions[0])))
    for group in groups.get("groups") or ():
        name = str(group.get("name") or "")
        preferred = group.get("preferredVersion") or {}
        version = preferred.get("version") or next(
            (v.get("version") for v in group.get("versions") or () if v.get("version")), None
        )
        if name and version:
            order.append((name, str(version)))
    return order


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    if not version:
        raise ValueError(f"invalid apiVersion {api_version!r}")
    return group, version


class Discovery:
    """Thread-safe resolver of Resources, with a cache of the discovery documents.

    Lookups are serialized (discovery is rare: informer start-up); each miss fetches again once.
    A kind looked up without ``api_version`` is searched in the core group first, then in every
    group's preferred version in the server's group order (kubectl's priority).
    """

    def __init__(self, client: _Requester) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._aggregated: bool | None = None  # learnt from the first answer to /api
        self._group_versions: dict[tuple[str, str], dict[str, Resource]] = {}
        self._preferred: list[tuple[str, str]] | None = None  # (group, version) in server order
        self._documents = 0
        self._refreshes = 0
        self._hits = 0
        self._misses = 0

    def resolve(self, group: str, version: str, plural: str) -> Resource:
        """The Resource serving ``plural`` in ``group``/``version`` (core group: ``""``)."""
        with self._lock:
            fresh: set[object] = set()
            found = self._lookup_plural(group, version, plural, fresh, refresh=False)
            if found is None:
                found = self._lookup_plural(group, version, plural, fresh, refresh=True)
            if found is None:
                gv = f"{group}/{version}" if group else version
                raise ResourceNotFoundError(
                    f"the server has no resource {plural!r} in {gv}" + self._known_in(group, version),
                    reason="NotFound",
                )
            return found

    def resolve_kind(self, kind: str, api_version: str | None = None) -> Resource:
        """The Resource whose objects have ``kind`` (in ``api_version`` when given)."""
        with self._lock:
            fresh: set[object] = set()
            found: Resource | None = None
            if api_version is not None:
                group, version = _split_api_version(api_version)
                for refresh in (False, True):
                    found = self._lookup_kind_in(group, version, kind, fresh, refresh=refresh)
                    if found is not None:
                        break
            else:
                for refresh in (False, True):
                    found = self._lookup_kind_anywhere(kind, fresh, refresh=refresh)
                    if found is not None:
                        break
            if found is None:
                where = f" in {api_version}" if api_version else " in any API group"
                raise ResourceNotFoundError(f"the server serves no kind {kind!r}{where}", reason="NotFound")
            return found

    def invalidate(self) -> None:
        """Forget everything; the next lookups fetch the documents again."""
        with self._lock:
            self._group_versions.clear()
            self._preferred = None
            self._aggregated = None

    def statistics(self) -> DiscoveryStatistics:
        with self._lock:
            return DiscoveryStatistics(
                aggregated=self._aggregated,
                documents=self._documents,
                refreshes=self._refreshes,
                cached_group_versions=len(self._group_versions),
                hits=self._hits,
                misses=self._misses,
            )

    # -- internals (called with the lock held) --------------------------------------------------

    def _count(self, found: Resource | None, refresh: bool) -> Resource | None:
        if refresh:
            self._refreshes += 1
        elif found is None:
            self._misses += 1
        else:
            self._hits += 1
        return found

    def _fetch(self, path: str, accept: str = "application/json") -> Any:
        self._documents += 1
        document = self._client.request("GET", path, headers={"Accept": accept}).json()
        return document if isinstance(document, dict) else {}

    def _index(self, fresh: set[object], *, refresh: bool) -> list[tuple[str, str]]:
        """Preferred group-versions in priority order; aggregated answers also fill every group-version.

        ``fresh`` holds what this lookup already fetched: a refresh never fetches it twice.
        """
        if self._preferred is not None and (not refresh or "index" in fresh):
            return self._preferred
        core, groups = self._fetch("/api", _INDEX_ACCEPT), self._fetch("/apis", _INDEX_ACCEPT)
        order: list[tuple[str, str]] = []
        if _is_aggregated(core) and _is_aggregated(groups):
            resources: dict[tuple[str, str], dict[str, Resource]] = {}
            for document in (core, groups):
                _parse_aggregated(document, order, resources)
            self._aggregated = True
            self._group_versions = resources  # complete: replaces the cache
            fresh.update(resources)
        else:
            self._aggregated = False
            order = _parse_legacy_index(core, groups)
        self._preferred = order
        fresh.add("index")
        _log.debug("discovered API groups", aggregated=self._aggregated, group_versions=len(order))
        return order

    def _resources(self, group: str, version: str, fresh: set[object], *, refresh: bool) -> dict[str, Resource]:
        """The group-version's resources by plural; empty if the server does not serve it."""
        key = (group, version)
        if self._aggregated is not False:  # unknown yet, or the index holds everything
            self._index(fresh, refresh=refresh)
            if self._aggregated:
                return self._group_versions.get(key, {})
        if key in self._group_versions and (not refresh or key in fresh):
            return self._group_versions[key]
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            document = self._fetch(path)
        except NotFoundError:
            document = {}
        resources = _parse_resource_list(group, version, document)
        self._group_versions[key] = resources
        fresh.add(key)
        _log.debug("discovered group-version", path=path, resources=len(resources))
        return resources

    def _lookup_plural(
        self, group: str, version: str, plural: str, fresh: set[object], *, refresh: bool
    ) -> Resource | None:
        return self._count(self._resources(group, version, fresh, refresh=refresh).get(plural), refresh)

    def _lookup_kind_in(
        self, group: str, version: str, kind: str, fresh: set[object], *, refresh: bool
    ) -> Resource | None:
        found = _first_with_kind(self._resources(group, version, fresh, refresh=refresh).values(), kind)
        return self._count(found, refresh)

    def _lookup_kind_anywhere(self, kind: str, fresh: set[object], *, refresh: bool) -> Resource | None:
        found: Resource | None = None
        for group, version in self._index(fresh, refresh=refresh):
            found = _first_with_kind(self._resources(group, version, fresh, refresh=refresh).values(), kind)
            if found is not None:
                break
        return self._count(found, refresh)

    def _known_in(self, group: str, version: str) -> str:
        known = sorted(self._group_versions.get((group, version), {}))
        if not known:
            return " (the group-version is not served)"
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        return f" (it serves: {shown})"


def _first_with_kind(resources: Iterable[Resource], kind: str) -> Resource | None:
    for resource in resources:
        if resource.kind == kind:
            return resource
    return None
