"""The compressed store form (``informers.compression``): reads equal the plain store's, indexes are
unaffected, deletes and relist tombstones carry the decoded state, a relist reuses compressed entries
and keeps the dictionary, when the dictionary is trained, and the typed error without the extra."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from typing import Any

import orjson
import pytest

from informers.compression import (
    CompressionUnavailableError,
    ZstdCodec,
    store_codec,
    store_compression_problem,
)
from informers.errors import ConfigError, InformerdError
from informers.events import DeletedFinalStateUnknown
from informers.indexers import index_by_label, index_by_owner_uid
from informers.store import Store, StoredObject

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def rich_pod(i: int, rng: random.Random, rv: int | None = None, **labels: str) -> dict[str, Any]:
    """A pod of ~1 KB with per-object random values, so that compression has something to do."""
    app = f"app-{i % 7}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{app}-{i}",
            "namespace": f"ns-{i % 3}",
            "uid": f"{rng.getrandbits(128):032x}",
            "resourceVersion": str(rv if rv is not None else 100 + i),
            "labels": {"app": app, "hash": f"{rng.getrandbits(32):08x}", **labels},
            "ownerReferences": [{"kind": "ReplicaSet", "name": f"{app}-rs", "uid": f"rs-{i % 5}", "controller": True}],
        },
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": f"registry.example.com/{app}:v1.{rng.randrange(50)}",
                    "env": [{"name": f"ENV_{j}", "value": f"{rng.getrandbits(40):010x}"} for j in range(4)],
                    "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
                }
            ],
            "nodeName": f"node-{rng.randrange(20)}",
            "restartPolicy": "Always",
        },
        "status": {"phase": "Running", "podIP": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"},
    }


def key(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def pods(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [rich_pod(i, rng) for i in range(n)]


def small_codec() -> ZstdCodec:
    """Trains after 32 objects (default 256) so tests stay small; a list's end trains on 16 or more."""
    return ZstdCodec(sample_count=32, min_samples=16, dict_size=4096)


def held(store: Store) -> list[bytes]:
    return [v.data for v in store.list_views()]


INDEXERS = {"owner": index_by_owner_uid, "app": index_by_label("app")}


def assert_same_reads(plain: Store, compressed: Store) -> None:
    """Every read of the compressed store equals the plain store's, JSON byte for byte."""
    assert sorted(plain.keys()) == sorted(compressed.keys())
    for k in plain.keys():
        assert compressed.get(k) == plain.get(k)
        assert compressed.get_raw(k) == plain.get_raw(k)
        obj = plain.get(k)
        assert obj is not None
        assert compressed.get_by_uid(obj["metadata"]["uid"]) == obj
    assert sorted(map(key, compressed.list())) == sorted(map(key, plain.list()))
    assert {key(o): o for o in compressed.list()} == {key(o): o for o in plain.list()}
    for name in ("namespace", "uid", "owner", "app"):
        assert sorted(compressed.list_index_values(name)) == sorted(plain.list_index_values(name))
        for value in plain.list_index_values(name):
            assert sorted(compressed.index_keys(name, value)) == sorted(plain.index_keys(name, value))
            got = {key(o): o for o in compressed.by_index(name, value)}
            assert got == {key(o): o for o in plain.by_index(name, value)}


# --- round trip and the held form ---------------------------------------------------------------


def test_a_first_list_ends_fully_compressed_and_reads_equal_the_plain_store() -> None:
    objects = pods(200)
    plain, compressed = Store(INDEXERS), Store(INDEXERS, codec=small_codec())
    plain.replace(objects, "1000")
    compressed.replace(objects, "1000")
    assert all(d.startswith(ZSTD_MAGIC) for d in held(compressed))  # the 32 samples were recompressed
    assert_same_reads(plain, compressed)
    stats = compressed.statistics()
    assert stats.codec is not None and stats.codec.trained and stats.codec.trained_on == 32
    assert stats.codec.dictionary_bytes > 0
    assert stats.bytes_held * 3 < plain.statistics().bytes_held
    assert stats.bytes_held == sum(len(d) for d in held(compressed))
    assert plain.statistics().codec is None


def test_reads_are_fresh_dicts_the_caller_may_mutate() -> None:
    s = Store(codec=small_codec())
    s.replace(pods(40), "1")
    k = s.keys()[0]
    first = s.get(k)
    assert first is not None
    first["metadata"]["labels"]["app"] = "mutated"
    second = s.get(k)
    assert second is not None and second["metadata"]["labels"]["app"] != "mutated"


def test_views_decode_and_give_the_json() -> None:
    s = Store(codec=small_codec())
    objects = pods(40)
    s.replace(objects, "1")
    changed = dict(objects[0], status={"phase": "Succeeded"})
    changed["metadata"] = dict(objects[0]["metadata"], resourceVersion="999")
    old = s.upsert_view(changed)
    assert isinstance(old, StoredObject) and old.codec is not None
    assert old.data.startswith(ZSTD_MAGIC)
    assert old.decode() == objects[0]
    assert orjson.loads(old.to_json()) == objects[0]
    assert s.get(key(objects[0])) == changed
    plain_view = StoredObject(orjson.dumps(objects[1]), key(objects[1]), "u", "1")
    assert plain_view.to_json() is plain_view.data and plain_view.decode() == objects[1]


def test_a_short_first_list_trains_at_its_end() -> None:
    codec = small_codec()
    s = Store(codec=codec)
    s.replace(pods(20), "1")  # fewer than sample_count (32), at least min_samples (16)
    assert codec.statistics().trained and codec.statistics().trained_on == 20
    assert all(d.startswith(ZSTD_MAGIC) for d in held(s))


def test_a_tiny_first_list_stays_plain_until_enough_objects_arrive() -> None:
    codec = small_codec()
    s, plain = Store(INDEXERS, codec=codec), Store(INDEXERS)
    objects = pods(60)
    s.replace(objects[:3], "1")
    plain.replace(objects[:3], "1")
    assert not codec.statistics().trained
    assert not any(d.startswith(ZSTD_MAGIC) for d in held(s))
    for obj in objects[3:]:  # watch events: the 32nd object trains the dictionary
        s.upsert(obj)
        plain.upsert(obj)
    assert codec.statistics().trained and codec.statistics().trained_on == 32
    frames = sum(d.startswith(ZSTD_MAGIC) for d in held(s))
    assert frames == 60 - 31  # the 31 objects held before training stay plain until they change
    assert_same_reads(plain, s)


def test_samples_zstd_cannot_train_on_fall_back_to_compression_without_a_dictionary() -> None:
    codec = ZstdCodec(sample_count=2, min_samples=1)
    s, plain = Store(codec=codec), Store()
    objects = pods(10)
    for obj in objects:
        s.upsert(obj)
        plain.upsert(obj)
    stats = codec.statistics()
    assert stats.trained and stats.dictionary_bytes == 0 and stats.trained_on == 2
    assert sum(d.startswith(ZSTD_MAGIC) for d in held(s)) == 9  # the first sample stays plain
    assert {k: s.get(k) for k in s.keys()} == {k: plain.get(k) for k in plain.keys()}


# --- indexes, deletes, tombstones, relists -------------------------------------------------------


def test_index_updates_and_deletes_match_the_plain_store() -> None:
    objects = pods(80)
    plain, compressed = Store(INDEXERS), Store(INDEXERS, codec=small_codec())
    for s in (plain, compressed):
        s.replace(objects, "1000")
        moved = dict(objects[5])
        moved["metadata"] = dict(objects[5]["metadata"], labels={"app": "moved"}, resourceVersion="2000")
        s.upsert(moved)
        s.delete(objects[6])  # by object
        s.delete(key(objects[7]))  # by key
        s.delete(DeletedFinalStateUnknown(key(objects[8]), objects[8]))  # by tombstone
    assert_same_reads(plain, compressed)
    assert compressed.index_keys("app", "moved") == [key(objects[5])]
    assert key(objects[5]) not in compressed.index_keys("app", objects[5]["metadata"]["labels"]["app"])
    assert compressed.statistics().bytes_held == sum(len(d) for d in held(compressed))


def test_delete_returns_the_decoded_last_state() -> None:
    objects = pods(40)
    s = Store(codec=small_codec())
    s.replace(objects, "1")
    assert s.delete(key(objects[3])) == objects[3]
    view = s.delete_view(objects[4])
    assert view is not None and view.data.startswith(ZSTD_MAGIC) and view.decode() == objects[4]
    assert s.get(key(objects[3])) is None and s.get_by_uid(objects[4]["metadata"]["uid"]) is None


def test_add_indexers_later_files_the_compressed_objects() -> None:
    objects = pods(50)
    plain, compressed = Store(), Store(codec=small_codec())
    for s in (plain, compressed):
        s.replace(objects, "1")
        s.add_indexers(INDEXERS)
    assert_same_reads(plain, compressed)


def test_relist_reuses_compressed_entries_reports_changes_and_tombstones_and_keeps_the_dictionary() -> None:
    codec = small_codec()
    s = Store(INDEXERS, codec=codec)
    objects = pods(100)
    s.replace(objects, "1000")
    trained = codec.statistics()
    before = {v.key: v.data for v in s.list_views()}
    rng = random.Random(7)
    changed = dict(objects[0], status={"phase": "Failed"})
    changed["metadata"] = dict(objects[0]["metadata"], resourceVersion="5000")
    fresh = [rich_pod(1000 + i, rng) for i in range(40)]
    relist = [changed, *objects[1:90], *fresh]  # objects[90:] are gone
    result = s.replace(relist, "6000")

    assert len(result.unchanged) == 89 and all(v.data is before[v.key] for v in result.unchanged)
    assert [(old.decode(), new.decode()) for old, new in result.updated] == [(objects[0], changed)]
    assert sorted(v.key for v in result.added) == sorted(map(key, fresh))
    assert all(v.decode() == obj for v, obj in zip(sorted(result.added, key=lambda v: v.key), sorted(fresh, key=key)))
    tombstones = {t.key: t.obj for t in result.deleted}
    assert tombstones == {key(o): o for o in objects[90:]}
    assert codec.statistics() == trained  # never retrained: same samples, same dictionary
    assert all(d.startswith(ZSTD_MAGIC) for d in held(s))
    plain = Store(INDEXERS)
    plain.replace(relist, "6000")
    assert_same_reads(plain, s)


def test_a_relist_after_late_training_keeps_unchanged_plain_entries_unchanged() -> None:
    codec = small_codec()
    s = Store(codec=codec)
    objects = pods(40)
    s.replace(objects[:3], "1")
    for obj in objects[3:]:
        s.upsert(obj)
    result = s.replace(objects, "2")  # the dictionary was trained by upserts since the last list
    assert len(result.unchanged) == 40 and not result.updated and not result.added
    assert {k: s.get(k) for k in s.keys()} == {key(o): o for o in objects}


# --- threads ------------------------------------------------------------------------------------


def test_concurrent_readers_and_a_writer_read_every_object_whole() -> None:
    objects = pods(300)
    s = Store(codec=ZstdCodec(sample_count=64))
    s.replace(objects[:100], "1")
    expected = {key(o): o for o in objects}
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for obj in s.list():
                if expected[key(obj)] != obj:
                    errors.append(key(obj))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for obj in objects[100:]:
            s.upsert(obj)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert {k: s.get(k) for k in s.keys()} == expected


# --- options and the missing extra ----------------------------------------------------------------


def test_store_codec_names() -> None:
    assert store_codec(None) is None
    assert isinstance(store_codec("zstd"), ZstdCodec)
    with pytest.raises(ConfigError, match="unknown store compression 'lz4'"):
        store_codec("lz4")
    assert store_compression_problem("zstd") is None
    assert store_compression_problem(None) is None
    with pytest.raises(ConfigError):
        ZstdCodec(sample_count=4, min_samples=8)


def test_without_the_extra_choosing_zstd_raises_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from informers.informer import InformerOptions, SharedInformer
    from informers.resources import Resource
    from informers.testing.fake import FakeCluster

    monkeypatch.setitem(sys.modules, "zstandard", None)  # what an install without the extra sees
    with pytest.raises(CompressionUnavailableError, match=r"informerd\[compressed\]") as info:
        store_codec("zstd")
    assert isinstance(info.value, ConfigError) and isinstance(info.value, InformerdError)
    problem = store_compression_problem("zstd")
    assert problem is not None and "compressed" in problem
    configmaps = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
    options = InformerOptions(store_compression="zstd")
    with pytest.raises(CompressionUnavailableError):
        SharedInformer(FakeCluster(), configmaps, options=options)  # type: ignore[arg-type]
    SharedInformer(FakeCluster(), configmaps)  # type: ignore[arg-type]  # the default needs nothing


def test_the_library_imports_without_zstandard_and_never_imports_it_unasked() -> None:
    """A fresh interpreter where ``zstandard`` cannot be imported loads every public module; one
    where it can does not load it until a compressed store is asked for."""
    code = (
        "import sys\n"
        "import informers, informers.compression, informers.store, informers.informer, controllers.daemon\n"
        "print('loaded' if 'zstandard' in sys.modules else 'not loaded')\n"
        "sys.modules['zstandard'] = None\n"
        "from informers.informer import InformerOptions\n"
        "InformerOptions(store_compression='zstd')\n"
        "from informers.compression import store_codec, CompressionUnavailableError\n"
        "try:\n    store_codec('zstd')\nexcept CompressionUnavailableError as e:\n    print('raised', type(e).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["not loaded", "raised CompressionUnavailableError"]
