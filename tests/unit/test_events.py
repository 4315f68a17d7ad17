"""Event and notification records: frozen, slotted, and tombstone-friendly deletes."""

from __future__ import annotations

import dataclasses

import pytest

from informers.events import (
    Apply,
    DeletedFinalStateUnknown,
    Init,
    InitDone,
    ObjectAdded,
    ObjectDeleted,
    ObjectUpdated,
)


def test_records_are_frozen_and_slotted() -> None:
    ev = Apply({"metadata": {"name": "a"}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.obj = {}  # type: ignore[misc]
    assert not hasattr(ev, "__dict__") and not hasattr(Init(), "__dict__")
    assert InitDone("5") == InitDone("5")


def test_deleted_with_final_state() -> None:
    obj = {"metadata": {"name": "a", "namespace": "ns"}}
    note = ObjectDeleted(obj)
    assert not note.final_state_unknown
    assert note.last_state is obj and note.key == "ns/a"


def test_deleted_with_tombstone_unwraps_to_a_dict() -> None:
    last = {"metadata": {"name": "a", "namespace": "ns"}}
    note = ObjectDeleted(DeletedFinalStateUnknown("ns/a", last))
    assert note.final_state_unknown
    assert note.last_state is last and note.key == "ns/a"


def test_notification_defaults() -> None:
    assert ObjectAdded({}).in_initial_list is False
    assert ObjectUpdated({}, {}).is_resync is False
