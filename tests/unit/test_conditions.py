"""Status conditions: add/update by type, lastTransitionTime moves only on a status change,
observedGeneration defaults to the object's generation, API validation, read helpers."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.conditions import (
    ConditionError,
    get_condition,
    is_false,
    is_true,
    is_unknown,
    remove_condition,
    set_condition,
)
from informers.clock import FakeClock
from informers.errors import InformerdError

T0 = "2023-11-14T22:13:20Z"  # FakeClock's default wall time


def widget(gen: int = 3) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "generation": gen}}


def test_adding_a_condition_creates_status_and_stamps_the_transition() -> None:
    clock = FakeClock()
    obj = widget()
    assert set_condition(obj, "Ready", True, "ChildCreated", "child ok", clock=clock)
    assert obj["status"]["conditions"] == [
        {
            "type": "Ready",
            "status": "True",
            "observedGeneration": 3,
            "reason": "ChildCreated",
            "message": "child ok",
            "lastTransitionTime": T0,
        }
    ]
    assert is_true(obj, "Ready") and not is_false(obj, "Ready") and not is_unknown(obj, "Ready")


def test_transition_time_changes_only_when_status_changes() -> None:
    clock = FakeClock()
    obj = widget()
    set_condition(obj, "Ready", "False", "Pending", clock=clock)
    first = get_condition(obj, "Ready")["lastTransitionTime"]  # type: ignore[index]
    clock.advance(60)
    # Same status, new reason/message/generation: updated, transition time kept.
    obj["metadata"]["generation"] = 4
    assert set_condition(obj, "Ready", "False", "StillPending", "waiting", clock=clock)
    cond = get_condition(obj, "Ready")
    assert cond is not None and cond["lastTransitionTime"] == first
    assert (cond["reason"], cond["message"], cond["observedGeneration"]) == ("StillPending", "waiting", 4)
    # The very same values again: nothing changes, and the caller learns it.
    assert not set_condition(obj, "Ready", "False", "StillPending", "waiting", clock=clock)
    clock.advance(60)
    assert set_condition(obj, "Ready", "True", "Done", clock=clock)
    assert get_condition(obj, "Ready")["lastTransitionTime"] == "2023-11-14T22:15:20Z"  # type: ignore[index]


def test_a_bare_status_dict_works_and_other_conditions_are_kept_in_order() -> None:
    clock = FakeClock()
    status: dict[str, Any] = {
        "conditions": [
            {
                "type": "Synced",
                "status": "True",
                "reason": "Ok",
                "message": "",
                "lastTransitionTime": "2020-01-01T00:00:00Z",
            }
        ]
    }
    set_condition(status, "Ready", "Unknown", "Reconciling", clock=clock)
    assert [c["type"] for c in status["conditions"]] == ["Synced", "Ready"]
    assert "observedGeneration" not in status["conditions"][1]  # no object, none given
    assert is_unknown(status, "Ready") and is_unknown(status, "Missing")
    set_condition(status, "Ready", "Unknown", "Reconciling", observed_generation=7, clock=clock)
    assert status["conditions"][1]["observedGeneration"] == 7
    assert remove_condition(status, "Synced") and not remove_condition(status, "Synced")
    assert [c["type"] for c in status["conditions"]] == ["Ready"]


def test_a_condition_without_transition_time_gets_one() -> None:
    obj = widget()
    obj["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "X", "message": ""}]}
    assert set_condition(obj, "Ready", True, "X", observed_generation=3, clock=FakeClock())
    assert get_condition(obj, "Ready")["lastTransitionTime"] == T0  # type: ignore[index]


@pytest.mark.parametrize(
    ("type_", "status", "reason", "match"),
    [
        ("Ready", "Yes", "Ok", "status"),
        ("Ready", "True", "not camel", "reason"),
        ("Ready", "True", "", "reason"),
        ("", "True", "Ok", "type"),
        ("bad type!", "True", "Ok", "type"),
    ],
)
def test_values_the_apiserver_would_reject_fail_early(type_: str, status: str, reason: str, match: str) -> None:
    with pytest.raises(ConditionError, match=match) as caught:
        set_condition(widget(), type_, status, reason)
    assert isinstance(caught.value, InformerdError) and isinstance(caught.value, ValueError)


def test_reads_on_objects_without_status_are_empty() -> None:
    obj = widget()
    assert get_condition(obj, "Ready") is None and not is_true(obj, "Ready")
    assert not remove_condition(obj, "Ready") and "status" not in obj
    with pytest.raises(ConditionError, match="not a list"):
        set_condition({"kind": "X", "status": {"conditions": {}}}, "Ready", True, "Ok")
    assert set_condition(widget(), "example.com/Ready", True, "Ok")  # prefixed types are valid
