"""Compare storage forms for the informer cache: what does holding N pods cost with the GC on?

Generates N realistic pods (~6.5 KB of JSON each, a third of it managedFields), feeds them as wire
bytes through ``orjson.loads`` + strip-managedFields + the form's insert, then reads every object
back once. Each (form, run) happens in a fresh child process so RSS and GC state start clean;
the figures printed are medians over the runs. Forms:

  dict           transformed dicts kept as they are (reads hand out the shared dict: UNSAFE;
                 the "safe read" column deep-copies, which is what safety would cost)
  dict+freeze    the same, then ``gc.freeze()`` after loading (hides the cache from the collector)
  bytes-loose    ``orjson.dumps`` output kept as returned (possibly over-allocated)
  bytes          ``orjson.dumps`` output copied to an exact-size ``bytes``; reads ``orjson.loads``
  store          informers.store.Store (the chosen form, with namespace + uid indexes)
  store+zstd     the same with the opt-in compressed form (``InformerOptions(store_compression="zstd")``:
                 ``informers.compression.ZstdCodec``), loaded the way an informer's first list is
                 (a replace buffer, pods in key order as the apiserver lists them): the dictionary
                 is trained on the list's first 256 pods

Columns: insert/s (parse + transform + insert, GC on), read/s (``get`` of every key) and the same
as us/get, safe read/s (a read the caller may mutate without harming the cache), RSS/obj (RSS growth
after loading, divided by N; includes allocator slack), gc.collect (one full collection with the
cache loaded, after two warm-up collections), bytes/obj (payload size), later B/obj (store forms:
payload of 1,000 further pods upserted after the load, made from another seed: what objects the
dictionary never saw cost).

Usage: .venv/bin/python bench/store_forms.py [-n 10000] [--runs 3] [--forms dict,bytes,...] [--read-cost] [--train-sweep]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

FORMS = ("dict", "dict+freeze", "bytes-loose", "bytes", "store", "store+zstd")
LATER = 1_000


# --- realistic pods ----------------------------------------------------------------------------


def _fields_v1(rng: random.Random, containers: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}}
    for i in range(containers):
        spec[f'k:{{"name":"container-{i}"}}'] = {
            ".": {},
            "f:env": {f'k:{{"name":"ENV_{j}"}}': {".": {}, "f:name": {}, "f:value": {}} for j in range(6)},
            "f:image": {},
            "f:imagePullPolicy": {},
            "f:name": {},
            "f:ports": {'k:{"containerPort":8080,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
            "f:resources": {"f:limits": {"f:cpu": {}, "f:memory": {}}, "f:requests": {"f:cpu": {}}},
            "f:volumeMounts": {'k:{"mountPath":"/etc/config"}': {".": {}, "f:mountPath": {}, "f:name": {}}},
        }
    return {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}}}, "f:spec": spec}


def make_pod(i: int, rng: random.Random, namespace_count: int = 20) -> dict[str, Any]:
    ns = f"team-{i % namespace_count}"
    app = f"app-{i % 97}"
    rs_uid = f"{rng.getrandbits(128):032x}"
    containers = 2
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{app}-{rng.getrandbits(40):010x}",
            "namespace": ns,
            "uid": f"{rng.getrandbits(128):032x}",
            "resourceVersion": str(100000 + i),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "generateName": f"{app}-",
            "labels": {"app": app, "pod-template-hash": f"{rng.getrandbits(32):08x}", "tier": "backend"},
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
                "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{app}-rs",
                    "uid": rs_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": _fields_v1(rng, containers),
                },
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "subresource": "status",
                    "time": "2026-01-01T00:00:05Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:status": {
                            "f:conditions": {
                                f'k:{{"type":"{t}"}}': {".": {}, "f:status": {}}
                                for t in ("Ready", "PodScheduled", "Initialized")
                            },
                            "f:podIP": {},
                            "f:phase": {},
                        }
                    },
                },
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": f"container-{c}",
                    "image": f"registry.example.com/{app}/server:v1.{rng.randrange(100)}.{rng.randrange(100)}",
                    "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": f"ENV_{j}", "value": f"value-{rng.getrandbits(48):012x}"} for j in range(5)],
                    "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "http"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m"}},
                    "volumeMounts": [
                        {
                            "name": "kube-api-access",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": True,
                        },
                        {"name": "config", "mountPath": "/etc/config"},
                    ],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }
                for c in range(containers)
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": f"{app}-config", "defaultMode": 420}},
                {
                    "name": "kube-api-access",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                        }
                                    ]
                                }
                            },
                        ],
                    },
                },
            ],
            "nodeName": f"node-{rng.randrange(200)}",
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-01-01T00:00:05Z"}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "hostIP": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
            "podIP": f"10.244.{rng.randrange(256)}.{rng.randrange(256)}",
            "podIPs": [{"ip": f"10.244.{rng.randrange(256)}.{rng.randrange(256)}"}],
            "startTime": "2026-01-01T00:00:01Z",
            "qosClass": "Burstable",
            "containerStatuses": [
                {
                    "name": f"container-{c}",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "image": f"registry.example.com/{app}/server:v1",
                    "imageID": f"sha256:{rng.getrandbits(256):064x}",
                    "containerID": f"containerd://{rng.getrandbits(256):064x}",
                    "state": {"running": {"startedAt": "2026-01-01T00:00:04Z"}},
                    "lastState": {},
                }
                for c in range(containers)
            ],
        },
    }


def make_wire_pods(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [orjson.dumps(make_pod(i, rng)) for i in range(n)]


# --- one measurement (child process) -----------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"].pop("managedFields", None)
    return obj


def _key(obj: dict[str, Any]) -> str:
    m = obj["metadata"]
    return f"{m['namespace']}/{m['name']}"


def measure(form: str, n: int) -> dict[str, float]:
    wire = make_wire_pods(n)
    if form == "store+zstd":  # a list arrives in key order: the dictionary sees the first keys' pods
        wire.sort(key=lambda line: _key(orjson.loads(line)))
    later = make_wire_pods(LATER, seed=2)
    if form.startswith("store"):  # imports before the baseline: RSS/obj is the cache, not informers' modules
        import informers.compression
        import informers.store

        if form == "store+zstd":
            informers.compression.ZstdCodec()  # loads zstandard; the store's own codec is built below
    gc.collect()
    rss0 = _rss_bytes()
    loads, dumps = orjson.loads, orjson.dumps
    cache: dict[str, Any] = {}
    get: Callable[[str], Any]
    safe_get: Callable[[str], Any]
    store: Any = None
    keys: list[str]
    t0 = time.perf_counter()
    if form in ("dict", "dict+freeze"):
        for line in wire:
            obj = _strip(loads(line))
            cache[_key(obj)] = obj
        if form == "dict+freeze":
            gc.freeze()
        get = cache.get

        def safe_get(k: str) -> Any:
            return copy.deepcopy(cache[k])
    elif form in ("bytes", "bytes-loose"):
        exact = form == "bytes"
        for line in wire:
            obj = _strip(loads(line))
            data = dumps(obj)
            cache[_key(obj)] = bytes(memoryview(data)) if exact else data

        def get(k: str) -> Any:
            return loads(cache[k])

        safe_get = get
    elif form == "store":
        from informers.store import Store

        store = Store()
        for line in wire:
            store.upsert(_strip(loads(line)))
        get = store.get
        safe_get = store.get
    elif form == "store+zstd":
        from informers.compression import ZstdCodec
        from informers.store import Store

        store = Store(codec=ZstdCodec())
        with store.begin_replace() as buffer:
            for line in wire:
                buffer.add(_strip(loads(line)))
            buffer.commit("1")
        get = store.get
        safe_get = store.get
    else:
        raise SystemExit(f"unknown form {form!r}; choose from {', '.join(FORMS)}")
    insert_s = time.perf_counter() - t0
    del wire
    gc.collect()
    rss_per_obj = (_rss_bytes() - rss0) / n
    keys = list(store.keys()) if store is not None else list(cache)
    t0 = time.perf_counter()
    for k in keys:
        get(k)
    read_s = time.perf_counter() - t0
    sample = keys[: max(1, n // 10)]
    t0 = time.perf_counter()
    for k in sample:
        safe_get(k)
    safe_read_s = (time.perf_counter() - t0) * n / len(sample)
    gc.collect()  # warm-up: a long-running process has long since untracked its tuples
    gc.collect()
    t0 = time.perf_counter()
    gc.collect()
    collect_s = time.perf_counter() - t0
    later_payload = 0.0
    if store is not None:
        payload = store.statistics().bytes_held / n
        for line in later:
            store.upsert(_strip(loads(line)))
        later_payload = (store.statistics().bytes_held - payload * n) / LATER
    elif form.startswith("bytes"):
        payload = sum(len(v) for v in cache.values()) / n
    else:
        payload = sum(len(dumps(v)) for v in cache.values()) / n
    return {
        "insert_per_s": n / insert_s,
        "read_per_s": n / read_s,
        "safe_read_per_s": n / safe_read_s,
        "rss_per_obj": rss_per_obj,
        "collect_ms": collect_s * 1000,
        "payload_per_obj": payload,
        "later_payload_per_obj": later_payload,
    }


def read_cost(n: int, rounds: int = 7) -> str:
    """us per ``get`` of the plain and the compressed store, alternated in one process (the table's
    read/s come from separate processes, so machine noise lands on each form differently)."""
    from informers.compression import ZstdCodec
    from informers.store import Store

    plain, compressed = Store(), Store(codec=ZstdCodec())
    for store in (plain, compressed):
        with store.begin_replace() as buffer:
            for line in make_wire_pods(n):
                buffer.add(_strip(orjson.loads(line)))
            buffer.commit("1")
    keys = plain.keys()
    codec = compressed._codec
    assert codec is not None
    frames = [v.data for v in compressed.list_views()]
    timings: dict[str, list[float]] = {"store": [], "store+zstd": [], "decompress": []}
    for _ in range(rounds):
        for name, fn in (("store", plain.get), ("store+zstd", compressed.get), ("decompress", None)):
            t0 = time.perf_counter()
            if fn is None:
                for frame in frames:
                    codec.decode(frame)
            else:
                for k in keys:
                    fn(k)
            timings[name].append((time.perf_counter() - t0) * 1e6 / n)
    med = {k: statistics.median(v) for k, v in timings.items()}
    return (
        f"get, us (median of {rounds} alternated passes over {n} keys, one process): store {med['store']:.1f}, "
        f"store+zstd {med['store+zstd']:.1f} ({med['store+zstd'] / med['store']:.2f}x); zstd decompress alone "
        f"{med['decompress']:.1f}"
    )


def train_sweep(n: int) -> list[str]:
    """How ``ZstdCodec``'s defaults were chosen: frame size and training time by samples and
    dictionary size, dictionary trained on the first pods of the list in key order."""
    import zstandard

    rng_pods = [_strip(orjson.loads(line)) for line in make_wire_pods(n)]
    rng_pods.sort(key=_key)
    listed = [orjson.dumps(p) for p in rng_pods]
    later = [orjson.dumps(_strip(orjson.loads(line))) for line in make_wire_pods(LATER, seed=2)]
    plain = zstandard.ZstdCompressor(level=3)
    lines = [
        f"no dictionary: {statistics.mean(len(plain.compress(j)) for j in listed):.0f} B/pod",
        f"{'samples':>7} {'dict KB':>7} {'train ms':>8} {'B/pod':>6} {'later B/pod':>11}",
    ]
    for samples in (16, 64, 256, 1024):
        for size in (8, 16, 64):
            t0 = time.perf_counter()
            dictionary = zstandard.train_dictionary(size * 1024, listed[:samples], level=3)
            train_ms = (time.perf_counter() - t0) * 1000
            cctx = zstandard.ZstdCompressor(level=3, dict_data=dictionary, write_dict_id=False)
            mean = statistics.mean(len(cctx.compress(j)) for j in listed)
            mean_later = statistics.mean(len(cctx.compress(j)) for j in later)
            lines.append(f"{samples:>7} {size:>7} {train_ms:>8.0f} {mean:>6.0f} {mean_later:>11.0f}")
    return lines


# --- driver ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10_000, help="pods to cache (default 10000)")
    parser.add_argument("--runs", type=int, default=3, help="child processes per form (default 3)")
    parser.add_argument("--forms", default=",".join(FORMS), help="comma-separated subset of forms")
    parser.add_argument("--read-cost", action="store_true", help="also time get on store vs store+zstd in one process")
    parser.add_argument(
        "--train-sweep", action="store_true", help="also size zstd frames by training samples and dictionary size"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.n)))
        return
    wire_sample = make_wire_pods(50)
    full = statistics.median(len(b) for b in wire_sample)
    stripped = statistics.median(len(orjson.dumps(_strip(orjson.loads(b)))) for b in wire_sample)
    print(
        f"python {sys.version.split()[0]}, orjson {orjson.__version__}, n={args.n}, runs={args.runs}, "
        f"pod JSON {full / 1024:.1f} KB ({stripped / 1024:.1f} KB without managedFields)"
    )
    header = (
        f"{'form':<12} {'insert/s':>9} {'read/s':>9} {'us/get':>7} {'safe read/s':>11} {'RSS/obj':>9} "
        f"{'gc.collect':>10} {'bytes/obj':>9} {'later B/obj':>11}"
    )
    print(header)
    for form in args.forms.split(","):
        results = []
        for _ in range(args.runs):
            out = subprocess.run(
                [sys.executable, __file__, "--child", form, "-n", str(args.n)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(out))
        med = {k: statistics.median(r[k] for r in results) for k in results[0]}
        later = f"{med['later_payload_per_obj']:>11,.0f}" if form.startswith("store") else f"{'-':>11}"
        print(
            f"{form:<12} {med['insert_per_s']:>9,.0f} {med['read_per_s']:>9,.0f} {1e6 / med['read_per_s']:>7.1f} "
            f"{med['safe_read_per_s']:>11,.0f} {med['rss_per_obj'] / 1024:>7.1f}KB "
            f"{med['collect_ms']:>8.1f}ms {med['payload_per_obj']:>9,.0f} {later}"
        )
    if args.read_cost:
        print(read_cost(args.n))
    if args.train_sweep:
        print("\n".join(train_sweep(args.n)))


if __name__ == "__main__":
    main()
