"""Predicates: the four "changed" built-ins judge updates only, resyncs fail them, composition."""

from __future__ import annotations

from typing import Any

from controllers.predicates import (
    Predicate,
    all_of,
    annotations_changed,
    any_of,
    combine,
    generation_changed,
    labels_changed,
    not_,
    predicate,
    resource_version_changed,
)
from informers.events import DeletedFinalStateUnknown, ObjectAdded, ObjectDeleted, ObjectUpdated


def obj(
    rv: str = "1", gen: int | None = 1, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "w", "namespace": "ns", "uid": "u1", "resourceVersion": rv}
    if gen is not None:
        meta["generation"] = gen
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Widget", "metadata": meta}


BUILTINS = (generation_changed, labels_changed, annotations_changed, resource_version_changed)


def test_adds_and_deletes_always_pass_the_changed_predicates() -> None:
    notes = [
        ObjectAdded(obj()),
        ObjectAdded(obj(), in_initial_list=True),
        ObjectDeleted(obj()),
        ObjectDeleted(DeletedFinalStateUnknown("ns/w", obj())),
    ]
    for pred in BUILTINS:
        assert all(pred(n) for n in notes), pred


def test_resync_fails_every_changed_predicate() -> None:
    same = obj()
    resync = ObjectUpdated(same, same, is_resync=True)
    assert not any(pred(resync) for pred in BUILTINS)


def test_generation_changed_ignores_status_and_metadata_only_updates() -> None:
    status_write = ObjectUpdated(obj(rv="1", gen=3), obj(rv="2", gen=3))
    spec_write = ObjectUpdated(obj(rv="2", gen=3), obj(rv="3", gen=4))
    no_generation = ObjectUpdated(obj(rv="1", gen=None), obj(rv="2", gen=None))  # e.g. ConfigMaps
    assert not generation_changed(status_write)
    assert generation_changed(spec_write)
    assert not generation_changed(no_generation)
    assert resource_version_changed(status_write) and resource_version_changed(no_generation)


def test_labels_and_annotations_changed_compare_contents_not_identity() -> None:
    assert labels_changed(ObjectUpdated(obj(labels={"a": "1"}), obj(rv="2", labels={"a": "2"})))
    assert not labels_changed(ObjectUpdated(obj(labels={"a": "1"}), obj(rv="2", labels={"a": "1"})))
    assert labels_changed(ObjectUpdated(obj(), obj(rv="2", labels={"a": "1"})))  # absent -> present
    assert annotations_changed(ObjectUpdated(obj(annotations={"x": "1"}), obj(rv="2")))
    assert not annotations_changed(ObjectUpdated(obj(annotations={}), obj(rv="2")))


def test_composition_with_operators_and_functions() -> None:
    spec_only = ObjectUpdated(obj(rv="1", gen=1), obj(rv="2", gen=2))
    label_only = ObjectUpdated(obj(rv="1", labels={"a": "1"}), obj(rv="2", labels={"a": "2"}))
    either = generation_changed | labels_changed
    both = generation_changed & labels_changed
    assert either(spec_only) and either(label_only)
    assert not both(spec_only) and not both(label_only)
    assert (~generation_changed)(label_only) and not (~generation_changed)(spec_only)
    assert not_(labels_changed)(spec_only)
    assert all_of()(spec_only) and not any_of()(spec_only)
    assert "generation_changed" in repr(either) and "|" in either.name


def test_plain_functions_compose_and_combine_collapses() -> None:
    calls: list[str] = []

    @predicate
    def named_w(note: object) -> bool:
        calls.append("named_w")
        return True

    assert isinstance(named_w, Predicate) and named_w.name == "named_w"
    never = Predicate(lambda n: False, "never")
    # Short-circuit: the second predicate is not evaluated once the first decides.
    assert not all_of(never, named_w)(ObjectAdded(obj())) and calls == []
    assert any_of(lambda n: True, named_w)(ObjectAdded(obj())) and calls == []
    assert combine([]) is None
    assert combine([named_w]) is named_w
    assert combine([named_w, never]) is not None and not combine([named_w, never])(ObjectAdded(obj()))  # type: ignore[misc]
