"""Sharding objects by UID across replicas, as kube-state-metrics does.

Replica ``shard`` of ``total`` keeps an object iff ``jump_hash(fnv1a_64(uid), total) == shard``:
FNV-1a (64 bit) over the UID's bytes, then Lamping and Veach's jump consistent hash, bit for bit
what kube-state-metrics computes with Go's ``hash/fnv`` and ``dgryski/go-jump`` (the tests check
Python against a Go program). Jump hashing moves only ``1/total`` of the keys when a shard is
added. The ordinal comes from ``--shard`` or from a StatefulSet pod's name (``<sts>-<ordinal>``,
``POD_NAME`` or the hostname); ``total`` from a flag. ``ShardFilter`` is the predicate a
``Controller`` applies to keys before they are enqueued (``Controller(key_filter=...)``), so a
replica reconciles only its share. As with kube-state-metrics, every replica still lists and
watches everything: sharding divides the reconcile work, not the cache.
Invariant: for any ``total``, every UID is kept by exactly one ordinal in ``range(total)``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from .request import Request

__all__ = [
    "Shard",
    "ShardFilter",
    "ShardFilterStatistics",
    "fnv1a_64",
    "jump_hash",
    "ordinal_from_pod_name",
    "resolve_shard",
    "shard_lease_name",
    "shard_of",
]

_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF
_JUMP_MULTIPLIER = 2862933555777941757
_POD_ORDINAL = re.compile(r"^(?P<set>.+)-(?P<ordinal>0|[1-9][0-9]*)$")


def fnv1a_64(data: bytes) -> int:
    """64-bit FNV-1a of ``data`` (Go's ``hash/fnv.New64a``)."""
    h = _FNV64_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV64_PRIME) & _MASK64
    return h


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash: the bucket in ``range(buckets)`` of the 64-bit ``key`` (Lamping and
    Veach, 2014), with the same float64 arithmetic as ``dgryski/go-jump``."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets!r}")
    key &= _MASK64
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * _JUMP_MULTIPLIER + 1) & _MASK64
        j = int(float(b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def shard_of(uid: str, total: int) -> int:
    """The ordinal that keeps ``uid`` among ``total`` shards."""
    return jump_hash(fnv1a_64(uid.encode()), total)


def ordinal_from_pod_name(name: str) -> int:
    """The ordinal of a StatefulSet pod named ``<statefulset>-<ordinal>``; ``ValueError`` otherwise."""
    match = _POD_ORDINAL.match(name.strip())
    if match is None:
        raise ValueError(f"{name!r} is not a StatefulSet pod name (<statefulset>-<ordinal>)")
    return int(match["ordinal"])


def shard_lease_name(election_id: str, ordinal: int) -> str:
    """The Lease one shard's replicas elect a leader on: ``<election id>-shard-<ordinal>``."""
    if not election_id:
        raise ValueError("election_id must not be empty")
    if ordinal < 0:
        raise ValueError(f"ordinal must not be negative, got {ordinal!r}")
    return f"{election_id}-shard-{ordinal}"


@dataclass(frozen=True, slots=True)
class Shard:
    """This replica's place: ``ordinal`` in ``range(total)``. ``total`` 1 (the default) is no
    sharding: every UID is kept."""

    ordinal: int = 0
    total: int = 1

    def __post_init__(self) -> None:
        if self.total < 1:
            raise ValueError(f"total shards must be at least 1, got {self.total!r}")
        if not 0 <= self.ordinal < self.total:
            raise ValueError(f"shard ordinal must be in 0..{self.total - 1}, got {self.ordinal!r}")

    @property
    def enabled(self) -> bool:
        return self.total > 1

    def keeps(self, uid: str) -> bool:
        """Whether this shard owns ``uid``."""
        return self.total == 1 or shard_of(uid, self.total) == self.ordinal

    def lease_name(self, election_id: str) -> str:
        """``election_id`` without sharding, else ``<election_id>-shard-<ordinal>``."""
        return shard_lease_name(election_id, self.ordinal) if self.enabled else election_id

    def __str__(self) -> str:
        return f"shard {self.ordinal}/{self.total}"


def resolve_shard(
    total: int,
    shard: int | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    hostname: str | None = None,
) -> Shard:
    """This replica's ``Shard``: the explicit ``shard`` (``--shard``) if given, else the ordinal
    of the StatefulSet pod named by ``POD_NAME`` (downward API), else of the hostname (a
    StatefulSet pod's hostname is its name). ``total`` 1 needs no ordinal."""
    if total == 1 and shard is None:
        return Shard(0, 1)
    if shard is not None:
        return Shard(shard, total)
    env = os.environ if environ is None else environ
    source = env.get("POD_NAME") or hostname or socket.gethostname()
    try:
        ordinal = ordinal_from_pod_name(source)
    except ValueError as exc:
        raise ValueError(
            f"cannot tell this replica's shard: pass --shard, or run it as a StatefulSet "
            f"pod (POD_NAME or hostname <statefulset>-<ordinal>); {exc}"
        ) from exc
    return Shard(ordinal, total)


@dataclass(frozen=True, slots=True)
class ShardFilterStatistics:
    shard: int
    total: int
    kept: int
    """Keys this shard enqueued."""
    dropped: int
    """Keys left to the other shards."""


class ShardFilter:
    """``filter(request) -> bool``: keep the keys whose UID belongs to ``shard``; pass it as
    ``Controller(key_filter=ShardFilter(shard))``. Called on informer threads (thread-safe)."""

    __slots__ = ("_dropped", "_kept", "_lock", "shard")

    def __init__(self, shard: Shard) -> None:
        self.shard = shard
        self._lock = threading.Lock()
        self._kept = self._dropped = 0

    def __call__(self, request: Request) -> bool:
        keep = self.shard.keeps(request.uid)
        with self._lock:
            if keep:
                self._kept += 1
            else:
                self._dropped += 1
        return keep

    def statistics(self) -> ShardFilterStatistics:
        with self._lock:
            return ShardFilterStatistics(self.shard.ordinal, self.shard.total, self._kept, self._dropped)

    def __repr__(self) -> str:
        return f"<ShardFilter {self.shard}>"
