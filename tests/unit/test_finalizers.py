"""Finalizer decisions and the patches the helpers send (a fake writer records them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from controllers.finalizers import (
    FinalizerStep,
    decide_finalization,
    ensure_finalizer,
    finalizers,
    handle_finalization,
    has_finalizer,
    reconcile_finalizer,
    remove_finalizer,
)
from informers.errors import ConflictError, NotFoundError
from informers.resources import Resource

OURS = "example.com/cleanup"
WIDGETS = Resource("example.com", "v1", "widgets", "Widget", namespaced=True)


class FakeWriter:
    def __init__(self, error: Exception | None = None) -> None:
        self.patches: list[tuple[str, Any, str | None]] = []
        self.error = error

    def patch(
        self,
        resource: Resource,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self.patches.append((name, patch, namespace))
        if self.error is not None:
            raise self.error
        return {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "finalizers": patch["metadata"]["finalizers"],
                "resourceVersion": "next",
            }
        }


def widget(*names: str, deleting: bool = False, rv: str | None = "5") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "w", "namespace": "ns"}
    if rv:
        meta["resourceVersion"] = rv
    if names:
        meta["finalizers"] = list(names)
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta}


@pytest.mark.parametrize(
    ("obj", "step"),
    [
        (widget(), FinalizerStep.ADD),
        (widget("other.io/x"), FinalizerStep.ADD),
        (widget(OURS), FinalizerStep.PROCEED),
        (widget(OURS, "other.io/x", deleting=True), FinalizerStep.CLEANUP),
        (widget("other.io/x", deleting=True), FinalizerStep.NOTHING),
        (widget(deleting=True), FinalizerStep.NOTHING),
    ],
)
def test_decide_finalization(obj: dict[str, Any], step: FinalizerStep) -> None:
    assert decide_finalization(obj, OURS) is step


def test_finalizers_reads_strings_only_and_tolerates_garbage() -> None:
    assert finalizers({"metadata": {"finalizers": ["a", 3, "b"]}}) == ("a", "b")
    assert finalizers({"metadata": {"finalizers": "a"}}) == ()
    assert finalizers({}) == ()
    assert has_finalizer(widget(OURS), OURS) and not has_finalizer(widget(), OURS)


def test_handle_finalization_runs_cleanup_only_when_deleting_with_ours() -> None:
    cleaned: list[str] = []

    def cleanup(obj: Mapping[str, Any]) -> None:
        cleaned.append(obj["metadata"]["name"])

    assert handle_finalization(widget(), OURS, cleanup) is FinalizerStep.ADD
    assert handle_finalization(widget(OURS), OURS, cleanup) is FinalizerStep.PROCEED
    assert handle_finalization(widget(deleting=True), OURS, cleanup) is FinalizerStep.NOTHING
    assert cleaned == []
    assert handle_finalization(widget(OURS, deleting=True), OURS, cleanup) is FinalizerStep.REMOVE
    assert cleaned == ["w"]


def test_a_failing_cleanup_propagates_and_keeps_the_finalizer() -> None:
    writer = FakeWriter()

    def cleanup(_: Mapping[str, Any]) -> None:
        raise RuntimeError("external system down")

    with pytest.raises(RuntimeError):
        reconcile_finalizer(writer, WIDGETS, widget(OURS, deleting=True), OURS, cleanup)  # type: ignore[arg-type]
    assert writer.patches == []


def test_ensure_adds_with_a_resource_version_precondition_and_is_idempotent() -> None:
    writer = FakeWriter()
    updated = ensure_finalizer(writer, WIDGETS, widget("other.io/x"), OURS)  # type: ignore[arg-type]
    assert writer.patches == [("w", {"metadata": {"finalizers": ["other.io/x", OURS], "resourceVersion": "5"}}, "ns")]
    assert updated["metadata"]["finalizers"] == ["other.io/x", OURS]
    present = widget(OURS)
    assert ensure_finalizer(writer, WIDGETS, present, OURS) == present  # type: ignore[arg-type]
    assert len(writer.patches) == 1


def test_ensure_needs_a_resource_version_and_passes_conflicts_on() -> None:
    with pytest.raises(ValueError, match="resourceVersion"):
        ensure_finalizer(FakeWriter(), WIDGETS, widget(rv=None), OURS)  # type: ignore[arg-type]
    with pytest.raises(ConflictError):
        ensure_finalizer(FakeWriter(ConflictError("modified")), WIDGETS, widget(), OURS)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ensure_finalizer(FakeWriter(), WIDGETS, widget(), "")  # type: ignore[arg-type]


def test_remove_keeps_the_others_deletes_the_key_when_empty_and_is_idempotent() -> None:
    writer = FakeWriter()
    remove_finalizer(writer, WIDGETS, widget("a.io/x", OURS, "b.io/y"), OURS)  # type: ignore[arg-type]
    remove_finalizer(writer, WIDGETS, widget(OURS), OURS)  # type: ignore[arg-type]
    assert [p for _, p, _ in writer.patches] == [
        {"metadata": {"finalizers": ["a.io/x", "b.io/y"], "resourceVersion": "5"}},
        {"metadata": {"finalizers": None, "resourceVersion": "5"}},
    ]
    absent = widget("a.io/x")
    assert remove_finalizer(writer, WIDGETS, absent, OURS) == absent  # type: ignore[arg-type]
    assert len(writer.patches) == 2


def test_remove_of_a_gone_object_returns_none() -> None:
    writer = FakeWriter(NotFoundError('widgets "w" not found'))
    assert remove_finalizer(writer, WIDGETS, widget(OURS, deleting=True), OURS) is None  # type: ignore[arg-type]


def test_reconcile_finalizer_adds_first_then_proceeds_then_cleans_up_and_removes() -> None:
    writer = FakeWriter()
    cleaned: list[str] = []

    def cleanup(obj: Mapping[str, Any]) -> None:
        cleaned.append("done")

    added = reconcile_finalizer(writer, WIDGETS, widget(), OURS, cleanup)  # type: ignore[arg-type]
    assert added.step is FinalizerStep.ADD and added.proceed and added.obj is not None
    assert has_finalizer(added.obj, OURS) and cleaned == []

    live = reconcile_finalizer(writer, WIDGETS, widget(OURS), OURS, cleanup)  # type: ignore[arg-type]
    assert live.step is FinalizerStep.PROCEED and live.proceed and len(writer.patches) == 1

    removed = reconcile_finalizer(writer, WIDGETS, widget(OURS, deleting=True), OURS, cleanup)  # type: ignore[arg-type]
    assert removed.step is FinalizerStep.REMOVE and not removed.proceed and cleaned == ["done"]
    assert writer.patches[-1][1]["metadata"]["finalizers"] is None

    foreign = reconcile_finalizer(writer, WIDGETS, widget("x.io/y", deleting=True), OURS, cleanup)  # type: ignore[arg-type]
    assert foreign.step is FinalizerStep.NOTHING and not foreign.proceed and len(writer.patches) == 2
