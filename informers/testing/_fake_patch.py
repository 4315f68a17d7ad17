"""Patch formats of the fake apiserver: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

``merge_patch`` is also what the fake uses for strategic merge patches (maps merge; lists are
replaced whole, where the real server would merge some lists by key) and for server-side apply
(the applied intent is merged over the live object; field ownership is not tracked).
``json_patch`` supports ``add``, ``remove``, ``replace``, ``move``, ``copy`` and ``test``; a
failed ``test`` or a missing path raises ``PatchError``, which the fake answers with 422 as the
apiserver does.
Invariant: neither function mutates its inputs; each returns a new document.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InformerdError

__all__ = ["PatchError", "json_patch", "merge_patch"]


class PatchError(InformerdError):
    """The patch cannot be applied (bad operation, missing path, failed ``test``)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: a patch object merges key by key (``null`` deletes); anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _tokens(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise PatchError(f"invalid JSON pointer {pointer!r}")
    if pointer == "":
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not for_add):
        raise PatchError(f"array index {index} out of range")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path element {token!r} not found")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_add=False)]
        else:
            raise PatchError(f"cannot descend into a {type(node).__name__} at {token!r}")
    return node


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path element {last!r} not found")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_add=False)]
    raise PatchError(f"cannot read {last!r} from a {type(parent).__name__}")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_add=True), value)
    else:
        raise PatchError(f"cannot add {last!r} to a {type(parent).__name__}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path element {last!r} not found")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, for_add=False)]
    else:
        raise PatchError(f"cannot remove {last!r} from a {type(parent).__name__}")
    return doc


def json_patch(doc: Any, operations: Sequence[Any]) -> Any:
    """RFC 6902: apply ``operations`` in order to a copy of ``doc``; all or nothing."""
    if not isinstance(operations, Sequence) or isinstance(operations, (str, bytes)):
        raise PatchError("a JSON patch is a list of operations")
    result = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, Mapping) or "path" not in op:
            raise PatchError(f"invalid operation {op!r}")
        kind, path = op.get("op"), _tokens(op["path"])
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation needs a value")
        if kind == "add":
            result = _add(result, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            result = _remove(result, path)
        elif kind == "replace":
            _get(result, path)  # must exist
            result = _add(_remove(result, path), path, copy.deepcopy(op["value"])) if path else op["value"]
        elif kind in ("move", "copy"):
            source = _tokens(op.get("from"))
            value = copy.deepcopy(_get(result, source))
            if kind == "move":
                result = _remove(result, source)
            result = _add(result, path, value)
        elif kind == "test":
            if _get(result, path) != op["value"]:
                raise PatchError(f"test failed: {op['path']} is not {op['value']!r}")
        else:
            raise PatchError(f"unknown operation {kind!r}")
    return result
