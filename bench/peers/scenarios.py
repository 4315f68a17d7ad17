"""The peers the driver runs, one child process each: what it is, how it is started, what it
measures (``kind``) and which informerd scenario its ratios are taken against (``base``).

Kinds: ``informer`` (sync, memory, update events through one handler), ``controller`` (the same,
plus every pod reconciled once after start, and the patched pods reconciled), ``operator`` (kopf:
both paths in one process, no cache).
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
    source: str = ""  # a Python child's source tree (``--baseline``); "" = this checkout


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "informerd",
            "informer",
            "informerd SharedInformer, defaults (streaming list, managedFields stripped)",
            module="informerd_informer",
        ),
        Scenario(
            "informerd-list",
            "informer",
            "informerd SharedInformer, LIST pages of 500 instead of the streaming list",
            module="informerd_informer",
            args=("--list",),
        ),
        Scenario(
            "client-go",
            "informer",
            "client-go shared informer, defaults (streaming list, managedFields kept)",
            go="clientgo",
        ),
        Scenario(
            "client-go-strip",
            "informer",
            "client-go shared informer, managedFields stripped by a transform (like for like)",
            go="clientgo",
            args=("-strip-managed-fields",),
        ),
        Scenario(
            "kubernetes-informer",
            "informer",
            "official client kubernetes.informer.SharedInformer (V1Pod models)",
            module="kubernetes_informer",
        ),
        Scenario(
            "kopf",
            "operator",
            "kopf embedded: @on.event counter + no-op @on.update, in-memory storages",
            module="kopf_peer",
            base="informerd-controller-w1",
        ),
        Scenario(
            "informerd-controller-w1",
            "controller",
            "informerd Controller, async no-op reconciler, 1 worker",
            module="informerd_controller",
            base="informerd-controller-w1",
            workers=1,
        ),
        Scenario(
            "informerd-controller-w4",
            "controller",
            "informerd Controller, async no-op reconciler, 4 workers",
            module="informerd_controller",
            base="informerd-controller-w4",
            workers=4,
        ),
        Scenario(
            "controller-runtime-w1",
            "controller",
            "controller-runtime, no-op reconciler (cache Get), managedFields stripped, 1 worker",
            go="controllerruntime",
            args=("-strip-managed-fields",),
            base="informerd-controller-w1",
            workers=1,
        ),
        Scenario(
            "controller-runtime-w4",
            "controller",
            "controller-runtime, no-op reconciler (cache Get), managedFields stripped, 4 workers",
            go="controllerruntime",
            args=("-strip-managed-fields",),
            base="informerd-controller-w4",
            workers=4,
        ),
    )
}

DEFAULT_SCENARIOS = tuple(SCENARIOS)
