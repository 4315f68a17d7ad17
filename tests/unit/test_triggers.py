"""Triggers: primary UID keys, controller-owner mapping (kind + group, version-agnostic, old and new
owners), custom mappers and their output checks."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.predicates import generation_changed
from controllers.request import Request
from controllers.triggers import (
    TriggerKind,
    bind,
    for_primary,
    owner_request,
    owns,
    request_kind,
    watches,
)
from informers.events import DeletedFinalStateUnknown, ObjectAdded, ObjectDeleted, ObjectUpdated
from informers.resources import Resource

WIDGETS = Resource("example.com", "v1", "widgets", "Widget", True)
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)
NODES = Resource("", "v1", "nodes", "Node", False)
KIND = "example.com/v1/Widget"


def widget(uid: str, name: str = "w", rv: str = "1", gen: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv, "generation": gen},
    }


def ref(
    uid: str,
    *,
    kind: str = "Widget",
    api_version: str = "example.com/v1",
    controller: bool | None = True,
    name: str = "w",
) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid}
    if controller is not None:
        out["controller"] = controller
    return out


def child(*refs: dict[str, Any], name: str = "c", rv: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"child-{name}",
            "resourceVersion": rv,
            "ownerReferences": list(refs),
        },
    }


def test_request_kind_names_the_group_version_kind() -> None:
    assert request_kind(WIDGETS) == KIND
    assert request_kind(CONFIGMAPS) == "ConfigMap"


def test_primary_maps_each_state_to_its_own_uid() -> None:
    bound = bind(for_primary(WIDGETS), WIDGETS)
    [added] = bound.requests(ObjectAdded(widget("u1")))
    assert added == Request(KIND, "u1") and (added.namespace, added.name) == ("ns", "w")
    assert bound.requests(ObjectUpdated(widget("u1"), widget("u1", rv="2"))) == [Request(KIND, "u1")]
    gone = ObjectDeleted(DeletedFinalStateUnknown("ns/w", widget("u1")))
    assert bound.requests(gone) == [Request(KIND, "u1")]
    assert bound.requests(ObjectAdded({"metadata": {"name": "no-uid"}})) == []


def test_owner_mapping_follows_only_the_controller_reference_of_the_primary_kind_and_group() -> None:
    bound = bind(owns(CONFIGMAPS), WIDGETS)
    assert bound.requests(ObjectAdded(child(ref("o1")))) == [Request(KIND, "o1")]
    # Another version of the same group/kind is the same owner object.
    assert bound.requests(ObjectAdded(child(ref("o1", api_version="example.com/v1beta1")))) == [Request(KIND, "o1")]
    assert bound.requests(ObjectAdded(child(ref("o1", controller=False)))) == []
    assert bound.requests(ObjectAdded(child(ref("o1", controller=None)))) == []
    assert bound.requests(ObjectAdded(child(ref("o1", kind="Gadget")))) == []
    assert bound.requests(ObjectAdded(child(ref("o1", api_version="other.io/v1")))) == []
    assert bound.requests(ObjectAdded(child())) == []
    # Only the controller among several owners counts.
    many = child(ref("a", controller=False), ref("b"), ref("c", kind="Gadget", controller=False))
    [only] = bound.requests(ObjectAdded(many))
    assert only == Request(KIND, "b") and (only.namespace, only.name) == ("ns", "w")


def test_owner_change_wakes_old_and_new_owner_and_delete_wakes_the_last_owner() -> None:
    bound = bind(owns(CONFIGMAPS), WIDGETS)
    moved = ObjectUpdated(child(ref("old")), child(ref("new"), rv="2"))
    assert bound.requests(moved) == [Request(KIND, "new"), Request(KIND, "old")]
    same = ObjectUpdated(child(ref("o1")), child(ref("o1"), rv="2"))
    assert bound.requests(same) == [Request(KIND, "o1")]
    assert bound.requests(ObjectDeleted(child(ref("o1")))) == [Request(KIND, "o1")]


def test_owner_request_for_a_cluster_scoped_owner_has_no_namespace() -> None:
    request = owner_request(
        child(ref("n1", kind="Node", api_version="v1", name="node-1")),
        kind="Node",
        owner_group="",
        owner_kind="Node",
        owner_namespaced=False,
    )
    assert request == Request("Node", "n1") and request.namespace == "" and request.name == "node-1"


def test_core_group_owner_matches_only_core_api_versions() -> None:
    bound = bind(owns(CONFIGMAPS), CONFIGMAPS)
    assert bound.requests(ObjectAdded(child(ref("cm", kind="ConfigMap", api_version="v1")))) == [
        Request("ConfigMap", "cm")
    ]
    assert bound.requests(ObjectAdded(child(ref("cm", kind="ConfigMap", api_version="x.io/v1")))) == []


def test_watches_mapper_may_return_uids_objects_or_requests_for_both_states() -> None:
    def mapper(obj: dict[str, Any]) -> list[Any]:
        target = obj["metadata"].get("labels", {}).get("widget")
        if target == "by-object":
            return [widget("u-obj")]
        if target == "by-request":
            return [Request(KIND, "u-req")]
        return [target] if target else []

    def labelled(value: str | None, rv: str = "1") -> dict[str, Any]:
        out = child(rv=rv)
        if value:
            out["metadata"]["labels"] = {"widget": value}
        return out

    bound = bind(watches(CONFIGMAPS, mapper), WIDGETS)
    assert bound.requests(ObjectAdded(labelled("u1"))) == [Request(KIND, "u1")]
    assert bound.requests(ObjectAdded(labelled("by-object"))) == [Request(KIND, "u-obj")]
    assert bound.requests(ObjectAdded(labelled("by-request"))) == [Request(KIND, "u-req")]
    relabelled = ObjectUpdated(labelled("u1"), labelled("u2", rv="2"))
    assert bound.requests(relabelled) == [Request(KIND, "u2"), Request(KIND, "u1")]
    assert bound.requests(ObjectAdded(labelled(None))) == []


def test_watches_mapper_output_is_checked() -> None:
    wrong_kind = bind(watches(CONFIGMAPS, lambda o: [Request("Gadget", "g")]), WIDGETS)
    with pytest.raises(ValueError, match="Gadget"):
        wrong_kind.requests(ObjectAdded(child()))
    wrong_type = bind(watches(CONFIGMAPS, lambda o: [42]), WIDGETS)
    with pytest.raises(TypeError, match="int"):
        wrong_type.requests(ObjectAdded(child()))
    with pytest.raises(TypeError):
        watches(CONFIGMAPS, "not callable")  # type: ignore[arg-type]


def test_trigger_declarations_carry_predicates_and_scope() -> None:
    trigger = owns("v1/configmaps", predicates=generation_changed, namespace="ns", label_selector="app=x")
    assert trigger.kind is TriggerKind.OWNS and trigger.predicates == (generation_changed,)
    assert (trigger.namespace, trigger.label_selector) == ("ns", "app=x")
    assert str(trigger) == "owns(v1/configmaps)"
    bound = bind(for_primary(WIDGETS, predicates=[generation_changed]), WIDGETS)
    assert not bound.passes(ObjectUpdated(widget("u1", rv="1"), widget("u1", rv="2")))
    assert bound.passes(ObjectUpdated(widget("u1", gen=1), widget("u1", rv="2", gen=2)))
    assert bind(owns(CONFIGMAPS), WIDGETS).passes(ObjectAdded(child()))
