"""Accessors on raw objects: keys, identity fields, owners, and the managedFields transform.

``annotations`` is used through the module: importing it by name clashes with the
``from __future__ import annotations`` feature name (for type checkers).
"""

from __future__ import annotations

import functools

import pytest

from informers import objects
from informers.errors import InformerdError
from informers.objects import (
    ObjectKeyError,
    controller_owner,
    deletion_timestamp,
    generation,
    labels,
    name,
    namespace,
    object_key,
    owner_references,
    resource_version,
    split_key,
    strip_managed_fields,
    uid,
)

from .conftest import pod as make_pod

# This module's pod: prod/web-1 with no uid or resourceVersion unless a test gives them.
pod = functools.partial(make_pod, "web-1", "prod", rv=None, uid=None, spec=None)


def test_object_key_namespaced_and_cluster_scoped() -> None:
    assert object_key(pod()) == "prod/web-1"
    assert object_key({"metadata": {"name": "node-a"}}) == "node-a"
    assert object_key({"metadata": {"name": "node-a", "namespace": ""}}) == "node-a"


@pytest.mark.parametrize("bad", [{}, {"metadata": {}}, {"metadata": {"name": ""}}, {"metadata": None}, []])
def test_object_key_without_name_raises_typed_error(bad: object) -> None:
    with pytest.raises(ObjectKeyError, match="metadata.name"):
        object_key(bad)  # type: ignore[arg-type]


def test_split_key_round_trips_and_rejects_garbage() -> None:
    assert split_key("prod/web-1") == ("prod", "web-1")
    assert split_key("node-a") == ("", "node-a")
    for bad in ("", "/x", "x/", "a/b/c"):
        with pytest.raises(ObjectKeyError):
            split_key(bad)
    assert issubclass(ObjectKeyError, InformerdError) and issubclass(ObjectKeyError, ValueError)


def test_identity_fields() -> None:
    obj = pod(uid="u-1", resourceVersion="42", generation=3, deletionTimestamp="2026-01-01T00:00:00Z")
    assert (uid(obj), resource_version(obj), generation(obj)) == ("u-1", "42", 3)
    assert (namespace(obj), name(obj)) == ("prod", "web-1")
    assert deletion_timestamp(obj) == "2026-01-01T00:00:00Z"


def test_missing_optional_fields_give_none_or_empty() -> None:
    obj = {"metadata": {"name": "node-a"}}
    assert uid(obj) is None and resource_version(obj) is None and generation(obj) is None
    assert namespace(obj) is None and deletion_timestamp(obj) is None
    assert dict(labels(obj)) == {} and dict(objects.annotations(obj)) == {}
    assert owner_references(obj) == () and controller_owner(obj) is None
    # The shared empty mapping cannot be filled by accident.
    with pytest.raises(TypeError):
        labels(obj)["x"] = "y"  # type: ignore[index]


def test_generation_rejects_bool() -> None:
    assert generation(pod(generation=True)) is None


def test_labels_and_annotations_are_the_objects_own() -> None:
    obj = pod(labels={"app": "web"}, annotations={"a": "1"})
    assert labels(obj) == {"app": "web"} and objects.annotations(obj) == {"a": "1"}


def test_controller_owner_picks_the_controller_reference() -> None:
    refs = [
        {"kind": "ConfigMap", "name": "cm", "uid": "u-cm"},
        {"kind": "ReplicaSet", "name": "rs", "uid": "u-rs", "controller": True},
    ]
    obj = pod(ownerReferences=refs)
    assert [r["uid"] for r in owner_references(obj)] == ["u-cm", "u-rs"]
    assert controller_owner(obj) == refs[1]
    assert controller_owner(pod(ownerReferences=[refs[0]])) is None


def test_strip_managed_fields_removes_only_managed_fields_in_place() -> None:
    last_applied = {"kubectl.kubernetes.io/last-applied-configuration": "{...}"}
    obj = pod(managedFields=[{"manager": "kubectl"}], annotations=last_applied)
    out = strip_managed_fields(obj)
    assert out is obj
    assert "managedFields" not in obj["metadata"]
    assert obj["metadata"]["annotations"] == last_applied
    assert strip_managed_fields({"kind": "Weird"}) == {"kind": "Weird"}
