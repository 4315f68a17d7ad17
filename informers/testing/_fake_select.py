"""Label and field selectors of the fake apiserver: parsed once per request, matched per object.

Label selectors take the apiserver's grammar: equality (``a=b``, ``a==b``, ``a!=b``), existence
(``a``, ``!a``) and sets (``a in (x,y)``, ``a notin (x)``), comma-separated and all required.
Field selectors support ``metadata.name`` and ``metadata.namespace`` with ``=``, ``==`` and
``!=``, the fields every resource serves. Anything else is refused with 400, as the apiserver does.
Invariant: ``Selector.matches`` never raises and never mutates the object it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._fake_status import bad_request

__all__ = ["Selector", "parse_selectors"]

_KEY = re.compile(r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$")
_SET = re.compile(r"^(\S+)\s+(in|notin)\s+\((.*)\)$")
_FIELDS = ("metadata.name", "metadata.namespace")

_Test = Callable[[Mapping[str, Any]], bool]


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _key(key: str, selector: str) -> str:
    if not _KEY.match(key):
        raise bad_request(f"unable to parse requirement: invalid label key {key!r} in selector {selector!r}")
    return key


def _label_term(term: str, selector: str) -> _Test:
    found = _SET.match(term)
    if found:
        key, op = _key(found.group(1), selector), found.group(2)
        values = frozenset(v.strip() for v in found.group(3).split(",") if v.strip())
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (s.strip() for s in term.split(op, 1))
            key = _key(key, selector)
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = _key(term[1:].strip(), selector)
        return lambda labels: key not in labels
    key = _key(term, selector)
    return lambda labels: key in labels


def _field_term(term: str, selector: str) -> tuple[str, bool, str]:
    for op in ("!=", "==", "="):
        if op in term:
            field, value = (s.strip() for s in term.split(op, 1))
            if field not in _FIELDS:
                raise bad_request(f"field label not supported: {field}")
            return field, op != "!=", value
    raise bad_request(f"invalid field selector {selector!r}: {term!r} is not field=value")


@dataclass(frozen=True, slots=True)
class Selector:
    """The conjunction of a label selector and a field selector (either may be empty)."""

    labels: tuple[_Test, ...] = ()
    fields: tuple[tuple[str, bool, str], ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata")
        if not isinstance(meta, Mapping):
            meta = {}
        labels = meta.get("labels")
        if not isinstance(labels, Mapping):
            labels = {}
        for test in self.labels:
            if not test(labels):
                return False
        for field, equal, value in self.fields:
            actual = meta.get(field.split(".", 1)[1]) or ""
            if (actual == value) != equal:
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.labels and not self.fields


def parse_selectors(label_selector: str | None, field_selector: str | None) -> Selector:
    """Parse both selectors; raises ``FakeStatus`` 400 for what the apiserver would refuse."""
    labels = tuple(_label_term(t, label_selector) for t in _split(label_selector)) if label_selector else ()
    fields = tuple(_field_term(t, field_selector) for t in _split(field_selector)) if field_selector else ()
    return Selector(labels, fields)
