"""``informerd run`` against the real control plane with misbehaving plugins, broken plugin
installs, shards, hostile HTTP clients and signals.

Every test runs the daemon as a subprocess that discovers a test-only plugin distribution
(``robust_plugins``, written to a temporary directory on ``PYTHONPATH``) through its entry points,
as an operator's installed package would be. Deadlines are generous and only bound how long a
test waits for something that must happen; nothing asserts on timing.
"""

from __future__ import annotations

import datetime
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from controllers.sharding import shard_of
from informers.testing import ControlPlane

from .daemon_process import (
    Daemon,
    cli_env,
    fetch,
    informerd,
    running,
    total,
    wait_for,
    write_config,
    write_plugin_distribution,
)

pytestmark = pytest.mark.integration

CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"
DISTRIBUTION = "informerd-robust-plugins 0.1"


@pytest.fixture
def plugin_root(tmp_path: Path) -> Path:
    return write_plugin_distribution(tmp_path / "plugins")


def daemon_config(namespace: str, *, drain: float = 10, **extra: Any) -> dict[str, Any]:
    return {
        "name": "robust",
        "namespace": namespace,
        "metricsBindAddress": "127.0.0.1:0",
        "healthProbeBindAddress": "127.0.0.1:0",
        "drainTimeout": drain,
        **extra,
    }


def children_binding(name: str, role: str, record: Path, *, tag: str = "", delay: float = 0.0, **extra: Any) -> dict:
    return {
        "plugin": "robust-children",
        "name": name,
        "resource": "v1/configmaps",
        "labelSelector": f"robust/role={role}",
        "options": {"record": str(record), "tag": tag or name, "delay": delay},
        "permissions": {"v1/configmaps": ["create", "patch"]},
        **extra,
    }


def fast_retries() -> dict[str, float]:
    return {"baseDelay": 0.05, "maxDelay": 0.5}


def run_args(plane: ControlPlane, config: Path, *extra: str) -> list[str]:
    return ["run", "--config", str(config), "--kubeconfig", str(plane.admin_kubeconfig), *extra]


def create(plane: ControlPlane, namespace: str, name: str, role: str) -> str:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"robust/role": role}}}
    created = plane.request_json("POST", CONFIGMAPS.format(ns=namespace), body)
    return str(created["metadata"]["uid"])


def records(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def children(plane: ControlPlane, namespace: str) -> dict[str, dict[str, Any]]:
    items = plane.request_json("GET", CONFIGMAPS.format(ns=namespace) + "?labelSelector=robust/child%3Dyes")["items"]
    return {i["data"]["parent"]: i for i in items}


def key_name(line: dict[str, Any]) -> str:
    """The object name in a reconcile log line's key (``ConfigMap ns/name (uid=...)``)."""
    return str(line["key"]).split(" ")[1].rsplit("/", 1)[-1]


def failures(daemon: Daemon, controller: str) -> list[dict[str, Any]]:
    return daemon.log_lines(event="reconcile failed; requeued with backoff", controller=controller)


# -- misbehaving plugins at run time ------------------------------------------------------------


def test_raising_hanging_slow_and_growing_reconcilers_never_hold_back_a_good_one(
    control_plane: ControlPlane, namespace: str, plugin_root: Path, tmp_path: Path
) -> None:
    good_record, slow_record = tmp_path / "good.txt", tmp_path / "slow.txt"
    config = daemon_config(
        namespace,
        reconcilers=[
            children_binding("good", "good", good_record, workers=2),
            children_binding("slow", "slow", slow_record, delay=0.3),
            {
                "plugin": "robust-raises",
                "name": "raises",
                "resource": "v1/configmaps",
                "labelSelector": "robust/role=raises",
                "rateLimiter": fast_retries(),
            },
            {
                "plugin": "robust-hangs",
                "name": "hangs",
                "resource": "v1/configmaps",
                "labelSelector": "robust/role=hangs",
                "timeout": 1,
                "rateLimiter": fast_retries(),
            },
            {
                "plugin": "robust-hangs-blocking",
                "name": "hangs-blocking",
                "resource": "v1/configmaps",
                "labelSelector": "robust/role=blocks",
                "timeout": 1,
                "rateLimiter": fast_retries(),
            },
            {
                "plugin": "robust-grows",
                "name": "grows",
                "resource": "v1/configmaps",
                "labelSelector": "robust/role=grows",
                "options": {"chunk_bytes": 1 << 20, "max_chunks": 48, "every": 0.05},
            },
        ],
    )
    path = write_config(tmp_path / "config.yaml", config)
    with running(run_args(control_plane, path), cli_env(plugin_root)) as daemon:
        daemon.wait_ready()
        rss_before = total(daemon.scrape(), "process_resident_memory_bytes")
        for role in ("raises", "hangs"):
            for i in range(3):
                create(control_plane, namespace, f"{role}-{i}", role)
        for i in range(20):
            create(control_plane, namespace, f"blocks-{i}", "blocks")
        create(control_plane, namespace, "grows-0", "grows")
        good = {f"good-{i}": create(control_plane, namespace, f"good-{i}", "good") for i in range(30)}
        slow = {f"slow-{i}": create(control_plane, namespace, f"slow-{i}", "slow") for i in range(6)}

        # The good controller reconciles every one of its objects while the others misbehave.
        wait_for(
            lambda: daemon.alive() and {r[1] for r in records(good_record)} >= set(good.values()), 120, "good done"
        )
        wait_for(lambda: {r[1] for r in records(slow_record)} >= set(slow.values()), 120, "slow done")
        made = children(control_plane, namespace)
        assert set(good) | set(slow) <= set(made)
        assert all(made[name]["metadata"]["ownerReferences"][0]["uid"] == uid for name, uid in good.items())

        # Every failure is retried, logged with its controller, plugin and key, and counted.
        def counted() -> dict[str, Any] | None:
            scrape = daemon.scrape()
            ok = (
                total(scrape, "informerd_plugin_errors_total", plugin="robust-raises", kind="reconcile") >= 6
                and total(scrape, "informerd_plugin_errors_total", plugin="robust-hangs", kind="reconcile") >= 3
                and total(scrape, "informerd_plugin_errors_total", plugin="robust-hangs-blocking", kind="reconcile")
                >= 20
                and total(scrape, "controller_runtime_reconcile_timeouts_total", controller="hangs") >= 3
                and total(scrape, "controller_runtime_reconcile_time_seconds_count", controller="grows") >= 20
            )
            return scrape if ok else None

        scrape = wait_for(counted, 90, "failures counted in /metrics")
        assert total(scrape, "controller_runtime_reconcile_errors_total", controller="raises") >= 6
        assert total(scrape, "controller_runtime_reconcile_errors_total", controller="hangs-blocking") >= 20
        # Threads stuck in the blocking plugin are capped (default 8 for one worker), not one per key.
        assert 1 <= total(scrape, "informerd_controller_overrun_threads", controller="hangs-blocking") <= 8
        assert total(scrape, "controller_runtime_reconcile_errors_total", controller="good") == 0
        assert total(scrape, "controller_runtime_reconcile_total", controller="good", result="success") >= 30
        assert total(scrape, "informerd_plugin_errors_total", plugin="robust-children") == 0

        raised = failures(daemon, "raises")
        assert {key_name(line) for line in raised} >= {"raises-0", "raises-1", "raises-2"}
        assert all(line["plugin"] == "robust-raises" and "robust-raises refuses" in line["error"] for line in raised)
        timed_out = failures(daemon, "hangs")
        assert timed_out and all(line["plugin"] == "robust-hangs" and "timeout" in line["error"] for line in timed_out)
        assert {key_name(line) for line in timed_out} == {"hangs-0", "hangs-1", "hangs-2"}
        stuck = failures(daemon, "hangs-blocking")
        assert stuck and all(line["plugin"] == "robust-hangs-blocking" for line in stuck)
        assert {key_name(line) for line in stuck} == {f"blocks-{i}" for i in range(20)}
        # The memory the grower hoards (48 MiB) shows in the process's RSS; the others still worked.
        assert total(scrape, "process_resident_memory_bytes") - rss_before >= 24 << 20

        # One more good object after all that is still reconciled, and the daemon never stopped.
        late = create(control_plane, namespace, "good-late", "good")
        wait_for(lambda: late in {r[1] for r in records(good_record)}, 60, "the late good object")
        status, body = fetch(daemon.url("probes") + "/healthz?verbose")
        assert status == 200, body

        # SIGTERM stops it cleanly although a thread is still stuck in the blocking plugin.
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
        assert daemon.log_lines(event="exiting with plugin calls still running on threads")


def test_raising_and_hanging_handlers_never_hold_back_a_good_one(
    control_plane: ControlPlane, namespace: str, plugin_root: Path, tmp_path: Path
) -> None:
    record = tmp_path / "handled.txt"

    def handler(plugin: str, **extra: Any) -> dict[str, Any]:
        return {"plugin": plugin, "resource": "v1/configmaps", "labelSelector": "robust/role=handled", **extra}

    config = daemon_config(
        namespace,
        handlers=[
            handler("robust-raising-handler"),
            handler("robust-hanging-handler"),
            handler("robust-hanging-async-handler"),
            handler("robust-recorder", options={"record": str(record)}),
        ],
    )
    path = write_config(tmp_path / "config.yaml", config)
    with running(run_args(control_plane, path), cli_env(plugin_root)) as daemon:
        daemon.wait_ready()
        names = {f"handled-{i}" for i in range(30)}
        for name in sorted(names):
            create(control_plane, namespace, name, "handled")
        wait_for(lambda: daemon.alive() and {r[1] for r in records(record)} >= names, 90, "every add recorded")

        def counted() -> dict[str, Any] | None:
            scrape = daemon.scrape()
            raised = total(scrape, "informerd_plugin_errors_total", plugin="robust-raising-handler", kind="handler")
            return scrape if raised >= 30 else None

        scrape = wait_for(counted, 60, "handler errors counted")
        assert total(scrape, "informerd_handler_errors_total", handler="robust-raising-handler") >= 30
        # The hanging handlers hold their first notification; the rest wait in their own buffers.
        assert total(scrape, "informerd_handler_pending", handler="robust-hanging-handler") >= 29
        assert total(scrape, "informerd_handler_pending", handler="robust-hanging-async-handler") >= 29
        # ... and each shows its one call running on, while the healthy ones show none.
        assert total(scrape, "informerd_handler_busy_seconds", handler="robust-hanging-handler") > 0
        assert total(scrape, "informerd_handler_busy_seconds", handler="robust-hanging-async-handler") > 0
        assert total(scrape, "informerd_handler_busy_seconds", handler="robust-recorder") == 0
        assert total(scrape, "informerd_handler_errors_total", handler="robust-recorder") == 0
        assert total(scrape, "informerd_plugin_errors_total", plugin="robust-recorder") == 0
        logged = daemon.log_lines(handler="robust-raising-handler")
        assert logged and all("robust-raising-handler refuses" in line.get("error", "") for line in logged)
        assert {line["key"].rsplit("/", 1)[-1] for line in logged} >= names

        # A stop does not wait for handlers that never return.
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0


# -- plugins that cannot start ---------------------------------------------------------------------

BROKEN_BINDINGS = {
    "import": (
        {"plugin": "robust-broken", "name": "broken", "resource": "v1/configmaps"},
        "cannot import reconciler plugin 'robust-broken' (robust_broken:factory, from " + DISTRIBUTION,
        "No module named boto3",
    ),
    "options": (
        {
            "plugin": "robust-children",
            "name": "children",
            "resource": "v1/configmaps",
            "options": {"delay": "slow"},
            "permissions": {"v1/configmaps": ["create", "patch"]},
        },
        "invalid options for reconciler plugin 'robust-children' (robust_plugins:children, from " + DISTRIBUTION,
        "options.record: Field required",
    ),
    "construction": (
        {"plugin": "robust-explodes", "name": "explodes", "resource": "v1/configmaps"},
        "reconciler plugin 'robust-explodes' (robust_plugins:explodes, from " + DISTRIBUTION + ") failed to start",
        "no credentials",
    ),
}


@pytest.mark.parametrize("what", sorted(BROKEN_BINDINGS))
def test_run_refuses_to_start_naming_the_entry_point_and_its_distribution(
    control_plane: ControlPlane, namespace: str, plugin_root: Path, tmp_path: Path, what: str
) -> None:
    binding, named, cause = BROKEN_BINDINGS[what]
    path = write_config(tmp_path / "config.yaml", daemon_config(namespace, reconcilers=[binding]))
    out = informerd(*run_args(control_plane, path), env=cli_env(plugin_root))
    assert out.returncode != 0
    assert named in out.stderr and cause in out.stderr
    assert "reconcilers.0.plugin" in out.stderr
    assert "serving" not in out.stderr  # it stopped before opening anything


def test_check_config_reports_every_plugin_problem_at_once(plugin_root: Path, tmp_path: Path) -> None:
    bindings = [binding for binding, _, _ in BROKEN_BINDINGS.values()]
    config = {
        "reconcilers": [children_binding("fine", "fine", tmp_path / "r.txt"), *bindings],
        "handlers": [{"plugin": "robust-missing", "resource": "v1/configmaps"}],
    }
    path = write_config(tmp_path / "config.yaml", config)
    out = informerd("check-config", "--config", str(path), env=cli_env(plugin_root))
    assert out.returncode == 2, out.stderr
    text = out.stderr
    assert "4 problem(s)" in text
    lines = path.read_text().splitlines()
    for index, (_, named, cause) in enumerate(BROKEN_BINDINGS.values(), start=1):
        problem = next(line for line in text.splitlines() if line.strip().startswith(f"reconcilers.{index}.plugin"))
        assert named in problem and cause in problem
        line_no = int(problem.split("(line ", 1)[1].split(")", 1)[0])
        assert lines[line_no - 1].lstrip("- ").startswith("plugin:")
    assert "handlers.0.plugin" in text and "no informerd.handlers plugin named 'robust-missing'" in text
    assert "reconcilers.0" not in text  # the good binding is not a problem

    fixed = write_config(tmp_path / "fixed.yaml", {"reconcilers": [children_binding("fine", "fine", tmp_path / "r")]})
    out = informerd("check-config", "--config", str(fixed), env=cli_env(plugin_root))
    assert out.returncode == 0 and "ok (1 reconciler(s), 0 handler(s))" in out.stdout


# -- shards ---------------------------------------------------------------------------------------


def test_two_shards_split_the_objects_with_no_overlap_and_no_gap(
    control_plane: ControlPlane, namespace: str, plugin_root: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record.txt"

    def config_for(tag: str) -> Path:
        config = daemon_config(namespace, reconcilers=[children_binding("sharded", "sharded", record, tag=tag)])
        return write_config(tmp_path / f"{tag}.yaml", config)

    env = cli_env(plugin_root)
    uids = {create(control_plane, namespace, f"obj-{i}", "sharded") for i in range(40)}
    with (
        running(run_args(control_plane, config_for("shard-0"), "--shard", "0", "--total-shards", "2"), env) as zero,
        running(run_args(control_plane, config_for("shard-1"), "--shard", "1", "--total-shards", "2"), env) as one,
        # A StatefulSet pod named <set>-1 takes ordinal 1 from POD_NAME when --shard is not given.
        running(
            run_args(control_plane, config_for("pod-1"), "--total-shards", "2"), {**env, "POD_NAME": "informerd-1"}
        ) as pod,
    ):
        for daemon in (zero, one, pod):
            daemon.wait_ready()

        def by_tag() -> dict[str, list[str]]:
            out: dict[str, list[str]] = {"shard-0": [], "shard-1": [], "pod-1": []}
            for tag, uid, _ in records(record):
                out[tag].append(uid)
            return out

        wait_for(
            lambda: (
                set(by_tag()["shard-0"]) | set(by_tag()["shard-1"]) >= uids
                and set(by_tag()["pod-1"]) >= {u for u in uids if shard_of(u, 2) == 1}
            ),
            120,
            "every object reconciled",
        )
        time.sleep(1)  # a stray reconcile by the wrong shard would show up in this time
        seen = by_tag()
        zero_set, one_set = set(seen["shard-0"]), set(seen["shard-1"])
        assert not zero_set & one_set  # no overlap
        assert zero_set | one_set == uids  # no gap, nothing else
        assert zero_set == {u for u in uids if shard_of(u, 2) == 0}
        assert zero_set and one_set  # both did work
        assert set(seen["pod-1"]) == one_set
        assert pod.log_lines(event="manager starting")[0]["shard"] == "shard 1/2"
        for daemon in (zero, one, pod):
            scrape = daemon.scrape()
            assert total(scrape, "controller_runtime_reconcile_errors_total", controller="sharded") == 0


def test_a_replica_that_cannot_tell_its_shard_says_so(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.yaml", {})
    env = cli_env(None, POD_NAME="not-a-statefulset-pod")
    out = informerd("run", "--config", str(path), "--total-shards", "2", env=env)
    assert out.returncode == 2
    assert "cannot tell this replica's shard" in out.stderr and "Traceback" not in out.stderr
    out = informerd("run", "--config", str(path), "--shard", "2", "--total-shards", "2", env=env)
    assert out.returncode == 2 and "shard ordinal must be in 0..1" in out.stderr


# -- hostile HTTP clients -------------------------------------------------------------------------


def raw(port: int, data: bytes, timeout: float = 20) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_bad_input_to_the_servers_gets_plain_answers_and_never_stops_the_daemon(
    control_plane: ControlPlane, namespace: str, plugin_root: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record.txt"
    config = daemon_config(namespace, reconcilers=[children_binding("good", "good", record)])
    path = write_config(tmp_path / "config.yaml", config)
    with running(run_args(control_plane, path), cli_env(plugin_root)) as daemon:
        daemon.wait_ready()
        metrics, probes = daemon.url("metrics"), daemon.url("probes")
        metrics_port, probes_port = (int(u.rsplit(":", 1)[1]) for u in (metrics, probes))

        for base, path_ in ((metrics, "/nope"), (metrics, "/metrics/x"), (probes, "/nope"), (probes, "/healthz/nope")):
            status, body = fetch(base + path_)
            assert status == 404, (path_, body)
            assert "<" not in body  # plain text, no HTML
        for base, path_ in ((metrics, "/metrics"), (probes, "/healthz"), (probes, "/readyz")):
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                status, body = fetch(base + path_, method=method)
                assert status == 405 and body == "405 method not allowed\n", (method, path_)

        answers = {
            "garbage": raw(metrics_port, b"\x00\xff\xfe hello\r\n\r\n"),
            "no version": raw(metrics_port, b"GET /metrics\r\n\r\n"),
            "http/2": raw(metrics_port, b"GET /metrics HTTP/2.0\r\n\r\n"),
            "bad header": raw(probes_port, b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n"),
            "huge header": raw(probes_port, b"GET /healthz HTTP/1.1\r\nX-A: " + b"a" * 40_000 + b"\r\n\r\n"),
            "relative target": raw(metrics_port, b"GET metrics HTTP/1.1\r\n\r\n"),
        }
        assert {k: status_of(v) for k, v in answers.items()} == {
            "garbage": 400,
            "no version": 400,
            "http/2": 505,
            "bad header": 400,
            "huge header": 431,
            "relative target": 400,
        }
        assert all(b"Content-Type: text/plain" in v for v in answers.values())

        # A client that sends half a request and waits (slowloris) holds only its own connection.
        slow = socket.create_connection(("127.0.0.1", metrics_port), timeout=30)
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        assert daemon.scrape()  # others are served meanwhile
        assert status_of(slow.recv(65536)) == 408  # it is cut off at the header deadline
        slow.close()

        # A flood of idle connections: those past the cap are answered 503 at once; once the flood
        # is gone the servers serve again, and the probes server never noticed.
        flood = [socket.create_connection(("127.0.0.1", metrics_port), timeout=30) for _ in range(150)]
        try:
            flood[-1].sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            assert status_of(flood[-1].recv(65536)) == 503
            assert fetch(probes + "/healthz")[0] == 200
        finally:
            for sock in flood:
                sock.close()
        wait_for(lambda: fetch(metrics + "/metrics")[0] == 200, 30, "metrics served after the flood")

        uid = create(control_plane, namespace, "after-abuse", "good")
        wait_for(lambda: uid in {r[1] for r in records(record)}, 60, "a reconcile after the abuse")
        assert daemon.alive()
        status, body = fetch(probes + "/healthz?verbose")
        assert status == 200, body


# -- signals --------------------------------------------------------------------------------------


def test_sigterm_stops_intake_drains_the_reconcile_in_flight_and_exits_0(
    control_plane: ControlPlane, namespace: str, plugin_root: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record.txt"
    config = daemon_config(namespace, drain=60, reconcilers=[children_binding("slow", "slow", record, delay=6)])
    path = write_config(tmp_path / "config.yaml", config)
    with running(run_args(control_plane, path), cli_env(plugin_root)) as daemon:
        daemon.wait_ready()
        first = create(control_plane, namespace, "first", "slow")
        wait_for(
            lambda: total(daemon.scrape(), "controller_runtime_active_workers", controller="slow") == 1,
            60,
            "a reconcile in flight",
        )
        second = create(control_plane, namespace, "second", "slow")  # queued behind the one worker
        wait_for(lambda: total(daemon.scrape(), "workqueue_depth", name="slow") >= 1, 30, "the second one queued")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
        done = {r[1] for r in records(record)}
        assert first in done  # drained: the call in flight finished and its child was written
        assert second not in done  # intake stopped: the queued key was never started
        assert "first" in children(control_plane, namespace)
        assert daemon.log_lines(event="signal received: draining")
        assert daemon.log_lines(event="manager stopped")
        assert not daemon.log_lines(event="exiting with plugin calls still running on threads")


@contextmanager
def hanging_reconcile_daemon(
    control_plane: ControlPlane, namespace: str, plugin_root: Path, tmp_path: Path, *, drain: float
) -> Iterator[Daemon]:
    """A daemon whose one reconciler hangs, ready, with a reconcile of it in flight."""
    binding = {"plugin": "robust-hangs", "name": "hangs", "resource": "v1/configmaps", "labelSelector": "robust/role=h"}
    path = write_config(tmp_path / "config.yaml", daemon_config(namespace, drain=drain, reconcilers=[binding]))
    with running(run_args(control_plane, path), cli_env(plugin_root)) as daemon:
        daemon.wait_ready()
        create(control_plane, namespace, "stuck", "h")
        wait_for(
            lambda: total(daemon.scrape(), "controller_runtime_active_workers", controller="hangs") == 1,
            60,
            "a reconcile in flight",
        )
        yield daemon


def test_a_reconcile_past_the_drain_deadline_is_cancelled_and_the_exit_is_still_0(
    control_plane: ControlPlane, namespace: str, plugin_root: Path, tmp_path: Path
) -> None:
    with hanging_reconcile_daemon(control_plane, namespace, plugin_root, tmp_path, drain=1) as daemon:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
        assert daemon.log_lines(event="drain deadline passed; cancelling reconciles", controller="hangs")


def test_a_second_signal_exits_at_once_without_draining(
    control_plane: ControlPlane, namespace: str, plugin_root: Path, tmp_path: Path
) -> None:
    with hanging_reconcile_daemon(control_plane, namespace, plugin_root, tmp_path, drain=600) as daemon:
        daemon.signal(signal.SIGTERM)
        daemon.wait_log(event="signal received: draining")
        time.sleep(0.5)
        assert daemon.proc.poll() is None  # still draining (the drain deadline is 600 s)
        daemon.signal(signal.SIGINT)
        assert daemon.wait(30) != 0  # well before the drain deadline
        assert daemon.log_lines(event="second signal: exiting without draining")


def test_losing_the_lease_exits_non_zero_even_with_a_plugin_call_stuck_on_a_thread(
    control_plane: ControlPlane, namespace: str, plugin_root: Path, tmp_path: Path
) -> None:
    binding = {
        "plugin": "robust-hangs-blocking",
        "name": "blocks",
        "resource": "v1/configmaps",
        "labelSelector": "robust/role=b",
        "timeout": 1,
    }
    election = {"enabled": True, "namespace": namespace, "leaseDuration": 4, "renewDeadline": 3, "retryPeriod": 1}
    config = daemon_config(namespace, reconcilers=[binding], leaderElection=election)
    path = write_config(tmp_path / "config.yaml", config)
    with running(run_args(control_plane, path), cli_env(plugin_root)) as daemon:
        daemon.wait_ready()
        wait_for(lambda: total(daemon.scrape(), "leader_election_master_status") == 1, 60, "leading")
        create(control_plane, namespace, "b-0", "b")
        wait_for(
            lambda: total(daemon.scrape(), "informerd_controller_overrun_threads", controller="blocks") >= 1,
            60,
            "a thread stuck in the plugin",
        )
        # Another holder takes the Lease: the leader cannot renew and must stop.
        lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/robust-leader"
        lease = control_plane.request_json("GET", lease_path)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease["spec"].update(holderIdentity="thief", leaseDurationSeconds=3600, renewTime=now, acquireTime=now)
        control_plane.request_json("PUT", lease_path, lease)
        # Before the fix: a traceback of an exception group, then Python waited an hour for the thread.
        assert daemon.wait(60) == 1
        assert daemon.log_lines(event="informerd failed")[0]["error"].startswith("LeaderElectionLostError")
        assert not [line for line in daemon.logs if "Traceback" in line.get("raw", "")]
        assert daemon.log_lines(event="exiting with plugin calls still running on threads")
