"""The chaos suite (marker ``chaos``): informers through a fault proxy while a writer churns, under a
seeded schedule of network, apiserver, etcd, admission and authorisation faults; then, at
quiescence, every invariant of ``chaos_invariants`` for every informer.

Seeded and reproducible: the seed is printed with the report (``INFORMERD_CHAOS_SEED=<seed>`` runs
the same schedule again; timing still varies, as it does on any real network). CI size by default
(about a minute of faults); ``INFORMERD_CHAOS_SCALE=<n>`` runs n times longer, e.g. 30 for a half
hour soak; ``INFORMERD_CHAOS_FAULTS=kind,kind`` narrows the schedule. It runs on a control plane
of its own: it restarts the apiserver and limits admission.

The controller test runs the sample Widget reconciler (``test_controller.WidgetReconciler``) as a
non-admin identity under the same faults, with a seeded share of raising and hanging calls.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from informers.client import ApiClient
from informers.config import load_config
from informers.informer import InformerOptions, SharedInformer
from informers.resources import Resource
from informers.testing import ControlPlane, FaultProxy
from informers.testing.assets import MissingBinaryError, find_assets

from .chaos_faults import FaultKit, grant, restrict_priority
from .chaos_invariants import check_informer, server_state
from .chaos_writer import ChaosWriter, configmap_body, podtemplate_body
from .support import EventLog


def chaos_scale() -> float:
    return float(os.environ.get("INFORMERD_CHAOS_SCALE", "1"))


# The suite's default per-test timeout (300 s) would end a long run: scale it with the run.
pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(int(300 + 120 * chaos_scale()))]

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
PODTEMPLATES = Resource("", "v1", "podtemplates", "PodTemplate", namespaced=True)
USER = "chaos-user"
CONTROLLER_USER = "chaos-controller"
IDLE = 2.0  # the informers' idle deadline; a stall lasts longer, so it is detected, not waited out
CHAOS_APISERVER_ARGS = (
    "--watch-cache-sizes=podtemplates#0",  # uncached: compaction gives resuming watches a real 410
    "--max-requests-inflight=1",  # with the next flag: two seats in all, one for the chaos user's level
    "--max-mutating-requests-inflight=1",
)


@functools.cache
def chaos_seed() -> int:
    """One seed for the whole run (every test of the suite replays with it)."""
    value = os.environ.get("INFORMERD_CHAOS_SEED")
    return int(value) if value else random.SystemRandom().randrange(1, 10**6)


def chaos_kinds(available: list[str]) -> list[str]:
    """``INFORMERD_CHAOS_FAULTS=cut,stall`` narrows the schedule to those kinds (to chase one)."""
    wanted = [k for k in os.environ.get("INFORMERD_CHAOS_FAULTS", "").split(",") if k]
    return [k for k in available if k in wanted] if wanted else available


@pytest.fixture(scope="module")
def chaos_plane() -> Iterator[ControlPlane]:
    """A control plane of this module's own: its apiserver is killed and restarted."""
    try:
        assets = find_assets()
    except MissingBinaryError as exc:
        pytest.fail(str(exc), pytrace=False)
    with ControlPlane(assets=assets, apiserver_args=CHAOS_APISERVER_ARGS) as plane:
        restrict_priority(plane, USER)
        restrict_priority(plane, CONTROLLER_USER, queue=2)
        yield plane


@pytest.fixture
def chaos_namespace(chaos_plane: ControlPlane) -> str:
    name = f"chaos-{random.SystemRandom().randrange(16**6):06x}"
    chaos_plane.request_json("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    grant(chaos_plane, name, USER, ["get", "list", "watch"])
    return name


@pytest.fixture
def chaos_proxy(chaos_plane: ControlPlane) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", chaos_plane.apiserver_port) as proxy:
        yield proxy


def chaos_options(**overrides: Any) -> InformerOptions:
    base: dict[str, Any] = {
        "idle_timeout": IDLE,
        "backoff_initial": 0.1,
        "backoff_cap": 1.0,
        "watch_timeout_range": (5, 15),  # watches end and resume often; bookmarks flow
        "progress_check_interval": 1.0,
    }
    return InformerOptions(**{**base, **overrides})


@dataclass
class Watched:
    informer: SharedInformer
    recorder: EventLog
    path: str
    selector: str | None = None


@dataclass
class Report:
    seed: int
    scale: float
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        head = f"chaos report (seed {self.seed}, scale {self.scale:g}; rerun: INFORMERD_CHAOS_SEED={self.seed})"
        return "\n".join([head, *("  " + line for line in self.lines)])


def _counts(counter: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items()) if v) or "none"


def _client_line(label: str, client: ApiClient) -> str:
    stats = client.statistics()
    answers: Counter[str] = Counter()
    for (_, status), n in stats.requests.items():
        answers[status] += n
    return f"{label} client: answers {_counts(answers)}; retries after Retry-After {stats.retries}"


def _wait_converged(watched: list[Watched], plane: ControlPlane, timeout: float) -> tuple[float, list[str]]:
    """Seconds until every invariant holds for every informer (and none is stalled), or the
    failures at the timeout."""
    started = time.monotonic()
    failures: list[str] = ["not checked"]
    while time.monotonic() - started < timeout:
        failures = []
        for w in watched:
            try:
                server = server_state(plane, w.path, w.selector)
            except Exception as exc:
                failures.append(f"{w.informer.name}: server unreadable: {exc}")
                continue
            failures += check_informer(w.informer, w.recorder, server)
            progress = w.informer.statistics().progress
            if progress.stalled_since is not None:
                failures.append(f"{w.informer.name}: stalled: {progress.stall_reason}")
        if not failures:
            return time.monotonic() - started, []
        time.sleep(0.25)
    return time.monotonic() - started, failures


def test_informers_converge_to_the_server_under_a_seeded_schedule_of_faults(
    chaos_plane: ControlPlane,
    chaos_namespace: str,
    chaos_proxy: FaultProxy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed, scale = chaos_seed(), chaos_scale()
    report = Report(seed, scale)
    rng = random.Random(seed)
    ns = chaos_namespace
    cm_path, pt_path = CONFIGMAPS.path(ns), PODTEMPLATES.path(ns)
    admin = ApiClient(load_config(str(chaos_plane.kubeconfig(server=chaos_proxy.url)), qps=-1))
    user_kubeconfig = chaos_plane.user_kubeconfig(USER, server=chaos_proxy.url)
    user = ApiClient(load_config(str(user_kubeconfig), qps=-1))
    watched = [
        Watched(SharedInformer(admin, CONFIGMAPS, namespace=ns, options=chaos_options()), EventLog(), cm_path),
        Watched(
            SharedInformer(
                admin,
                CONFIGMAPS,
                namespace=ns,
                label_selector="half=1",
                options=chaos_options(streaming_list=False, page_size=7),
            ),
            EventLog(),
            cm_path,
            "half=1",
        ),
        Watched(
            SharedInformer(admin, PODTEMPLATES, namespace=ns, options=chaos_options(streaming_list=False, page_size=5)),
            EventLog(),
            pt_path,
        ),
        Watched(
            SharedInformer(user, PODTEMPLATES, namespace=ns, options=chaos_options(page_size=10), name="as chaos-user"),
            EventLog(),
            pt_path,
        ),
    ]
    writer = ChaosWriter(chaos_plane, {cm_path: configmap_body, pt_path: podtemplate_body}, random.Random(seed + 1))
    kit = FaultKit(
        chaos_plane,
        chaos_proxy,
        random.Random(seed + 2),
        stall_seconds=IDLE + 1.5,
        user_kubeconfig=user_kubeconfig,
        storm_path=cm_path,
        allow_watch=lambda allowed: grant(
            chaos_plane, ns, USER, ["get", "list", "watch"] if allowed else ["get", "list"]
        ),
        paged=watched[2].informer,
    )
    for _ in range(30):  # a starting population
        writer.step()
    for w in watched:
        w.informer.add_handler(on_notification=w.recorder)
        w.informer.start()
    try:
        for w in watched:
            assert w.informer.wait_synced_blocking(60), f"{w.informer.name} did not sync (seed {seed})"
        writer.start(interval=0.02)
        started = time.monotonic()
        kinds = chaos_kinds(sorted(kit.kinds()))
        first = rng.sample(kinds, len(kinds))  # every kind once, in a seeded order, then seeded draws
        for kind in first:
            kit.inject(kind)
            time.sleep(rng.uniform(0.3, 1.5))
        kit.run(kinds, seconds=max(0.0, 45 * scale - (time.monotonic() - started)))
        writer.stop()
        chaos_seconds = time.monotonic() - started
        chaos_proxy.pass_through()
        chaos_proxy.set_latency(0)
        _, failures = _wait_converged(watched, chaos_plane, timeout=90)
        converge_seconds = time.monotonic() - kit.last_fault_end
        report.add(f"operations: {writer.writes} ({_counts(writer.ops)}) in {chaos_seconds:.0f} s of faults")
        report.add(f"faults by kind: {_counts(kit.counts)} (total {sum(kit.counts.values())})")
        report.add(f"fault observations: {_counts(kit.notes)}")
        if kit.restart_seconds:
            report.add(
                f"apiserver restarts: {len(kit.restart_seconds)}, "
                f"{min(kit.restart_seconds):.1f}-{max(kit.restart_seconds):.1f} s each"
            )
        for w in watched:
            s = w.informer.statistics().watcher
            report.add(
                f"{w.informer.name}: {len(w.recorder.notes)} notifications, {w.informer.statistics().objects} cached; "
                f"relists {s.relists} ({_counts(s.relist_causes)}); re-watches {_counts(s.watch_restarts)}; "
                f"continue-token fallbacks {s.list_fallbacks}; list retries {s.list_retries}; "
                f"progress stalls seen {w.informer.statistics().progress.stalls}"
            )
        report.add(_client_line("admin", admin))
        report.add(_client_line("chaos-user", user))
        report.add(f"time to converge after the last fault: {converge_seconds:.1f} s")
        report.add("objects lost: " + ("0" if not failures else f"see {len(failures)} failure(s)"))
        with capsys.disabled():
            print("\n" + report.text())
        assert not failures, "\n".join([report.text(), *failures])
    finally:
        writer.stop()
        for w in watched:
            w.informer.stop()
        admin.close()
        user.close()


# -- a controller under the same faults ------------------------------------------------------------

CONTROLLER_FAULTS = [
    "429-storm",
    "apiserver-kill",
    "apiserver-restart",
    "compaction-cut-off",
    "cut",
    "latency",
    "rbac-list-only",
    "refuse",
    "stall",
]
CONTROLLER_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


def controller_rules(widgets: Resource) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("", ("configmaps",)), (widgets.group, ("widgets", "widgets/status")))


@pytest.fixture(scope="module")
def chaos_widgets(chaos_plane: ControlPlane) -> Iterator[Resource]:
    from .widgets import widget_crd

    with widget_crd(chaos_plane) as resource:
        yield resource


class FaultyReconciler:
    """The sample Widget reconciler, except that a seeded share of calls raise before doing anything
    and another share hang past the reconcile timeout (ignoring cancellation) before doing their
    work; every call is timed per UID, to prove no UID is ever reconciled twice at once."""

    def __init__(self, inner: Any, rng: random.Random, *, raise_share: float, hang_share: float, hang: float) -> None:
        from .widgets import OverlapProbe

        self.inner = inner
        self.rng = rng
        self.raise_share, self.hang_share, self.hang = raise_share, hang_share, hang
        self.probe = OverlapProbe()
        self.calls: Counter[str] = Counter()

    def reconcile(self, request: Any, obj: Any, ctx: Any) -> Any:
        with self.probe.inside(request.uid):
            roll = self.rng.random()  # one thread at a time per call: the draw order may vary with timing
            self.calls["total"] += 1
            if roll < self.raise_share:
                self.calls["raised"] += 1
                raise RuntimeError("chaos: a reconciler bug")
            if roll < self.raise_share + self.hang_share:
                self.calls["hung"] += 1
                time.sleep(self.hang)
            return self.inner.reconcile(request, obj, ctx)


def _controller_failures(plane: ControlPlane, widgets: Resource, namespace: str) -> list[str]:
    from controllers.conditions import get_condition
    from informers.objects import controller_owner

    items = plane.request_json("GET", widgets.path(namespace))["items"]
    children = [
        cm
        for cm in plane.request_json("GET", CONFIGMAPS.path(namespace))["items"]
        if (controller_owner(cm) or {}).get("kind") == "Widget"
    ]
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for cm in children:
        by_owner.setdefault(controller_owner(cm)["uid"], []).append(cm)  # type: ignore[index]
    failures: list[str] = []
    live = set()
    for w in items:
        meta, gen = w["metadata"], w["metadata"]["generation"]
        live.add(meta["uid"])
        mine = by_owner.get(meta["uid"], [])
        if len(mine) != 1:
            failures.append(f"widget {meta['name']} ({meta['uid']}) has {len(mine)} children")
        elif mine[0]["data"] != {"size": str(w["spec"]["size"])}:
            failures.append(f"widget {meta['name']}'s child is stale: {mine[0]['data']}")
        if (w.get("status") or {}).get("observedGeneration") != gen:
            failures.append(f"widget {meta['name']}: observedGeneration != generation {gen}")
        ready = get_condition(w, "Ready")
        if ready is None or ready.get("observedGeneration") != gen:
            failures.append(f"widget {meta['name']}: Ready condition not at generation {gen}")
    orphans = sorted(cm["metadata"]["name"] for cm in children if controller_owner(cm)["uid"] not in live)  # type: ignore[index]
    if orphans:
        failures.append(f"{len(orphans)} orphaned children: {orphans[:5]}")
    return failures


def test_a_controller_converges_under_faults_and_raising_and_hanging_reconcilers(
    chaos_plane: ControlPlane,
    chaos_namespace: str,
    chaos_proxy: FaultProxy,
    chaos_widgets: Resource,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import anyio

    from controllers.controller import Controller
    from controllers.ratelimit import ItemExponentialRateLimiter
    from controllers.triggers import owns
    from informers.factory import InformerFactory

    from .test_controller import WidgetReconciler
    from .widgets import writer_for

    seed, scale = chaos_seed(), chaos_scale()
    report = Report(seed, scale)
    rng = random.Random(seed)
    ns, widgets = chaos_namespace, chaos_widgets

    def widget_body(name: str, n: int) -> dict[str, Any]:
        return {"apiVersion": widgets.api_version, "kind": "Widget", "metadata": {"name": name}, "spec": {"size": n}}

    def allow_watch(allowed: bool) -> None:
        verbs = CONTROLLER_VERBS if allowed else [v for v in CONTROLLER_VERBS if v != "watch"]
        grant(chaos_plane, ns, CONTROLLER_USER, verbs, controller_rules(widgets))

    allow_watch(True)
    # The controller runs as a non-admin identity (system:masters is exempt from priority and
    # fairness) in a one-seat priority level with a queue of two: 429 storms reach it.
    identity = chaos_plane.user_kubeconfig(CONTROLLER_USER, server=chaos_proxy.url)
    writer = ChaosWriter(chaos_plane, {widgets.path(ns): widget_body}, random.Random(seed + 1), names=25)
    kit = FaultKit(
        chaos_plane,
        chaos_proxy,
        random.Random(seed + 2),
        stall_seconds=IDLE + 1.5,
        user_kubeconfig=identity,
        storm_path=widgets.path(ns),
        allow_watch=allow_watch,
    )
    timeout = 1.0
    for _ in range(15):
        writer.step()
    result: dict[str, Any] = {}

    async def main() -> None:
        client = ApiClient(load_config(str(identity), qps=-1))
        with client, writer_for(client) as api:
            async with InformerFactory(client, namespace=ns, options=chaos_options()) as factory:
                inner = WidgetReconciler(api, widgets, factory.informer_for(CONFIGMAPS))
                reconciler = FaultyReconciler(
                    inner, random.Random(seed + 3), raise_share=0.15, hang_share=0.05, hang=2 * timeout
                )
                controller = Controller(
                    factory,
                    widgets,
                    reconciler.reconcile,
                    triggers=[owns(CONFIGMAPS)],
                    max_concurrent_reconciles=4,
                    reconcile_timeout=timeout,
                    rate_limiter=ItemExponentialRateLimiter(0.005, 2.0),  # keep retries within the test's time
                )
                async with anyio.create_task_group() as group:
                    group.start_soon(controller.run)
                    assert await controller.wait_synced(60), f"controller did not sync (seed {seed})"

                    def chaos() -> None:
                        writer.start(interval=0.05)
                        started = time.monotonic()
                        kinds = chaos_kinds(CONTROLLER_FAULTS)
                        for kind in rng.sample(kinds, len(kinds)):
                            kit.inject(kind)
                            time.sleep(rng.uniform(0.3, 1.5))
                        kit.run(kinds, seconds=max(0.0, 30 * scale - (time.monotonic() - started)))
                        writer.stop()
                        result["chaos_seconds"] = time.monotonic() - started
                        chaos_proxy.pass_through()
                        chaos_proxy.set_latency(0)
                        quiet = time.monotonic()
                        failures = ["not checked"]
                        while time.monotonic() - quiet < 120:
                            failures = _controller_failures(chaos_plane, widgets, ns)
                            if not failures:
                                break
                            time.sleep(0.5)
                        result["converge_seconds"] = time.monotonic() - kit.last_fault_end
                        result["failures"] = failures

                    await anyio.to_thread.run_sync(chaos)
                    group.cancel_scope.cancel()
                result["stats"] = controller.statistics().workers
                result["calls"] = reconciler.calls
                result["client"] = _client_line("controller", client)
                result["overlap"] = reconciler.probe.max_per_key
                result["relists"] = {
                    i.name: i.statistics().watcher.relists
                    for i in (factory.informer_for(widgets), factory.informer_for(CONFIGMAPS))
                }

    try:
        anyio.run(main)
    finally:
        writer.stop()
    stats = result["stats"]
    report.add(f"operations: {writer.writes} widget writes ({_counts(writer.ops)}) in {result['chaos_seconds']:.0f} s")
    report.add(f"faults by kind: {_counts(kit.counts)} (total {sum(kit.counts.values())})")
    report.add(f"fault observations: {_counts(kit.notes)}")
    report.add(
        f"reconciles: {_counts(result['calls'])}; success {stats.success_total}, errors {stats.error_total}, "
        f"timeouts {stats.timeouts_total}; most at once for one UID: {result['overlap']}"
    )
    report.add(f"relists: {_counts(result['relists'])}")
    report.add(result["client"])
    report.add(f"time to converge after the last fault: {result['converge_seconds']:.1f} s")
    with capsys.disabled():
        print("\n" + report.text())
    assert result["overlap"] == 1, report.text()
    assert not result["failures"], "\n".join([report.text(), *result["failures"]])
