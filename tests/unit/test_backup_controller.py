"""The example package's ``backup`` reconciler over ``FakeCluster``, through the real Manager: one
Job per generation and one record however often (and on however many managers) it runs, Ready
with observedGeneration once the Job succeeds, a failed Job, a finished generation never re-run,
the finalizer deleting the record; plus the ``event-log`` handler and the example config.
Milliseconds, no server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog.testing
import yaml
from backup_controller import (
    BACKUPS,
    FINALIZER,
    JOBS,
    BackupOptions,
    backup,
    crd,
    job_finished,
    job_name,
    record_name,
)
from backup_controller.handlers import event_log
from backup_controller.reconciler import PERMISSIONS

from controllers import Manager
from controllers.conditions import get_condition
from controllers.config import load_config_file
from controllers.daemon import manager_from_config
from controllers.plugins import HANDLERS_GROUP, RECONCILERS_GROUP, load_plugin
from informers.events import ObjectAdded, ObjectDeleted, ObjectUpdated
from informers.testing.fake import FakeCluster

from .conftest import FAST, wait_until_async

pytestmark = pytest.mark.anyio

NS, RECORDS = "team-a", "records"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "backup-controller"


def cluster_with_backups() -> FakeCluster:
    cluster = FakeCluster()
    cluster.register(BACKUPS, status_subresource=True)
    cluster.register(JOBS, status_subresource=True)
    return cluster


def manager(cluster: FakeCluster) -> Manager:
    mgr = Manager(client=cluster, name="backup-controller", informer_options=FAST)
    mgr.reconcile(BACKUPS, owns=["batch/v1/jobs"], workers=2)(backup(BackupOptions(record_namespace=RECORDS)))
    return mgr


def a_backup(name: str, source: str = "db") -> dict[str, Any]:
    return {
        "apiVersion": "backup.informerd.dev/v1",
        "kind": "Backup",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"source": {"kind": "PersistentVolumeClaim", "name": source}},
    }


def jobs(cluster: FakeCluster) -> list[dict[str, Any]]:
    return cluster.list(JOBS, namespace=NS)


def records(cluster: FakeCluster) -> list[dict[str, Any]]:
    return cluster.list("v1/configmaps", namespace=RECORDS)


def created(cluster: FakeCluster, plural: str) -> int:
    return sum(
        1
        for w in cluster.writes
        if w.source == "client" and w.method == "POST" and w.path.endswith(f"/{plural}") and w.status < 300
    )


def current(cluster: FakeCluster, name: str) -> dict[str, Any]:
    return cluster.get(BACKUPS, name, namespace=NS)


def condition(cluster: FakeCluster, name: str, type_: str) -> tuple[str, str] | None:
    found = get_condition(current(cluster, name), type_)
    return None if found is None else (found["status"], found["reason"])


def succeed(cluster: FakeCluster, job: str) -> None:
    cluster.patch(JOBS, job, {"status": {"succeeded": 1}}, namespace=NS, subresource="status")


async def serving(managers: list[Manager], body: Callable[[], Awaitable[None]]) -> None:
    async with anyio.create_task_group() as group:
        for mgr in managers:
            group.start_soon(mgr.serve)
        for mgr in managers:
            await wait_until_async(lambda m=mgr: bool(m.controllers) and all(c.has_synced() for c in m.controllers))
        await body()
        group.cancel_scope.cancel()


async def idle(managers: list[Manager]) -> None:
    """Wait until no key is queued or being reconciled on any manager."""

    def quiet() -> bool:
        return all(
            c.statistics().queue.processing == 0 and c.statistics().queue.depth == 0
            for m in managers
            for c in m.controllers
        )

    await wait_until_async(quiet)


async def test_reconciling_again_and_on_two_managers_makes_one_job_and_one_record():
    cluster = cluster_with_backups()
    replicas = [manager(cluster), manager(cluster)]  # two replicas without leader election: the worst case

    async def body() -> None:
        uid = cluster.create(BACKUPS, a_backup("nightly"))["metadata"]["uid"]
        await wait_until_async(lambda: condition(cluster, "nightly", "Progressing") == ("True", "JobRunning"))
        # More reconciles with nothing new: label edits enqueue the Backup on both managers.
        for i in range(5):
            cluster.patch(BACKUPS, "nightly", {"metadata": {"labels": {"poke": str(i)}}}, namespace=NS)
            await anyio.sleep(0.01)
        await idle(replicas)
        assert [j["metadata"]["name"] for j in jobs(cluster)] == [job_name(uid, 1)]
        assert [r["metadata"]["name"] for r in records(cluster)] == [record_name(uid)]
        assert created(cluster, "jobs") == 1 and created(cluster, "configmaps") == 1
        job = jobs(cluster)[0]
        owner = job["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("Backup", uid, True)
        record = records(cluster)[0]
        assert record["data"] == {"namespace": NS, "name": "nightly", "uid": uid, "source": "PersistentVolumeClaim/db"}
        backup_now = current(cluster, "nightly")
        assert FINALIZER in backup_now["metadata"]["finalizers"]
        assert backup_now["status"]["jobName"] == job_name(uid, 1)
        assert backup_now["status"]["recordName"] == record_name(uid)
        assert condition(cluster, "nightly", "Ready") == ("False", "BackupRunning")
        assert "observedGeneration" not in backup_now["status"]

    await serving(replicas, body)


async def test_ready_with_observed_generation_once_the_job_succeeds_and_a_new_generation_runs_again():
    cluster = cluster_with_backups()
    mgr = manager(cluster)

    async def body() -> None:
        uid = cluster.create(BACKUPS, a_backup("weekly"))["metadata"]["uid"]
        await wait_until_async(lambda: len(jobs(cluster)) == 1)
        succeed(cluster, job_name(uid, 1))
        await wait_until_async(lambda: condition(cluster, "weekly", "Ready") == ("True", "BackupComplete"))
        status = current(cluster, "weekly")["status"]
        assert status["observedGeneration"] == 1
        assert get_condition(current(cluster, "weekly"), "Ready")["observedGeneration"] == 1  # type: ignore[index]
        assert condition(cluster, "weekly", "Progressing") == ("False", "JobFinished")
        # Events are written by the recorder's own thread, after the status write: wait for them.
        await wait_until_async(
            lambda: (
                {"JobCreated", "BackupComplete"}
                <= {e["reason"] for e in cluster.list("events.k8s.io/v1/events", namespace=NS)}
            )
        )

        cluster.patch(BACKUPS, "weekly", {"spec": {"trigger": "again"}}, namespace=NS)  # generation 2
        await wait_until_async(lambda: len(jobs(cluster)) == 2)
        await wait_until_async(lambda: condition(cluster, "weekly", "Ready") == ("False", "BackupRunning"))
        assert current(cluster, "weekly")["status"]["observedGeneration"] == 1
        succeed(cluster, job_name(uid, 2))
        await wait_until_async(lambda: current(cluster, "weekly")["status"].get("observedGeneration") == 2)
        assert condition(cluster, "weekly", "Ready") == ("True", "BackupComplete")
        await idle([mgr])
        assert sorted(j["metadata"]["name"] for j in jobs(cluster)) == sorted([job_name(uid, 1), job_name(uid, 2)])
        assert len(records(cluster)) == 1

    await serving([mgr], body)


async def test_a_failed_job_is_reported_and_a_finished_generation_is_never_run_again():
    cluster = cluster_with_backups()
    mgr = manager(cluster)

    async def body() -> None:
        uid = cluster.create(BACKUPS, a_backup("flaky"))["metadata"]["uid"]
        await wait_until_async(lambda: len(jobs(cluster)) == 1)
        failed = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], "failed": 3}
        cluster.patch(JOBS, job_name(uid, 1), {"status": failed}, namespace=NS, subresource="status")
        await wait_until_async(lambda: condition(cluster, "flaky", "Ready") == ("False", "BackupFailed"))
        assert current(cluster, "flaky")["status"]["observedGeneration"] == 1
        # The Job goes away (someone cleaned up): the generation is done, nothing is re-created.
        cluster.delete(JOBS, job_name(uid, 1), namespace=NS)
        cluster.patch(BACKUPS, "flaky", {"metadata": {"labels": {"poke": "1"}}}, namespace=NS)
        await anyio.sleep(0.05)
        await idle([mgr])
        assert jobs(cluster) == [] and created(cluster, "jobs") == 1

    await serving([mgr], body)


async def test_deleting_a_backup_deletes_its_record_then_removes_the_finalizer():
    cluster = cluster_with_backups()
    mgr = manager(cluster)

    async def body() -> None:
        uid = cluster.create(BACKUPS, a_backup("doomed"))["metadata"]["uid"]
        cluster.create(BACKUPS, a_backup("kept"))
        await wait_until_async(lambda: len(records(cluster)) == 2 and len(jobs(cluster)) == 2)
        cluster.delete(BACKUPS, "doomed", namespace=NS)
        await wait_until_async(lambda: [b["metadata"]["name"] for b in cluster.list(BACKUPS, namespace=NS)] == ["kept"])
        assert record_name(uid) not in {r["metadata"]["name"] for r in records(cluster)}
        assert len(records(cluster)) == 1  # the other Backup's record is untouched
        deletes = [w for w in cluster.writes if w.method == "DELETE" and "/configmaps/" in w.path]
        assert [w.path.rsplit("/", 1)[-1] for w in deletes] == [record_name(uid)]

    await serving([mgr], body)


async def test_a_spec_without_a_source_is_a_terminal_error_with_a_condition_and_no_job():
    cluster = cluster_with_backups()
    mgr = manager(cluster)

    async def body() -> None:
        broken = a_backup("broken")
        del broken["spec"]["source"]  # the CRD's schema would refuse it; the fake serves no schema
        cluster.create(BACKUPS, broken)
        await wait_until_async(lambda: condition(cluster, "broken", "Ready") == ("False", "InvalidSpec"))
        await wait_until_async(lambda: mgr.controllers[0].statistics().workers.terminal_errors_total >= 1)
        await idle([mgr])
        assert jobs(cluster) == [] and records(cluster) == []
        assert mgr.controllers[0].statistics().queue.delayed == 0  # nothing scheduled for a retry

    await serving([mgr], body)


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        ({}, None),
        ({"active": 1}, None),
        ({"succeeded": 1}, True),
        ({"conditions": [{"type": "Complete", "status": "True"}]}, True),
        ({"conditions": [{"type": "Complete", "status": "False"}]}, None),
        ({"failed": 3, "conditions": [{"type": "Failed", "status": "True"}]}, False),
        ({"failed": 1}, None),  # a failed pod is retried (backoffLimit) until the Job says Failed
    ],
)
def test_job_finished_reads_the_job_status(status: dict[str, Any], finished: bool | None):
    assert job_finished({"status": status}) is finished


def test_the_event_log_handler_logs_identity_never_contents():
    handle = event_log(None)
    obj = a_backup("nightly", source="top-secret-volume")
    obj["metadata"].update(uid="u-1", resourceVersion="7")
    with structlog.testing.capture_logs() as logs:
        handle(ObjectAdded(obj, in_initial_list=True))
        handle(ObjectUpdated(obj, obj))
        handle(ObjectDeleted(obj))
    assert [entry["type"] for entry in logs] == ["initial", "updated", "deleted"]
    assert logs[0] == {
        "event": "notification",
        "log_level": "info",
        "type": "initial",
        "kind": "Backup",
        "namespace": NS,
        "name": "nightly",
        "uid": "u-1",
        "resource_version": "7",
    }
    assert "top-secret-volume" not in repr(logs)


def test_the_plugins_load_through_their_entry_points_with_the_example_config():
    config = load_config_file(EXAMPLE / "config.yaml")
    [binding] = config.reconcilers
    loaded = load_plugin(RECONCILERS_GROUP, binding.plugin, binding.options, binding.permissions)
    assert loaded.info.distribution == "informerd-backup-controller"
    assert dict(loaded.permissions) == {r: tuple(sorted(v)) for r, v in PERMISSIONS.items()}
    assert load_plugin(HANDLERS_GROUP, "event-log", {}).info.distribution == "informerd-backup-controller"
    manager_from_config(config, client=object())  # every plugin loads and is granted what it writes


def test_the_crd_serves_the_resource_the_plugin_reconciles():
    definition = crd()
    assert definition == yaml.safe_load((EXAMPLE / "crd.yaml").read_text())
    spec = definition["spec"]
    assert (spec["group"], spec["names"]["plural"], spec["names"]["kind"], spec["scope"]) == (
        BACKUPS.group,
        BACKUPS.plural,
        BACKUPS.kind,
        "Namespaced",
    )
    [version] = spec["versions"]
    assert version["name"] == BACKUPS.version and version["subresources"] == {"status": {}}
