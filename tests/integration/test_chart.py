"""The Helm chart: lint and render with the default and representative values, the schema refuses bad
values with clear messages, and the RBAC it derives from the config is exactly what the config needs.

Installing into the control plane and the RBAC proof with a ServiceAccount token are in
test_chart_install.py."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from controllers.sharding import resolve_shard

from .chart_support import CHART, CI_VALUES, container, env_of, find, helm, one, render, rules_of, set_args

pytestmark = pytest.mark.integration

DEFAULT_RULES = {
    "backups": {
        (("backup.informerd.dev",), "backups", ("get", "list", "patch", "update", "watch")),
        (("backup.informerd.dev",), "backups/status", ("patch",)),
        (("batch",), "jobs", ("create", "get", "list", "watch")),
        (("events.k8s.io",), "events", ("create", "patch")),
    },
    "backup-records": {((("",), "configmaps", ("create", "delete", "get")))},
}
LEADER_RULES = {
    (("coordination.k8s.io",), "leases", ("create", "get", "update")),
    (("events.k8s.io",), "events", ("create", "patch")),
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "helm"


def test_lint_strict_with_default_and_every_ci_values_file(home):
    assert len(CI_VALUES) >= 5
    out = helm("lint", "--strict", str(CHART), home=home).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    for values in CI_VALUES:
        out = helm("lint", "--strict", str(CHART), "-f", str(values), home=home).stdout
        assert "0 chart(s) failed" in out, values.name


def test_default_values_render_the_example_with_namespaced_least_privilege(home):
    objects = render(home)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        ["ServiceAccount", "ConfigMap", "Service", "Deployment", "Role", "Role", "RoleBinding", "RoleBinding"]
    )
    roles = {r["metadata"]["namespace"]: rules_of(r) for r in find(objects, "Role")}
    assert roles == DEFAULT_RULES
    for binding in find(objects, "RoleBinding"):
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rel-informerd"}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-informerd", "namespace": "informerd"}]
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert "INFORMERD_LEADER_ELECT" not in env_of(deployment)
    config = one(objects, "ConfigMap")["data"]["config.yaml"]
    assert yaml.safe_load(config) == yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    annotation = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert annotation == hashlib.sha256(config.rstrip("\n").encode()).hexdigest()


def test_pod_is_hardened_probed_and_wired_to_its_ports(home):
    deployment = one(render(home), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    assert pod["serviceAccountName"] == "rel-informerd"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(pod["securityContext"]["runAsUser"], int) and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {m["mountPath"]: m["name"] for m in c["volumeMounts"]} == {"/etc/informerd": "config", "/tmp": "tmp"}
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == "tmp")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "probes"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "probes"}
    env = env_of(deployment)
    assert env["INFORMERD_HEALTH_PROBE_BIND_ADDRESS"] == f":{ports['probes']}"
    assert env["INFORMERD_METRICS_BIND_ADDRESS"] == f":{ports['metrics']}"
    assert c["args"] == ["run", "--config", "/etc/informerd/config.yaml"]
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def test_rbac_and_service_account_can_be_left_to_the_user(home):
    objects = render(
        home, "--set", "rbac.create=false", "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=ops"
    )
    assert not [
        o
        for o in objects
        if o["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ServiceAccount")
    ]
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"


def test_config_change_changes_the_checksum_annotation(home):
    def checksum(*options: str) -> str:
        d = one(render(home, *options), "Deployment")
        return d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum() == checksum("--set", "logLevel=debug")  # not part of the config
    assert checksum() != checksum("--set", "config.drainTimeout=20")


def test_two_replicas_turn_leader_election_on_with_lease_rules_in_the_release_namespace(home):
    objects = render(home, "--set", "replicaCount=2")
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert env_of(deployment)["INFORMERD_LEADER_ELECT"] == "true"
    roles = {r["metadata"]["namespace"]: rules_of(r) for r in find(objects, "Role")}
    assert roles == {**DEFAULT_RULES, "informerd": LEADER_RULES}


def test_chart_readme_lists_the_rules_rendered_for_the_default_values(home):
    objects = render(home, "--set", "replicaCount=2")
    rows = []
    for role in find(objects, "Role"):
        for groups, resource, verbs in rules_of(role):
            quoted = ", ".join(f'"{g}"' for g in groups)
            rows.append(f"| {role['metadata']['namespace']} | `{quoted}` | {resource} | {', '.join(verbs)} |")
    readme = (CHART / "README.md").read_text()
    section = readme.split("| Role in | API groups | Resource | Verbs |\n| --- | --- | --- | --- |\n", 1)[1]
    table = section.split("\n\n", 1)[0].splitlines()
    assert sorted(rows) == sorted(table)


def test_namespaced_values_put_every_rule_in_one_role(home):
    objects = render(home, "-f", str(CHART / "ci" / "namespaced-values.yaml"))
    assert not find(objects, "ClusterRole") and not find(objects, "ClusterRoleBinding")
    (role,) = find(objects, "Role")
    assert role["metadata"]["namespace"] == "informerd"
    assert rules_of(role) == {
        (("backup.informerd.dev",), "backups", ("get", "list", "patch", "update", "watch")),
        (("backup.informerd.dev",), "backups/status", ("patch",)),
        (("batch",), "jobs", ("create", "get", "list", "watch")),
        (("events.k8s.io",), "events", ("create", "patch")),
        (("",), "configmaps", ("create", "delete", "get")),
        (("coordination.k8s.io",), "leases", ("create", "get", "update")),
    }


def test_cluster_wide_values_use_a_cluster_role_and_keep_leases_namespaced(home):
    objects = render(home, "-f", str(CHART / "ci" / "cluster-wide-values.yaml"), "--set", "replicaCount=3")
    cluster_role = one(objects, "ClusterRole")
    assert "namespace" not in cluster_role["metadata"]
    assert rules_of(cluster_role) == {
        (("backup.informerd.dev",), "backups", ("get", "list", "patch", "update", "watch")),
        (("backup.informerd.dev",), "backups/status", ("patch",)),
        (("batch",), "jobs", ("create", "get", "list", "watch")),  # `owns: [Job]`, a kind the chart knows
        (("events.k8s.io",), "events", ("create", "patch")),
        (("",), "configmaps", ("create", "delete", "get")),
        (("",), "namespaces", ("get", "list", "watch")),
    }
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["subjects"][0]["namespace"] == "informerd"
    assert rules_of(one(objects, "Role", "informerd")) == LEADER_RULES


def test_resources_written_as_kinds_or_with_subresources_map_to_rbac_names(home, tmp_path):
    forms = {
        "example.com/v1/Policy": (("example.com",), "policies"),
        "example.com/v1/Gateway/status": (("example.com",), "gateways/status"),
        "Ingress": (("networking.k8s.io",), "ingresses"),
        "NetworkPolicy": (("networking.k8s.io",), "networkpolicies"),
        "v1/Endpoints": (("",), "endpoints"),
        "apps/v1/Deployment": (("apps",), "deployments"),
        "v1/pods/log": (("",), "pods/log"),
        "storage.k8s.io/v1/StorageClass": (("storage.k8s.io",), "storageclasses"),
    }
    handlers = [{"plugin": "event-log", "resource": r} for r in forms]
    values = tmp_path / "forms.yaml"
    values.write_text(yaml.safe_dump({"config": {"namespace": "apps", "handlers": handlers}}))
    objects = render(home, "-f", str(values))
    namespaced = {(g, r) for g, r, _ in rules_of(one(objects, "Role", "apps"))}
    cluster = {(g, r) for g, r, _ in rules_of(one(objects, "ClusterRole"))}
    assert cluster == {(("storage.k8s.io",), "storageclasses")}  # cluster-scoped: never in a Role
    assert set(forms.values()) - cluster <= namespaced


def test_no_rendered_rule_has_a_wildcard(home):
    for options in ([], *(["-f", str(v)] for v in CI_VALUES)):
        for role in [o for o in render(home, *options) if o["kind"] in ("Role", "ClusterRole")]:
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert all("*" not in item for item in rule[field]), (options, rule)
                assert "nonResourceURLs" not in rule


def test_sharded_values_make_a_statefulset_whose_pods_take_their_ordinal(home):
    objects = render(home, "-f", str(CHART / "ci" / "sharded-values.yaml"))
    assert not find(objects, "Deployment")
    sts = one(objects, "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == one(objects, "Service")["metadata"]["name"]
    env = env_of(sts)
    assert env["INFORMERD_TOTAL_SHARDS"] == "3"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "INFORMERD_LEADER_ELECT" not in env  # one pod per shard: nothing to elect
    # The daemon's own rule (controllers.sharding) turns the StatefulSet's pod names into shards.
    names = [f"{sts['metadata']['name']}-{n}" for n in range(3)]
    assert [resolve_shard(int(env["INFORMERD_TOTAL_SHARDS"]), environ={"POD_NAME": n}).ordinal for n in names] == [
        0,
        1,
        2,
    ]
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": sts["spec"]["selector"]}


def test_service_monitor_scrapes_the_metrics_service(home):
    objects = render(home, "-f", str(CHART / "ci" / "servicemonitor-values.yaml"))
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    labels = service["metadata"]["labels"]
    assert all(labels[k] == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "15s")
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels[k] == v for k, v in service["spec"]["selector"].items())


def _chart_with_observability_files(tmp_path: Path) -> Path:
    """The chart, with a small dashboard and rule file where the chart does not ship them yet."""
    chart = tmp_path / "informerd"
    shutil.copytree(CHART, chart)
    if not (chart / "dashboards" / "informerd.json").exists():
        (chart / "dashboards").mkdir(exist_ok=True)
        (chart / "dashboards" / "informerd.json").write_text('{"title": "informerd", "panels": []}\n')
    if not (chart / "alerts" / "rules.yaml").exists():
        (chart / "alerts").mkdir(exist_ok=True)
        (chart / "alerts" / "rules.yaml").write_text(
            "groups:\n  - name: informerd\n    rules:\n      - alert: InformerdReconcileErrors\n"
            "        expr: rate(controller_runtime_reconcile_errors_total[5m]) > 0\n"
        )
    return chart


def test_dashboard_and_alerts_ship_the_chart_files(home, tmp_path):
    observability = str(CHART / "ci" / "observability-values.yaml")
    chart = _chart_with_observability_files(tmp_path)
    objects = render(home, "-f", observability, chart=chart)
    dashboard = next(o for o in find(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard"))
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "informerd"}
    assert dashboard["data"]["informerd.json"] == (chart / "dashboards" / "informerd.json").read_text().rstrip("\n")
    rule = one(objects, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load((chart / "alerts" / "rules.yaml").read_text())["groups"]
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    # Off by default; on without the files (the chart as it is now, maybe) renders neither.
    assert not find(render(home, chart=chart), "PrometheusRule")
    if not (CHART / "alerts" / "rules.yaml").exists():
        assert not find(render(home, "-f", observability), "PrometheusRule")


BAD_VALUES = [
    (["replicaCount=0"], "/replicaCount"),
    (["image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    (["logLevel=verbose"], "/logLevel"),
    (["metrics.port=70000"], "/metrics/port"),
    (["sharding.shards=0"], "/sharding/shards"),
    (["podSecurityContext.runAsUser=0"], "/podSecurityContext/runAsUser"),
    (["podSecurityContext.runAsNonRoot=false"], "/podSecurityContext/runAsNonRoot"),
    (["securityContext.allowPrivilegeEscalation=true"], "/securityContext/allowPrivilegeEscalation"),
    (["replicaCuont=2"], "replicaCuont"),
    (["config.drainTimeout=0"], "/config/drainTimeout"),
    (["config.bogus=1"], "bogus"),
    (["config.reconcilers[0].workers=0"], "/config/reconcilers/0/workers"),
    (["config.reconcilers[0].permissions.v1/secrets[0]=*"], "/config/reconcilers/0/permissions/v1~1secrets/0"),
    (["config.handlers[0].resource=*"], "/config/handlers/0/resource"),
    (["config.leaderElection.leaseDuration=-1"], "/config/leaderElection/leaseDuration"),
    (["metrics.serviceMonitor.interval=often"], "/metrics/serviceMonitor/interval"),
]


@pytest.mark.parametrize(("pairs", "where"), BAD_VALUES, ids=[b[0][0] for b in BAD_VALUES])
def test_schema_rejects_bad_values_naming_the_value(home, pairs, where):
    proc = helm("template", "rel", str(CHART), *set_args(pairs), home=home, check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert where in proc.stderr, proc.stderr


def test_a_resource_the_chart_cannot_place_fails_with_a_clear_message(home, tmp_path):
    values = tmp_path / "widget.yaml"
    values.write_text("config:\n  handlers:\n    - plugin: event-log\n      resource: Widget\n")
    proc = helm("template", "rel", str(CHART), "-f", str(values), home=home, check=False)
    assert proc.returncode != 0
    assert 'cannot derive RBAC for "Widget": write it as group/version/plural' in proc.stderr, proc.stderr
