"""RBAC proven, not assumed: the chart's ServiceAccount (a TokenRequest token) runs ``informerd run``
locally against the control plane with the example backup-controller config. It lists, watches,
reconciles, writes Events and takes the Lease; the same token is refused Secrets, unrelated writes and
other namespaces (403); and with any single generated rule removed the daemon fails visibly (a
Forbidden error for that rule's resource in its log)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from backup_controller.kit import DaemonProcess, backup_manifest, install_crd, succeed_job, wait_for
from backup_controller.names import record_name

from informers.testing import ControlPlane

from .chart_support import CHART, helm

pytestmark = pytest.mark.integration

RELEASE = "proof"
FULLNAME = f"{RELEASE}-informerd"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@dataclass
class Install:
    plane: ControlPlane
    watched: str
    records: str
    release_ns: str
    other: str
    kubeconfig: Path
    token: str
    config: dict[str, Any]
    workdir: Path
    roles: dict[str, dict[str, Any]]
    """Role objects as the apiserver stores them, by namespace."""

    def backups(self, ns: str | None = None) -> str:
        return f"/apis/backup.informerd.dev/v1/namespaces/{ns or self.watched}/backups"

    def daemon(self, name: str) -> DaemonProcess:
        return DaemonProcess(self.config, self.kubeconfig, self.workdir, name=name)

    def as_daemon(self, method: str, path: str, body: Any = None) -> int:
        """One request with the ServiceAccount's token; returns the HTTP status."""
        http = urllib3.PoolManager(ca_certs=str(self.plane.ca_file), cert_reqs="CERT_REQUIRED")
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        data = None if body is None else yaml.safe_dump(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/yaml"
        answer = http.request(method, self.plane.server + path, body=data, headers=headers, retries=False)
        return int(answer.status)


def _namespace(plane: ControlPlane, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    plane.request_json("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    return name


@pytest.fixture(scope="module")
def install(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    """The chart installed with the example config moved to fresh namespaces and two replicas
    (leader election on), the daemon's config read back from the installed ConfigMap."""
    install_crd(control_plane)
    workdir = tmp_path_factory.mktemp("chart-rbac")
    watched, records = _namespace(control_plane, "backups"), _namespace(control_plane, "records")
    release_ns, other = _namespace(control_plane, "release"), _namespace(control_plane, "other")
    config = copy.deepcopy(yaml.safe_load((CHART / "values.yaml").read_text())["config"])
    config["namespace"] = watched
    config["reconcilers"][0]["options"]["recordNamespace"] = records
    values = {"replicaCount": 2, "rbac": {"permissionNamespaces": {"v1/configmaps": [records]}}, "config": config}
    (workdir / "values.yaml").write_text(yaml.safe_dump(values))
    home = workdir / "helm"
    admin = control_plane.admin_kubeconfig
    helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        release_ns,
        "-f",
        str(workdir / "values.yaml"),
        kubeconfig=admin,
        home=home,
    )
    stored = control_plane.request_json("GET", f"/api/v1/namespaces/{release_ns}/configmaps/{FULLNAME}-config")
    kubeconfig = control_plane.service_account_kubeconfig(release_ns, FULLNAME)
    token = control_plane.service_account_token(release_ns, FULLNAME)
    roles = {
        ns: control_plane.request_json("GET", f"{RBAC}/namespaces/{ns}/roles/{FULLNAME}")
        for ns in (watched, records, release_ns)
    }
    # The daemon runs with the environment the installed Deployment gives its container (the bind
    # addresses aside: DaemonProcess picks free ports); in the pod the Lease's namespace comes from the
    # ServiceAccount's namespace file, here from POD_NAMESPACE.
    deployment = control_plane.request_json("GET", f"/apis/apps/v1/namespaces/{release_ns}/deployments/{FULLNAME}")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    chart_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert chart_env["INFORMERD_LEADER_ELECT"] == "true"  # replicaCount 2
    env = pytest.MonkeyPatch()
    for name, value in chart_env.items():
        if name.startswith("INFORMERD_") and not name.endswith("_BIND_ADDRESS"):
            env.setenv(name, value)
    env.setenv("POD_NAMESPACE", release_ns)
    yield Install(
        control_plane,
        watched,
        records,
        release_ns,
        other,
        kubeconfig,
        token,
        yaml.safe_load(stored["data"]["config.yaml"]),
        workdir,
        roles,
    )
    env.undo()
    helm("uninstall", RELEASE, "-n", release_ns, kubeconfig=admin, home=home)


def _forbidden_lines(daemon: DaemonProcess) -> list[str]:
    text = daemon.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if "forbidden" in line.lower() or " 403 " in line]


def _condition(obj: dict[str, Any], kind: str) -> str | None:
    return next((c["status"] for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), None)


def test_the_charts_rbac_lets_the_daemon_do_its_whole_job(install: Install):
    plane = install.plane
    assert install.config["namespace"] == install.watched
    plane.request_json("POST", install.backups(), backup_manifest("listed"))  # before start: found by the LIST
    with install.daemon("allowed") as daemon:
        daemon.wait_ready(120)
        plane.request_json("POST", install.backups(), backup_manifest("watched"))  # after start: by the WATCH
        for name in ("listed", "watched"):

            def progressing(name: str = name) -> dict[str, Any] | None:
                obj = plane.request_json("GET", f"{install.backups()}/{name}")
                return obj if _condition(obj, "Progressing") == "True" and obj["status"].get("jobName") else None

            backup = wait_for(progressing, 60, f"{name} reconciled")
            assert "backup.informerd.dev/record" in backup["metadata"]["finalizers"]
            uid, job = backup["metadata"]["uid"], backup["status"]["jobName"]
            plane.request_json("GET", f"/apis/batch/v1/namespaces/{install.watched}/jobs/{job}")
            plane.request_json("GET", f"/api/v1/namespaces/{install.records}/configmaps/{record_name(uid)}")
            succeed_job(plane, install.watched, job)

            def ready(name: str = name) -> bool:
                obj = plane.request_json("GET", f"{install.backups()}/{name}")
                return _condition(obj, "Ready") == "True"

            wait_for(ready, 60, f"{name} Ready after its Job succeeded")
        wanted = {("listed", "JobCreated"), ("watched", "JobCreated"), ("watched", "BackupComplete")}

        def events_written() -> bool:  # the recorder writes from its own thread, after the status
            events = plane.request_json("GET", f"/apis/events.k8s.io/v1/namespaces/{install.watched}/events")
            return wanted <= {(e["regarding"]["name"], e["reason"]) for e in events["items"]}

        wait_for(events_written, 30, f"Events {sorted(wanted)}")
        lease_id = install.config["leaderElection"]["id"]
        lease = plane.request_json(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{install.release_ns}/leases/{lease_id}"
        )
        assert lease["spec"]["holderIdentity"]
        lease_events = f"/apis/events.k8s.io/v1/namespaces/{install.release_ns}/events"
        wait_for(
            lambda: any(e["regarding"]["kind"] == "Lease" for e in plane.request_json("GET", lease_events)["items"]),
            30,
            "the leader's Event on its Lease",
        )
        # Deleting runs the finalizer: the record in the other namespace is deleted, then the Backup goes.
        uid = plane.request_json("GET", f"{install.backups()}/watched")["metadata"]["uid"]
        plane.request_json("DELETE", f"{install.backups()}/watched")
        wait_for(lambda: plane.request("GET", f"{install.backups()}/watched")[0] == 404, 60, "the Backup's finalizer")
        record = f"/api/v1/namespaces/{install.records}/configmaps/{record_name(uid)}"
        assert plane.request("GET", record)[0] == 404
        assert _forbidden_lines(daemon) == []
        assert daemon.stop() == 0


def test_the_same_token_is_refused_everything_else(install: Install):
    w, r, o, rel = install.watched, install.records, install.other, install.release_ns
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}}
    denied = [
        ("GET", f"/api/v1/namespaces/{w}/secrets", None),  # reading Secrets
        ("GET", f"/api/v1/namespaces/{rel}/secrets/anything", None),
        ("GET", "/api/v1/secrets", None),
        ("POST", f"/api/v1/namespaces/{w}/configmaps", cm),  # configmaps are granted in the records namespace only
        ("GET", f"/api/v1/namespaces/{r}/configmaps", None),  # ... and not listed there
        ("POST", f"/apis/apps/v1/namespaces/{w}/deployments", {"apiVersion": "apps/v1", "kind": "Deployment"}),
        ("DELETE", f"{install.backups()}/anything", None),  # a verb not granted on a watched resource
        ("POST", f"/api/v1/namespaces/{w}/pods", {"apiVersion": "v1", "kind": "Pod"}),
        ("GET", install.backups(o), None),  # other namespaces
        ("POST", f"/apis/batch/v1/namespaces/{o}/jobs", job),
        ("POST", f"/api/v1/namespaces/{o}/configmaps", cm),
        ("GET", f"/apis/coordination.k8s.io/v1/namespaces/{o}/leases", None),
        ("GET", "/apis/backup.informerd.dev/v1/backups", None),  # all namespaces at once
        ("GET", "/api/v1/nodes", None),
        ("POST", f"{RBAC}/namespaces/{w}/roles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role"}),
    ]
    answers = {(m, p): install.as_daemon(m, p, b) for m, p, b in denied}
    assert answers == {key: 403 for key in answers}
    # The token itself works: what the chart granted is allowed.
    assert install.as_daemon("GET", install.backups()) == 200
    assert install.as_daemon("GET", f"/apis/batch/v1/namespaces/{w}/jobs") == 200


def _sar_allowed(install: Install, namespace: str, rule: dict[str, Any]) -> bool:
    """Whether the ServiceAccount may use ``rule``'s first verb (as the authorizer sees it now)."""
    resource, _, sub = rule["resources"][0].partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{install.release_ns}:{FULLNAME}",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{install.release_ns}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": namespace,
                "verb": rule["verbs"][0],
                "group": rule["apiGroups"][-1],
                "resource": resource,
                "subresource": sub,
            },
        },
    }
    answer = install.plane.request_json("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    return bool(answer["status"].get("allowed"))


def _put_role(install: Install, namespace: str, rules: list[dict[str, Any]]) -> None:
    current = install.plane.request_json("GET", f"{RBAC}/namespaces/{namespace}/roles/{FULLNAME}")
    current["rules"] = rules
    install.plane.request_json("PUT", f"{RBAC}/namespaces/{namespace}/roles/{FULLNAME}", current)


def _generated_rules(install: Install) -> list[tuple[str, int, dict[str, Any]]]:
    return [(ns, i, rule) for ns, role in sorted(install.roles.items()) for i, rule in enumerate(role["rules"])]


def _failure_without(install: Install, n: int, namespace: str, index: int) -> str:
    """Run the daemon with rule ``index`` of the Role in ``namespace`` removed; return the log line
    (or exit) that shows the failure. The Role is restored before returning."""
    plane = install.plane
    full = install.roles[namespace]["rules"]
    rule = full[index]
    resource = rule["resources"][0]
    lease_id = install.config["leaderElection"]["id"]
    _put_role(install, namespace, [r for i, r in enumerate(full) if i != index])
    try:
        wait_for(lambda: not _sar_allowed(install, namespace, rule), 30, "the rule's removal to be seen")
        plane.request("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{install.release_ns}/leases/{lease_id}")
        plane.request_json("POST", install.backups(), backup_manifest(f"without-{n}"))
        with install.daemon(f"without-{n}") as daemon:

            def failed_visibly() -> str | None:
                for line in _forbidden_lines(daemon):
                    if f'resource \\"{resource}\\"' in line and f'namespace \\"{namespace}\\"' in line:
                        return line
                if not daemon.running():  # an exit must name the refused rule too
                    raise AssertionError(
                        f"exited {daemon.returncode()} without a 403 on {resource}:\n{daemon.log_tail()}"
                    )
                return None

            found: str = wait_for(failed_visibly, 90, f"a visible failure without {rule} in {namespace}")
            return found
    finally:
        _put_role(install, namespace, full)
        wait_for(lambda: _sar_allowed(install, namespace, rule), 30, "the rule's restoration to be seen")


def test_every_generated_rule_is_needed(install: Install):
    rules = _generated_rules(install)
    assert len(rules) == 7, rules  # 4 in the watched namespace, 1 for records, 2 for the Lease
    failures = {f"{ns}: {rule}": _failure_without(install, n, ns, i) for n, (ns, i, rule) in enumerate(rules)}
    assert len(failures) == len(rules)
    print("\n".join(f"{k}\n    -> {v[:400]}" for k, v in failures.items()))
