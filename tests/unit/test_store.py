"""The indexed store: writes, index maintenance, atomic replace with tombstones, buffered replace,
relist entry reuse, reader isolation, and index consistency under concurrent readers."""

from __future__ import annotations

import copy
import gc
import threading
from typing import Any

import pytest

from informers.events import DeletedFinalStateUnknown
from informers.indexers import index_by_owner_uid
from informers.store import (
    IndexConflictError,
    IndexNotFoundError,
    ReplaceBufferClosedError,
    Store,
)

from .conftest import pod


def node_names(obj: dict[str, Any]) -> list[str]:
    """A multi-value index: every 'want-node-*' label value."""
    return [v for k, v in obj["metadata"].get("labels", {}).items() if k.startswith("want-node")]


# --- basic writes and reads -------------------------------------------------------------------


def test_upsert_get_delete_and_resource_version() -> None:
    s = Store()
    assert s.upsert(pod("a", rv="5")) is None
    old = s.upsert(pod("a", rv="6", labels={"v": "2"}))
    assert old is not None and old["metadata"]["resourceVersion"] == "5"
    got = s.get("default/a")
    assert got is not None and got["metadata"]["labels"] == {"v": "2"}
    assert len(s) == 1 and "default/a" in s and s.keys() == ["default/a"]
    assert s.resource_version == "6"
    deleted = s.delete(pod("a", rv="7"))
    assert deleted is not None and deleted["metadata"]["resourceVersion"] == "6"
    assert s.get("default/a") is None and len(s) == 0 and s.resource_version == "7"
    assert s.delete("default/a") is None
    stats = s.statistics()
    assert (stats.count, stats.upserts, stats.deletes, stats.bytes_held) == (0, 2, 1, 0)


def test_delete_accepts_key_and_tombstone() -> None:
    s = Store()
    s.upsert(pod("a"))
    s.upsert(pod("b"))
    assert s.delete("default/a") is not None
    assert s.delete(DeletedFinalStateUnknown("default/b", pod("b"))) is not None
    assert len(s) == 0


def test_cluster_scoped_objects_are_keyed_by_name_and_indexed_under_empty_namespace() -> None:
    s = Store()
    s.upsert({"kind": "Node", "metadata": {"name": "n1", "uid": "u-n1", "resourceVersion": "1"}})
    assert s.get("n1") is not None
    assert s.index_keys("namespace", "") == ["n1"]


def test_the_store_keeps_what_it_is_given_transforms_are_the_informers() -> None:
    obj = pod("a", managedFields=[{"manager": "x"}])
    s = Store()
    s.upsert(copy.deepcopy(obj))
    assert s.get("default/a") == obj


def test_a_raising_index_function_stores_the_object_unindexed_and_counts_it() -> None:
    """Regression: an index function that raised escaped the store, so the informer lost the
    object until the next relist."""

    def by_team(obj: dict[str, Any]) -> list[str]:
        return [obj["metadata"]["labels"]["team"]]  # KeyError for objects without the label

    s = Store({"team": by_team})
    s.upsert(pod("a", labels={"team": "red"}))
    s.upsert(pod("b"))  # raises inside the index function
    assert s.get("default/b") is not None
    assert s.index_keys("team", "red") == ["default/a"]
    assert s.list_index_values("team") == ["red"]
    assert s.index_keys("namespace", "default") and sorted(s.index_keys("namespace", "default")) == [
        "default/a",
        "default/b",
    ]
    assert s.statistics().index_errors == 1
    with s.begin_replace() as buffer:  # a relist goes through the same path
        buffer.add(pod("c"))
        buffer.commit("9")
    assert s.get("default/c") is not None and s.statistics().index_errors == 2


def test_get_by_uid() -> None:
    s = Store()
    s.upsert(pod("a", uid="u-1"))
    got = s.get_by_uid("u-1")
    assert got is not None and got["metadata"]["name"] == "a"
    assert s.get_by_uid("missing") is None
    s.delete("default/a")
    assert s.get_by_uid("u-1") is None


# --- indexes ------------------------------------------------------------------------------------


def test_multi_value_index_follows_updates_and_deletes() -> None:
    s = Store({"nodes": node_names})
    s.upsert(pod("a", labels={"want-node-1": "n1", "want-node-2": "n2"}))
    s.upsert(pod("b", labels={"want-node-1": "n2"}))
    assert set(s.index_keys("nodes", "n1")) == {"default/a"}
    assert set(s.index_keys("nodes", "n2")) == {"default/a", "default/b"}
    assert sorted(s.list_index_values("nodes")) == ["n1", "n2"]

    s.upsert(pod("a", rv="2", labels={"want-node-1": "n3"}))  # a leaves n1 and n2, joins n3
    assert s.index_keys("nodes", "n1") == []
    assert set(s.index_keys("nodes", "n2")) == {"default/b"}
    assert [o["metadata"]["name"] for o in s.by_index("nodes", "n3")] == ["a"]
    assert sorted(s.list_index_values("nodes")) == ["n2", "n3"]

    s.delete("default/b")
    assert sorted(s.list_index_values("nodes")) == ["n3"]
    s.delete("default/a")
    assert s.list_index_values("nodes") == []
    assert s.statistics().index_sizes == {"namespace": 0, "uid": 0, "nodes": 0}


def test_namespace_index_by_default() -> None:
    s = Store()
    for i in range(3):
        s.upsert(pod(f"p{i}", ns="ns1"))
    s.upsert(pod("q", ns="ns2"))
    assert sorted(o["metadata"]["name"] for o in s.by_index("namespace", "ns1")) == ["p0", "p1", "p2"]
    assert sorted(s.list_index_values("namespace")) == ["ns1", "ns2"]
    s.upsert(pod("q", ns="ns2", rv="2"))  # unchanged namespace: still filed once
    assert s.index_keys("namespace", "ns2") == ["ns2/q"]


def test_unknown_index_raises_typed_error() -> None:
    s = Store()
    with pytest.raises(IndexNotFoundError, match="nodes"):
        s.by_index("nodes", "n1")
    with pytest.raises(IndexNotFoundError):
        s.list_index_values("nodes")


def test_add_indexers_reindexes_existing_items_accepts_repeats_and_rejects_conflicts() -> None:
    s = Store()
    owner = {"uid": "rs-1", "controller": True}
    s.upsert(pod("a", ownerReferences=[owner]))
    s.upsert(pod("b"))
    s.add_indexers({"owner": index_by_owner_uid})
    assert s.index_keys("owner", "rs-1") == ["default/a"]
    s.upsert(pod("c", ownerReferences=[owner]))
    assert set(s.index_keys("owner", "rs-1")) == {"default/a", "default/c"}
    s.add_indexers({"owner": index_by_owner_uid})  # the same function again: a no-op
    assert set(s.index_keys("owner", "rs-1")) == {"default/a", "default/c"}
    with pytest.raises(IndexConflictError, match="owner"):
        s.add_indexers({"owner": lambda obj: ["other"]})
    with pytest.raises(IndexConflictError, match="namespace"):
        s.add_indexers({"namespace": index_by_owner_uid})


# --- replace ------------------------------------------------------------------------------------


def test_replace_reports_adds_updates_unchanged_and_tombstones() -> None:
    s = Store({"nodes": node_names})
    s.upsert(pod("keep", rv="1"))
    s.upsert(pod("change", rv="1"))
    s.upsert(pod("gone", rv="1", labels={"want-node": "n1"}))
    result = s.replace([pod("keep", rv="1"), pod("change", rv="2"), pod("new", rv="3")], "10")

    assert [o.key for o in result.added] == ["default/new"]
    assert [(old.resource_version, new.resource_version) for old, new in result.updated] == [("1", "2")]
    assert [o.key for o in result.unchanged] == ["default/keep"]
    assert len(result.deleted) == 1
    tomb = result.deleted[0]
    assert isinstance(tomb, DeletedFinalStateUnknown)
    assert tomb.key == "default/gone" and tomb.obj["metadata"]["name"] == "gone"
    assert result.resource_version == "10" and s.resource_version == "10"
    assert sorted(s.keys()) == ["default/change", "default/keep", "default/new"]
    assert s.list_index_values("nodes") == []  # the tombstoned object left every index
    assert s.statistics().replaces == 1


def test_replace_reports_an_object_recreated_with_a_new_uid_as_a_delete_and_an_add() -> None:
    """Regression: delete + re-create under one name across a relist came out as an update from the
    old UID to the new one, with no delete for the old UID."""
    s = Store()
    s.upsert(pod("a", rv="1", uid="old"))
    result = s.replace([pod("a", rv="1", uid="new")], "5")
    assert not result.updated and not result.unchanged
    assert [t.obj["metadata"]["uid"] for t in result.deleted] == ["old"]
    assert [v.uid for v in result.added] == ["new"]
    assert s.get_by_uid("old") is None and s.get_by_uid("new") is not None


def test_relist_reuses_cached_entries_with_same_uid_and_resource_version() -> None:
    s = Store()
    for i in range(5):
        s.upsert(pod(f"p{i}", rv=str(i + 1)))
    before = {k: s.get_raw(k) for k in s.keys()}
    relisted = [pod(f"p{i}", rv=str(i + 1)) for i in range(4)] + [pod("p4", rv="99")]
    result = s.replace(relisted, "100")
    assert len(result.unchanged) == 4 and len(result.updated) == 1
    for i in range(4):  # the very same bytes objects: no second copy was made
        assert s.get_raw(f"default/p{i}") is before[f"default/p{i}"]
    assert s.get_raw("default/p4") is not before["default/p4"]
    assert s.statistics().reused_on_last_replace == 4


def test_buffered_replace_is_invisible_until_commit() -> None:
    s = Store()
    s.upsert(pod("old"))
    buf = s.begin_replace()
    buf.add(pod("n1"))
    buf.add(pod("n2"))
    assert s.keys() == ["default/old"] and len(buf) == 2
    assert s.index_keys("namespace", "default") == ["default/old"]
    result = buf.commit("7")
    assert sorted(s.keys()) == ["default/n1", "default/n2"]
    assert [t.key for t in result.deleted] == ["default/old"]
    with pytest.raises(ReplaceBufferClosedError):
        buf.add(pod("late"))
    with pytest.raises(ReplaceBufferClosedError):
        buf.commit("8")


def test_aborted_and_superseded_buffers_change_nothing() -> None:
    s = Store()
    s.upsert(pod("old"))
    with s.begin_replace() as buf:
        buf.add(pod("x"))
    # leaving the block without commit aborted it
    with pytest.raises(ReplaceBufferClosedError):
        buf.commit("1")
    first = s.begin_replace()
    first.add(pod("y"))
    second = s.begin_replace()
    with pytest.raises(ReplaceBufferClosedError, match="superseded"):
        first.commit("2")
    second.add(pod("z"))
    second.commit("3")
    assert s.keys() == ["default/z"]


def test_indexer_added_while_a_buffer_is_open_covers_buffered_objects() -> None:
    s = Store()
    buf = s.begin_replace()
    buf.add(pod("a", labels={"want-node": "n1"}))
    s.add_indexers({"nodes": node_names})
    buf.commit("2")
    assert s.index_keys("nodes", "n1") == ["default/a"]


def test_duplicate_keys_in_a_list_keep_the_last() -> None:
    s = Store()
    result = s.replace([pod("a", rv="1"), pod("a", rv="2")], "2")
    assert len(result.added) == 1 and s.get("default/a")["metadata"]["resourceVersion"] == "2"  # type: ignore[index]


# --- isolation of readers -------------------------------------------------------------------


def test_readers_cannot_corrupt_the_cache() -> None:
    s = Store()
    s.upsert(pod("a", labels={"app": "web"}))
    for got in (s.get("default/a"), s.list()[0], s.by_index("namespace", "default")[0], s.get_by_uid("uid-default-a")):
        assert got is not None
        got["metadata"]["labels"]["app"] = "hacked"
        got["spec"]["containers"].clear()
    again = s.get("default/a")
    assert again is not None
    assert again["metadata"]["labels"] == {"app": "web"} and again["spec"]["containers"]
    assert s.get("default/a") is not s.get("default/a")  # every read is a fresh dict


def test_writers_mutating_the_object_afterwards_cannot_corrupt_the_cache() -> None:
    s = Store()
    obj = pod("a")
    s.upsert(obj)
    obj["metadata"]["namespace"] = "elsewhere"
    assert s.get("default/a")["metadata"]["namespace"] == "default"  # type: ignore[index]


def test_cached_entries_are_not_tracked_by_the_cyclic_gc() -> None:
    s = Store({"nodes": node_names})
    for i in range(50):
        s.upsert(pod(f"p{i}", labels={"want-node": f"n{i % 3}"}))
    for _ in range(4):  # each pass untracks one more level of nested tuples
        gc.collect()
    entries = list(s._items.values())
    assert entries and not any(gc.is_tracked(e) for e in entries)


# --- concurrency ----------------------------------------------------------------------------


def test_concurrent_readers_always_see_consistent_indexes() -> None:
    """One writer upserts, deletes and replaces while readers check every index entry resolves to
    an object that really carries that index value."""
    s = Store({"nodes": node_names})
    stop = threading.Event()
    failures: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            for node in ("n0", "n1", "n2"):
                for obj in s.by_index("nodes", node):
                    if node not in node_names(obj):
                        failures.append(f"{obj['metadata']['name']} filed under {node}")
            for ns in s.list_index_values("namespace"):
                for key in s.index_keys("namespace", ns):
                    got = s.get(key)
                    if got is not None and got["metadata"]["namespace"] != ns:
                        failures.append(f"{key} filed under namespace {ns}")
            reads[0] += 1

    def writer() -> None:
        try:
            for round_ in range(60):
                for i in range(20):
                    s.upsert(
                        pod(
                            f"p{i}",
                            ns=f"ns{i % 2}",
                            rv=str(round_ * 100 + i),
                            labels={"want-node-a": f"n{(i + round_) % 3}", "want-node-b": f"n{i % 3}"},
                        )
                    )
                for i in range(0, 20, 3):
                    s.delete(f"ns{i % 2}/p{i}")
                if round_ % 10 == 0:
                    s.replace(
                        [pod(f"r{i}", ns="ns0", rv=str(round_), labels={"want-node": f"n{i % 3}"}) for i in range(15)],
                        str(round_),
                    )
        finally:
            stop.set()

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    w = threading.Thread(target=writer)
    w.start()
    w.join(timeout=30)
    stop.set()
    for t in readers:
        t.join(timeout=30)
    assert not failures, failures[:5]
    assert reads[0] > 0
    # Final state: every index entry resolves, and every object is filed under its values.
    for node in s.list_index_values("nodes"):
        for key in s.index_keys("nodes", node):
            assert node in node_names(s.get(key))  # type: ignore[arg-type]
    for cached in s.list():
        for node in node_names(cached):
            assert f"{cached['metadata']['namespace']}/{cached['metadata']['name']}" in s.index_keys("nodes", node)
