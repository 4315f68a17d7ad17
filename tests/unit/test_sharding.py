"""Sharding by UID: Python's FNV-1a 64 + jump hash equal Go's (committed vectors, and a live Go run
when the toolchain is present, as in CI); shards split UIDs with no overlap and no gap; ordinals from
StatefulSet pod names; the Controller's key filter drops other shards' keys before the queue."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from controllers.request import Request
from controllers.sharding import (
    Shard,
    ShardFilter,
    fnv1a_64,
    jump_hash,
    ordinal_from_pod_name,
    resolve_shard,
    shard_lease_name,
    shard_of,
)

GO_DIR = Path(__file__).parent / "sharding_go"
VECTORS = GO_DIR / "vectors.json"
MAX_TOTAL = 10


def random_uids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def run_go(uids: list[str]) -> list[dict[str, Any]]:
    go = shutil.which("go")
    assert go is not None
    proc = subprocess.run(
        [go, "run", str(GO_DIR / "main.go"), "-max", str(MAX_TOTAL)],
        input="\n".join(uids) + "\n",
        capture_output=True,
        text=True,
        timeout=240,
        cwd=GO_DIR,
    )
    assert proc.returncode == 0, proc.stderr
    vectors: list[dict[str, Any]] = json.loads(proc.stdout)
    return vectors


def assert_matches(vectors: list[dict[str, Any]]) -> None:
    mismatches = []
    for v in vectors:
        ours = [jump_hash(fnv1a_64(v["uid"].encode()), total) for total in range(1, MAX_TOTAL + 1)]
        if fnv1a_64(v["uid"].encode()) != v["fnv1a_64"] or ours != v["shard_for_total"]:
            mismatches.append((v["uid"], v["fnv1a_64"], v["shard_for_total"], ours))
    assert mismatches == []


# -- bit for bit with Go --------------------------------------------------------------------------


def test_fnv1a_64_known_values() -> None:
    assert fnv1a_64(b"") == 0xCBF29CE484222325  # the offset basis
    assert fnv1a_64(b"a") == 0xAF63DC4C8601EC8C  # FNV-1a's published test value for "a"


def test_committed_go_vectors_match() -> None:
    vectors = json.loads(VECTORS.read_text())
    assert len(vectors) >= 200
    assert_matches(vectors)


# CI must have Go (.ci/run checks it): there a missing toolchain fails instead of skipping.
@pytest.mark.skipif(
    shutil.which("go") is None and not os.environ.get("CI"), reason="no Go toolchain (the committed vectors still ran)"
)
def test_python_equals_go_for_1000_random_uids_and_1_to_10_shards() -> None:
    uids = random_uids(1000, seed=7) + ["", "a", "ünïcode-uid", "x" * 300]
    vectors = run_go(uids)
    assert [v["uid"] for v in vectors] == uids
    assert_matches(vectors)


def regenerate_vectors() -> None:
    """``python tests/unit/test_sharding.py``: rewrite vectors.json with Go (200 seeded UIDs)."""
    vectors = run_go(random_uids(200, seed=20260801) + ["", "a", "ünïcode-uid"])
    VECTORS.write_text("[\n" + ",\n".join(json.dumps(v, ensure_ascii=False) for v in vectors) + "\n]\n")


# -- the split ------------------------------------------------------------------------------------


@pytest.mark.parametrize("total", [2, 3])
def test_shards_split_300_uids_with_no_overlap_and_no_gap(total: int) -> None:
    uids = random_uids(300, seed=total)
    shards = [Shard(ordinal, total) for ordinal in range(total)]
    kept = [{u for u in uids if shard.keeps(u)} for shard in shards]
    assert sum(len(k) for k in kept) == len(uids)  # no overlap
    assert set().union(*kept) == set(uids)  # no gap
    for share in kept:  # and roughly even (jump hash is uniform): each within 40 % of fair
        assert abs(len(share) - len(uids) / total) < 0.4 * len(uids) / total


def test_adding_a_shard_moves_only_keys_to_the_new_shard() -> None:
    uids = random_uids(2000, seed=11)
    for total in range(1, 8):
        for uid in uids:
            before, after = shard_of(uid, total), shard_of(uid, total + 1)
            assert after in (before, total)


def test_one_shard_keeps_everything_and_jump_hash_validates_buckets() -> None:
    assert all(Shard().keeps(u) for u in random_uids(50, seed=3))
    assert not Shard().enabled
    with pytest.raises(ValueError):
        jump_hash(1, 0)
    for bad in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError):
            Shard(*bad)


# -- where the ordinal comes from -----------------------------------------------------------------


def test_ordinal_from_statefulset_pod_names() -> None:
    assert ordinal_from_pod_name("informerd-0") == 0
    assert ordinal_from_pod_name("my-operator-12") == 12
    for bad in ("informerd", "informerd-", "informerd-01", "informerd-x", "-3", "7"):
        with pytest.raises(ValueError):
            ordinal_from_pod_name(bad)


def test_resolve_shard_prefers_the_flag_then_pod_name_then_hostname() -> None:
    assert resolve_shard(3, 2, environ={"POD_NAME": "op-1"}) == Shard(2, 3)
    assert resolve_shard(3, environ={"POD_NAME": "op-1"}, hostname="op-2") == Shard(1, 3)
    assert resolve_shard(3, environ={}, hostname="op-2") == Shard(2, 3)
    assert resolve_shard(1, environ={}, hostname="laptop") == Shard(0, 1)
    with pytest.raises(ValueError, match="--shard"):
        resolve_shard(3, environ={}, hostname="laptop")
    with pytest.raises(ValueError):
        resolve_shard(3, environ={"POD_NAME": "op-3"})  # ordinal beyond total


def test_lease_names_per_shard() -> None:
    assert shard_lease_name("abcd1234.example.com", 2) == "abcd1234.example.com-shard-2"
    assert Shard(1, 3).lease_name("op") == "op-shard-1"
    assert Shard().lease_name("op") == "op"


# -- the filter ---------------------------------------------------------------------------------


def test_shard_filter_keeps_its_share_and_counts() -> None:
    uids = random_uids(100, seed=5)
    filters = [ShardFilter(Shard(n, 2)) for n in range(2)]
    for uid in uids:
        assert sum(f(Request("Widget", uid)) for f in filters) == 1
    stats = [f.statistics() for f in filters]
    assert sum(s.kept for s in stats) == 100 and all(s.kept + s.dropped == 100 for s in stats)
    assert (stats[1].shard, stats[1].total) == (1, 2)


if __name__ == "__main__":
    regenerate_vectors()
    sys.exit(0)
