"""The apiserver's write rules, as the fake kit applies them: create, update, patch, apply, delete.

Each function checks what the apiserver checks (name and namespace, optimistic concurrency on
``resourceVersion``, uid preconditions, finalizers), computes the next state and commits it
through ``FakeStore.commit``, all under the store's lock so a check and its write are atomic.
Rules kept from the apiserver: the server owns ``uid``, ``creationTimestamp``, ``generation``,
``resourceVersion`` and ``deletionTimestamp``; ``generation`` starts at 1 and moves when anything
outside ``metadata`` and ``status`` changes; with a status subresource the main resource ignores
``status`` and ``/status`` changes nothing else; a write that changes nothing makes no new version;
a delete of an object with finalizers only sets ``deletionTimestamp``, and removing the last
finalizer of such an object deletes it. Simplified: every resource gets a ``generation``; server-side
apply and strategic merge are merge patches; namespaces need not exist; no garbage collection.
Invariant: a refused write changes nothing (every check runs before ``commit``).
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ._fake_patch import PatchError, json_patch, merge_patch
from ._fake_status import FakeStatus, already_exists, bad_request, conflict, invalid, not_found
from ._fake_store import FakeStore, Key, Kind, clone

__all__ = ["APPLY", "JSON_PATCH", "MERGE_PATCH", "STRATEGIC_PATCH", "create", "delete", "patch", "update"]

APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"

_SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
_STALE = "the object has been modified; please apply your changes to the latest version and try again"
_RANDOM = random.Random()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"the body of {what} must be a JSON object")
    obj: dict[str, Any] = clone(body)
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise bad_request(f"the body of {what} has a metadata that is not an object")
    return obj


def _key(kind: Kind, namespace: str | None, name: str) -> Key:
    return ((namespace or "") if kind.resource.namespaced else "", name)


def _spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What ``generation`` tracks: everything but identity, metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}


def _finalizers(obj: Mapping[str, Any]) -> list[Any]:
    found = obj.get("metadata", {}).get("finalizers")
    return list(found) if isinstance(found, list) else []


def _check_identity(kind: Kind, obj: dict[str, Any], namespace: str | None, name: str | None) -> None:
    res = kind.resource
    if obj.get("kind") not in (None, res.kind) or obj.get("apiVersion") not in (None, res.api_version):
        raise bad_request(
            f"the object is {obj.get('apiVersion')}/{obj.get('kind')}; "
            f"this endpoint serves {res.api_version}/{res.kind}"
        )
    obj["apiVersion"], obj["kind"] = res.api_version, res.kind
    meta = obj["metadata"]
    if res.namespaced:
        if meta.get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if name is not None and meta.get("name") not in (None, name):
        raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")


def create(store: FakeStore, kind: Kind, namespace: str | None, body: Any, *, dry_run: bool = False) -> dict[str, Any]:
    """POST: a new object with server-owned fields filled in; 409 AlreadyExists if the name is taken."""
    obj = _object(body, "a create")
    _check_identity(kind, obj, namespace, None)
    meta = obj["metadata"]
    if meta.get("resourceVersion"):
        raise bad_request("resourceVersion should not be set on objects to be created")
    with store.lock:
        name = meta.get("name")
        if not name:
            prefix = meta.get("generateName")
            if not prefix:
                raise invalid(
                    kind.resource.kind,
                    kind.resource.group,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                )
            name = prefix + "".join(_RANDOM.choices(string.ascii_lowercase + string.digits, k=5))
        key = _key(kind, namespace, name)
        if store.get(kind, key) is not None:
            raise already_exists(kind.resource.plural, kind.resource.group, name)
        meta["name"] = name
        for field in _SERVER_OWNED:
            meta.pop(field, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        if kind.status_subresource:
            obj.pop("status", None)
        if dry_run:
            return obj
        return store.commit(kind, "ADDED", key, obj, None)


def _next_state(kind: Kind, old: dict[str, Any], proposed: dict[str, Any], subresource: str | None) -> dict[str, Any]:
    """The state an accepted update/patch leads to (before its new resourceVersion)."""
    if subresource == "status":
        new: dict[str, Any] = clone(old)
        if proposed.get("status") is not None:
            new["status"] = proposed["status"]
        else:
            new.pop("status", None)
        return new
    new = proposed
    new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
    meta, old_meta = new["metadata"], old["metadata"]
    for field in (*_SERVER_OWNED, "name", "namespace", "resourceVersion"):
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)
    if kind.status_subresource:
        if "status" in old:
            new["status"] = clone(old["status"])
        else:
            new.pop("status", None)
    if _spec(new) != _spec(old):
        meta["generation"] = int(old_meta.get("generation") or 0) + 1
    if old_meta.get("deletionTimestamp") and set(map(str, _finalizers(new))) - set(map(str, _finalizers(old))):
        raise invalid(
            kind.resource.kind,
            kind.resource.group,
            str(meta.get("name")),
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted",
        )
    return new


def _write(
    store: FakeStore, kind: Kind, key: Key, old: dict[str, Any], new: dict[str, Any], dry_run: bool
) -> dict[str, Any]:
    if new == old:
        return old  # nothing changed: no new version, no event
    if dry_run:
        return new
    if old["metadata"].get("deletionTimestamp") and not _finalizers(new):
        return store.commit(kind, "DELETED", key, new, old)  # the last finalizer is gone
    return store.commit(kind, "MODIFIED", key, new, old)


def _live(store: FakeStore, kind: Kind, namespace: str | None, name: str) -> tuple[Key, dict[str, Any]]:
    key = _key(kind, namespace, name)
    old = store.get(kind, key)
    if old is None:
        raise not_found(kind.resource.plural, kind.resource.group, name)
    return key, old


def update(
    store: FakeStore,
    kind: Kind,
    namespace: str | None,
    name: str,
    body: Any,
    *,
    subresource: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """PUT: replace the object (or its status); 409 Conflict on a stale resourceVersion or uid."""
    proposed = _object(body, "an update")
    _check_identity(kind, proposed, namespace, name)
    meta = proposed["metadata"]
    with store.lock:
        key, old = _live(store, kind, namespace, name)
        old_meta = old["metadata"]
        if meta.get("resourceVersion") and meta["resourceVersion"] != old_meta["resourceVersion"]:
            raise conflict(kind.resource.plural, kind.resource.group, name, _STALE)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise conflict(
                kind.resource.plural,
                kind.resource.group,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old_meta['uid']}",
            )
        return _write(store, kind, key, old, _next_state(kind, old, proposed, subresource), dry_run)


def patch(
    store: FakeStore,
    kind: Kind,
    namespace: str | None,
    name: str,
    body: Any,
    content_type: str,
    *,
    subresource: str | None = None,
    field_manager: str | None = None,
    dry_run: bool = False,
) -> tuple[int, dict[str, Any]]:
    """PATCH in any of the four formats; returns (HTTP status, object): 201 when an apply created it."""
    ctype = content_type.split(";")[0].strip().lower()
    with store.lock:
        key = _key(kind, namespace, name)
        old = store.get(kind, key)
        if ctype == APPLY:
            if not field_manager:
                raise bad_request("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests")
            if not isinstance(body, dict):
                raise bad_request("an apply patch must be a JSON (or YAML) object")
            if old is None:
                if subresource is not None:
                    raise not_found(kind.resource.plural, kind.resource.group, name)
                intent = _object(body, "an apply")
                if intent["metadata"].get("name") not in (None, name):
                    raise bad_request(f"the name of the object does not match the name on the URL ({name})")
                intent["metadata"]["name"] = name
                return 201, create(store, kind, namespace, intent, dry_run=dry_run)
            patched: Any = merge_patch(old, body)
        elif old is None:
            raise not_found(kind.resource.plural, kind.resource.group, name)
        elif ctype in (MERGE_PATCH, STRATEGIC_PATCH):
            if not isinstance(body, dict):
                raise bad_request("a merge patch must be a JSON object")
            patched = merge_patch(old, body)
        elif ctype == JSON_PATCH:
            try:
                patched = json_patch(old, body)
            except PatchError as exc:
                raise FakeStatus(422, f"the server rejected our request due to an error in our request: {exc}") from exc
        else:
            raise FakeStatus(
                415,
                f"the body of the request was in an unknown format ({ctype}) - accepted media "
                f"types include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY}, {STRATEGIC_PATCH}",
            )
        proposed = _object(patched, "a patched object")
        if proposed["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
            raise conflict(kind.resource.plural, kind.resource.group, name, _STALE)
        return 200, _write(store, kind, key, old, _next_state(kind, old, proposed, subresource), dry_run)


def delete(
    store: FakeStore, kind: Kind, namespace: str | None, name: str, options: Any, *, dry_run: bool = False
) -> dict[str, Any]:
    """DELETE: preconditions first; finalizers turn it into setting ``deletionTimestamp``."""
    options = options if isinstance(options, Mapping) else {}
    preconditions = options.get("preconditions") or {}
    dry_run = dry_run or bool(options.get("dryRun"))
    with store.lock:
        key, old = _live(store, kind, namespace, name)
        old_meta = old["metadata"]
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = preconditions.get(field) if isinstance(preconditions, Mapping) else None
            if wanted and wanted != old_meta.get(field):
                raise conflict(
                    kind.resource.plural,
                    kind.resource.group,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, "
                    f"{label} in object meta: {old_meta.get(field)}",
                )
        if _finalizers(old):
            if old_meta.get("deletionTimestamp"):
                return old
            new = clone(old)
            new["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
            return new if dry_run else store.commit(kind, "MODIFIED", key, new, old)
        if dry_run:
            return old
        return store.commit(kind, "DELETED", key, clone(old), old)
