"""Status conditions (``status.conditions``, the ``metav1.Condition`` shape) on plain dicts.

Functions here take either a whole object (a dict with ``metadata``/``kind``; conditions live in
``obj["status"]["conditions"]``) or its ``status`` dict, and edit it in place like
``meta.SetStatusCondition``: ``set_condition`` adds or updates one condition by ``type`` and
returns whether anything changed, so a reconciler writes status only when it must (idempotency).
Values are checked against the API's validation (reason is CamelCase, status is True/False/Unknown)
so a bad condition fails here, not as a 422 from the apiserver. No I/O; time comes from a ``Clock``.
Invariant: ``lastTransitionTime`` changes only when a condition is added or its ``status``
changes; rewriting the same status with a new reason, message or generation keeps it.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from informers.clock import SYSTEM_CLOCK, Clock
from informers.errors import InformerdError
from informers.objects import generation

__all__ = [
    "ConditionError",
    "get_condition",
    "is_false",
    "is_true",
    "is_unknown",
    "remove_condition",
    "set_condition",
]

_STATUSES = ("True", "False", "Unknown")
# The apiserver's metav1.Condition validation (apimachinery validation.go).
_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_TYPE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
)
_MAX_TYPE, _MAX_REASON, _MAX_MESSAGE = 316, 1024, 32768

_Conditions = list[dict[str, Any]]


class ConditionError(InformerdError, ValueError):
    """A condition value the apiserver would reject, or a ``status.conditions`` that is not a list."""


def _is_object(target: MutableMapping[str, Any]) -> bool:
    return "metadata" in target or "kind" in target or "apiVersion" in target


def _status_of(target: MutableMapping[str, Any], *, create: bool) -> MutableMapping[str, Any] | None:
    if not _is_object(target):
        return target
    status = target.get("status")
    if isinstance(status, MutableMapping):
        return status
    if not create:
        return None
    if status is not None:
        raise ConditionError(f"status is a {type(status).__name__}, not an object")
    target["status"] = status = {}
    return status


def _conditions(status: MutableMapping[str, Any] | None, *, create: bool) -> _Conditions | None:
    if status is None:
        return None
    conditions = status.get("conditions")
    if conditions is None:
        if not create:
            return None
        status["conditions"] = conditions = []
    if not isinstance(conditions, list):
        raise ConditionError(f"status.conditions is a {type(conditions).__name__}, not a list")
    return conditions


def _timestamp(clock: Clock) -> str:
    # metav1.Time serialises to whole seconds in UTC.
    return datetime.fromtimestamp(int(clock.time()), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_string(status: str | bool) -> str:
    if status is True:
        return "True"
    if status is False:
        return "False"
    if status not in _STATUSES:
        raise ConditionError(f"condition status must be one of {_STATUSES} (or a bool), got {status!r}")
    return status


def _validate(type_: str, reason: str, message: str, observed_generation: int | None) -> None:
    if not isinstance(type_, str) or not type_ or len(type_) > _MAX_TYPE or not _TYPE.match(type_):
        raise ConditionError(f"condition type {type_!r} is not a valid qualified name (e.g. 'Ready')")
    if not isinstance(reason, str) or not reason or len(reason) > _MAX_REASON or not _REASON.match(reason):
        raise ConditionError(
            f"condition reason {reason!r} must be CamelCase: a letter, then letters, digits, '_', ',' or ':'"
        )
    if not isinstance(message, str) or len(message) > _MAX_MESSAGE:
        raise ConditionError(f"condition message must be a str of at most {_MAX_MESSAGE} characters")
    if observed_generation is not None and (
        not isinstance(observed_generation, int) or isinstance(observed_generation, bool) or observed_generation < 0
    ):
        raise ConditionError(f"observed_generation must be an int >= 0, got {observed_generation!r}")


def set_condition(
    target: MutableMapping[str, Any],
    type: str,  # noqa: A002 - the API's field name
    status: str | bool,
    reason: str,
    message: str = "",
    observed_generation: int | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    """Add or update the condition ``type`` on an object or status dict; True if anything changed.

    ``status`` is ``"True"``/``"False"``/``"Unknown"`` or a bool. ``observed_generation`` defaults
    to the object's ``metadata.generation`` when ``target`` is a whole object (the generation the
    reconciler acted on); for a bare status dict it is omitted unless given.
    """
    status_value = _status_string(status)
    if observed_generation is None and _is_object(target):
        observed_generation = generation(target)
    _validate(type, reason, message, observed_generation)
    conditions = _conditions(_status_of(target, create=True), create=True)
    assert conditions is not None
    wanted: dict[str, Any] = {"type": type, "status": status_value}
    if observed_generation is not None:
        wanted["observedGeneration"] = observed_generation
    wanted["reason"] = reason
    wanted["message"] = message
    for index, current in enumerate(conditions):  # noqa: B007 - index is used after the loop
        if isinstance(current, MutableMapping) and current.get("type") == type:
            break
    else:
        wanted["lastTransitionTime"] = _timestamp(clock)
        conditions.append(wanted)
        return True
    # Keep the transition time unless the status flipped (or it was never set).
    transition = current.get("lastTransitionTime")
    if current.get("status") != status_value or not isinstance(transition, str) or not transition:
        transition = _timestamp(clock)
    wanted["lastTransitionTime"] = transition
    if dict(current) == wanted:
        return False
    conditions[index] = wanted
    return True


def get_condition(target: MutableMapping[str, Any], type: str) -> dict[str, Any] | None:  # noqa: A002
    """The condition ``type`` (the dict inside ``target``, not a copy), or None."""
    conditions = _conditions(_status_of(target, create=False), create=False)
    for current in conditions or ():
        if isinstance(current, dict) and current.get("type") == type:
            return current
    return None


def remove_condition(target: MutableMapping[str, Any], type: str) -> bool:  # noqa: A002
    """Drop the condition ``type``; True if it was there."""
    conditions = _conditions(_status_of(target, create=False), create=False)
    if not conditions:
        return False
    kept = [c for c in conditions if not (isinstance(c, MutableMapping) and c.get("type") == type)]
    if len(kept) == len(conditions):
        return False
    conditions[:] = kept
    return True


def _has_status(target: MutableMapping[str, Any], type_: str, value: str) -> bool:
    condition = get_condition(target, type_)
    return condition is not None and condition.get("status") == value


def is_true(target: MutableMapping[str, Any], type: str) -> bool:  # noqa: A002
    """True if the condition exists with status ``"True"``."""
    return _has_status(target, type, "True")


def is_false(target: MutableMapping[str, Any], type: str) -> bool:  # noqa: A002
    return _has_status(target, type, "False")


def is_unknown(target: MutableMapping[str, Any], type: str) -> bool:  # noqa: A002
    """True if the condition is missing or has status ``"Unknown"`` (client-go's reading)."""
    condition = get_condition(target, type)
    return condition is None or condition.get("status") == "Unknown"
