"""The peers the driver runs, one child process each: what it is, how it is started, what it
measures (``kind``) and which informerd scenario its ratios are taken against (``base``).

Kinds: ``informer`` (sync, memory, update events through one handler), ``controller`` (the same,
plus every pod reconciled once after start, and the patched pods reconciled), ``operator`` (kopf:
both paths in one process, no cache).

``wire`` is the format the peer talks for pods: the Python peers talk JSON; client-go's typed
clients and controller-runtime's cache prefer protobuf for built-in types unless told otherwise,
so the Go peers talk protobuf by default and JSON with ``-json`` (what they talk for custom
resources, which have no protobuf). The Go peers report it on their synced line; the driver
checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # informer | controller | operator
    description: str
    module: str = ""  # a bench.peers child module, or
    go: str = ""  # a Go peer: "clientgo" | "controllerruntime"
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    base: str = "informerd"
    workers: int = 0
    wire: str = "json"  # json | protobuf: what the peer talks for pods
    source: str = ""  # a Python child's source tree (``--baseline``); "" = this checkout


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "informerd",
            "informer",
            "informerd SharedInformer, defaults (JSON, streaming list, managedFields stripped)",
            module="informerd_informer",
        ),
        Scenario(
            "informerd-inline",
            "informer",
            "informerd SharedInformer, defaults, the handler inline (on the reflector thread: no thread hop)",
            module="informerd_informer",
            args=("--inline",),
        ),
        Scenario(
            "informerd-list",
            "informer",
            "informerd SharedInformer, LIST pages of 500 instead of the streaming list (JSON)",
            module="informerd_informer",
            args=("--list",),
        ),
        Scenario(
            "client-go",
            "informer",
            "client-go shared informer, defaults (protobuf for Pods, streaming list, managedFields kept)",
            go="clientgo",
            wire="protobuf",
        ),
        Scenario(
            "client-go-strip",
            "informer",
            "client-go shared informer, protobuf for Pods (default), managedFields stripped by a transform",
            go="clientgo",
            args=("-strip-managed-fields",),
            wire="protobuf",
        ),
        Scenario(
            "client-go-json",
            "informer",
            "client-go shared informer, JSON forced (as for CRDs), streaming list, managedFields stripped "
            "(like for like with informerd)",
            go="clientgo",
            args=("-json", "-strip-managed-fields"),
        ),
        Scenario(
            "kubernetes-informer",
            "informer",
            "official client kubernetes.informer.SharedInformer (JSON, V1Pod models)",
            module="kubernetes_informer",
        ),
        Scenario(
            "kopf",
            "operator",
            "kopf embedded: @on.event counter + no-op @on.update, in-memory storages (JSON)",
            module="kopf_peer",
            base="informerd-controller-w1",
        ),
        Scenario(
            "informerd-controller-w1",
            "controller",
            "informerd Controller, async no-op reconciler, 1 worker (JSON)",
            module="informerd_controller",
            base="informerd-controller-w1",
            workers=1,
        ),
        Scenario(
            "informerd-controller-w4",
            "controller",
            "informerd Controller, async no-op reconciler, 4 workers (JSON)",
            module="informerd_controller",
            base="informerd-controller-w4",
            workers=4,
        ),
        Scenario(
            "controller-runtime-w1",
            "controller",
            "controller-runtime, no-op reconciler (cache Get), protobuf for Pods (default), managedFields "
            "stripped, 1 worker",
            go="controllerruntime",
            args=("-strip-managed-fields",),
            base="informerd-controller-w1",
            workers=1,
            wire="protobuf",
        ),
        Scenario(
            "controller-runtime-w4",
            "controller",
            "controller-runtime, no-op reconciler (cache Get), protobuf for Pods (default), managedFields "
            "stripped, 4 workers",
            go="controllerruntime",
            args=("-strip-managed-fields",),
            base="informerd-controller-w4",
            workers=4,
            wire="protobuf",
        ),
        Scenario(
            "controller-runtime-json-w1",
            "controller",
            "controller-runtime, no-op reconciler (cache Get), JSON forced (as for CRDs), managedFields "
            "stripped, 1 worker",
            go="controllerruntime",
            args=("-json", "-strip-managed-fields"),
            base="informerd-controller-w1",
            workers=1,
        ),
        Scenario(
            "controller-runtime-json-w4",
            "controller",
            "controller-runtime, no-op reconciler (cache Get), JSON forced (as for CRDs), managedFields "
            "stripped, 4 workers",
            go="controllerruntime",
            args=("-json", "-strip-managed-fields"),
            base="informerd-controller-w4",
            workers=4,
        ),
    )
}

DEFAULT_SCENARIOS = tuple(SCENARIOS)
