"""The chaos suite's closing checks can fail: each invariant is shown a history that breaks it."""

from __future__ import annotations

from typing import Any

from informers.events import DeletedFinalStateUnknown, ObjectAdded, ObjectDeleted, ObjectUpdated
from tests.integration.chaos_invariants import ordering_violations, replay


def obj(name: str, uid: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": uid, "resourceVersion": str(rv)}}


def test_a_clean_history_with_a_recreate_and_a_tombstone_passes() -> None:
    notes = [
        ObjectAdded(obj("a", "u1", 1)),
        ObjectUpdated(obj("a", "u1", 1), obj("a", "u1", 3)),
        ObjectUpdated(obj("a", "u1", 3), obj("a", "u1", 3), is_resync=True),
        ObjectDeleted(DeletedFinalStateUnknown("ns/a", obj("a", "u1", 3))),
        ObjectAdded(obj("a", "u2", 7)),
    ]
    problems, gone = ordering_violations(notes)
    assert problems == [] and gone == {"u1"}
    assert replay(notes) == {"ns/a": ("u2", "7")}


def test_each_broken_rule_is_reported() -> None:
    older = [ObjectAdded(obj("a", "u1", 5)), ObjectUpdated(obj("a", "u1", 5), obj("a", "u1", 4))]
    assert "not after 5" in ordering_violations(older)[0][0]
    after_delete = [
        ObjectAdded(obj("a", "u1", 5)),
        ObjectDeleted(obj("a", "u1", 6)),
        ObjectUpdated(obj("a", "u1", 6), obj("a", "u1", 8)),
    ]
    assert "while absent" in ordering_violations(after_delete)[0][0]
    twice = [ObjectAdded(obj("a", "u1", 5)), ObjectAdded(obj("a", "u1", 6))]
    assert "while present" in ordering_violations(twice)[0][0]
    stale_delete = [ObjectAdded(obj("a", "u1", 5)), ObjectDeleted(obj("a", "u1", 4))]
    assert "older than 5" in ordering_violations(stale_delete)[0][0]
    # a delete of an old UID must not remove the new UID that replaced it under the same name
    assert replay([ObjectAdded(obj("a", "u2", 9)), ObjectDeleted(obj("a", "u1", 8))]) == {"ns/a": ("u2", "9")}
