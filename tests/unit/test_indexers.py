"""Built-in index functions and the normalisation of what index functions return."""

from __future__ import annotations

import pytest

from informers.indexers import (
    IndexerError,
    index_by_label,
    index_by_namespace,
    index_by_owner_uid,
    index_by_uid,
    index_values,
)


def test_builtins() -> None:
    obj = {
        "metadata": {
            "name": "a",
            "namespace": "ns",
            "uid": "u-a",
            "labels": {"app": "web"},
            "ownerReferences": [{"uid": "u-cm"}, {"uid": "u-rs", "controller": True}],
        }
    }
    assert index_by_namespace(obj) == ("ns",)
    assert index_by_namespace({"metadata": {"name": "node"}}) == ("",)
    assert index_by_uid(obj) == ("u-a",) and index_by_uid({"metadata": {}}) == ()
    assert index_by_owner_uid(obj) == ("u-rs",)
    assert index_by_owner_uid({"metadata": {"ownerReferences": [{"uid": "x"}]}}) == ()
    by_app = index_by_label("app")
    assert by_app(obj) == ("web",) and index_by_label("tier")(obj) == ()
    assert "app" in by_app.__name__


def test_index_values_normalises_results() -> None:
    obj: dict = {}
    assert index_values("i", lambda o: None, obj) == ()  # type: ignore[arg-type, return-value]
    assert index_values("i", lambda o: "one", obj) == ("one",)  # a str is one value, not letters
    assert index_values("i", lambda o: ["a", "b", "a"], obj) == ("a", "b")
    assert index_values("i", lambda o: (v for v in "xy"), obj) == ("x", "y")


def test_index_values_wraps_failures_in_a_typed_error() -> None:
    def boom(obj: object) -> list[str]:
        raise KeyError("spec")

    with pytest.raises(IndexerError, match="'i' raised"):
        index_values("i", boom, {})
    with pytest.raises(IndexerError, match="must be str"):
        index_values("i", lambda o: [1], {})  # type: ignore[list-item, return-value]
    with pytest.raises(IndexerError, match="iterable"):
        index_values("i", lambda o: 5, {})  # type: ignore[arg-type, return-value]
