"""Security against the real apiserver.

* TLS is verified by default: a client trusting another CA fails closed with a typed
  ``TLSVerificationError`` (no retries, the informer never syncs); skipping verification takes an
  explicit ``verify_ssl=False`` and logs a warning.
* Credentials and Secret data never reach the logs, ``/metrics``, the probes or error messages: a
  ``Manager`` running as a service account (token auth) reconciles Secrets holding known marker
  values, with the daemon's JSON logging and the standard library at DEBUG, while an admin
  informer (client certificate and key) watches the same Secrets. The reconciler provokes a
  conflict, a forbidden write, an invalid create, a forbidden Event write and a panic (traceback).
  The captured output is then searched for every marker (raw and base64), the token and the
  admin key's material.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import logging
import sys
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
import structlog
from structlog.testing import capture_logs

from controllers import Context, Manager
from controllers.logsetup import configure_logging
from informers import _bridge
from informers.client import ApiClient
from informers.config import load_config
from informers.errors import (
    ConflictError,
    ForbiddenError,
    InformerdError,
    InvalidError,
    TLSVerificationError,
)
from informers.factory import InformerFactory
from informers.resources import Resource
from informers.testing import ControlPlane, certs

pytestmark = [pytest.mark.integration]

SECRETS = Resource("", "v1", "secrets", "Secret", True)


# --- TLS ----------------------------------------------------------------------------------------


def test_a_client_trusting_another_ca_fails_closed_with_a_typed_error(control_plane: ControlPlane) -> None:
    admin = load_config(str(control_plane.admin_kubeconfig))
    assert admin.verify_ssl is True  # verified by default
    stranger = certs.CertificateAuthority("not-the-cluster-ca")
    config = dataclasses.replace(admin, ca_file=None, ca_data=stranger.cert_pem.decode())
    with ApiClient(config) as client:
        with pytest.raises(TLSVerificationError, match="TLS certificate could not be verified") as caught:
            client.get_json("/api")
        assert not caught.value.retryable
        assert client.statistics().connection_retries == 0

        async def informer_fails_closed() -> InformerdError | None:
            async with InformerFactory(client) as factory:
                informer = factory.informer_for(SECRETS, namespace="default")
                assert not await informer.wait_synced(1.0)
                return informer.last_error

        assert isinstance(anyio.run(informer_fails_closed), TLSVerificationError)


def test_skipping_verification_needs_an_explicit_setting_and_logs_a_warning(control_plane: ControlPlane) -> None:
    admin = load_config(str(control_plane.admin_kubeconfig))
    insecure = dataclasses.replace(admin, ca_file=None, ca_data=None, verify_ssl=False)
    with capture_logs() as logs, ApiClient(insecure) as client, pytest.warns(Warning):
        assert client.get_json("/api")["kind"] == "APIVersions"
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"].split(":")[0] for e in warnings] == ["TLS verification is off"]


# --- no secrets in logs, metrics, probes or errors ----------------------------------------------


@pytest.fixture
def debug_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The daemon's JSON logging at DEBUG, the standard library's (urllib3 included) too."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("urllib3").level
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging("debug", "json")
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        root.handlers[:], level, urllib3_level = saved
        root.setLevel(level)
        logging.getLogger("urllib3").setLevel(urllib3_level)


def _fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return str(answer.read().decode())
    except urllib.error.HTTPError as error:
        return str(error.read().decode())


def _grant(plane: ControlPlane, namespace: str, account: str) -> None:
    """The service account may read, update and create Secrets here; not patch them, and no Events."""
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    plane.request_json(
        "POST",
        f"{rbac}/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "secrets-no-patch"},
            "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "update", "create"]}
            ],
        },
    )
    plane.request_json(
        "POST",
        f"{rbac}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "secrets-no-patch"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secrets-no-patch"},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )


def _credentials(kubeconfig: Path) -> dict[str, str]:
    user = orjson.loads(kubeconfig.read_bytes())["users"][0]["user"]
    return {k: str(v) for k, v in user.items()}


def _key_material(key_file: str) -> list[str]:
    """The base64 lines of a PEM private key (its material, without the armour lines)."""
    lines = Path(key_file).read_text().splitlines()
    body = [line.strip() for line in lines if line.strip() and not line.startswith("-----")]
    assert body
    return [line for line in body if len(line) >= 16] + ["".join(body)[:64]]


def test_no_token_key_or_secret_data_in_logs_metrics_probes_or_errors(
    control_plane: ControlPlane, namespace: str, debug_logs: io.StringIO
) -> None:
    account = "informerd-leak-test"
    _grant(control_plane, namespace, account)
    sa_kubeconfig = control_plane.service_account_kubeconfig(namespace, account)
    token = _credentials(sa_kubeconfig)["token"]
    admin_key = _credentials(control_plane.admin_kubeconfig)["client-key"]
    markers = {f"app-{i}": f"leak-{uuid.uuid4().hex}" for i in range(3)}
    for name, value in markers.items():
        control_plane.request_json(
            "POST",
            f"/api/v1/namespaces/{namespace}/secrets",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"password": value}},
        )

    manager = Manager(
        load_config(str(sa_kubeconfig)),
        namespace=namespace,
        name="leak-test",
        metrics_bind_address="127.0.0.1:0",
        health_probe_bind_address="127.0.0.1:0",
    )
    errors: list[BaseException] = []
    attempts: Counter[str] = Counter()

    @manager.reconcile(SECRETS)
    async def reconcile(ctx: Context) -> None:
        obj = ctx.obj
        if obj is None or not ctx.name.startswith("app-"):
            return None
        attempts[ctx.name] += 1
        ctx.log.debug("reconciling a Secret", keys=sorted(obj.get("data") or {}))
        ctx.event("Seen", "a Secret was reconciled")  # Events are not granted: the recorder's write fails
        api = ctx.api("v1/secrets")
        stale = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1"}}
        invalid = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Not_Valid"}, "data": obj["data"]}
        for write in (
            lambda: api.update(stale),  # 409 Conflict
            lambda: api.patch(ctx.name, {"metadata": {"labels": {"seen": "yes"}}}),  # 403 Forbidden
            lambda: api.create(invalid),  # 422 Invalid, with the data in the request body
        ):
            try:
                await write()
            except InformerdError as exc:
                errors.append(exc)
                ctx.log.warning("write refused", error=repr(exc))
        if attempts[ctx.name] == 1:
            raise RuntimeError("a reconciler bug")  # a panic: logged with its traceback, retried
        if attempts[ctx.name] == 2:
            raise errors[-1]  # an API error: the worker logs it, retried
        return None

    admin_client = ApiClient(load_config(str(control_plane.admin_kubeconfig)))
    admin_seen: list[str] = []
    scraped: dict[str, str] = {}
    late_errors: list[BaseException | None] = []

    async def main() -> None:
        async with InformerFactory(admin_client) as factory, anyio.create_task_group() as group:
            informer = factory.informer_for(SECRETS, namespace=namespace)
            log = structlog.get_logger("test.admin")

            def on_secret(note: Any) -> None:
                admin_seen.append(type(note).__name__)
                log.debug("admin informer notification", kind=type(note).__name__)

            informer.add_handler(on_notification=on_secret, name="admin")
            group.start_soon(manager.serve)

            def done() -> bool:
                kinds = {type(e) for e in errors}
                return (
                    all(attempts[name] >= 3 for name in markers)
                    and {ConflictError, ForbiddenError, InvalidError} <= kinds
                    and manager.recorder is not None
                    and manager.recorder.statistics().failed >= 1
                    and len(admin_seen) >= len(markers)
                )

            with anyio.fail_after(60):
                while not done():
                    await anyio.sleep(0.05)
            metrics, probes = manager.servers["metrics"], manager.servers["probes"]
            for path in ("/metrics",):
                scraped[path] = await _bridge.to_thread(_fetch, f"http://127.0.0.1:{metrics}{path}")
            for path in ("/healthz?verbose", "/readyz?verbose", "/healthz/watches", "/readyz/informers"):
                scraped[path] = await _bridge.to_thread(_fetch, f"http://127.0.0.1:{probes}{path}")
            late_errors.extend([informer.last_error, *(c.primary_informer.last_error for c in manager.controllers)])
            group.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        admin_client.close()

    logs = debug_logs.getvalue()
    # The provocations happened and were logged (else the search below would prove nothing).
    assert "ForbiddenError" in logs and "ConflictError" in logs and "InvalidError" in logs, logs[-3000:]
    assert '"exc_type":"RuntimeError"' in logs  # the panic's traceback
    assert "HTTP/1.1" in logs  # urllib3 request lines: the standard library at DEBUG too
    assert "controller_runtime_reconcile_total" in scraped["/metrics"]
    messages = [f"{e}\n{e!r}" for e in [*errors, *late_errors] if e is not None]
    haystacks = {"logs": logs, **scraped, "errors": "\n".join(messages)}

    needles: dict[str, str] = {"service account token": token, "token signature": token.rsplit(".", 1)[-1]}
    for name, value in markers.items():
        needles[f"{name} data"] = value
        needles[f"{name} data (base64)"] = base64.b64encode(value.encode()).decode()
    for i, line in enumerate(_key_material(admin_key)):
        needles[f"admin key material {i}"] = line
    leaks = [
        f"{what} in {where}" for what, needle in needles.items() for where, text in haystacks.items() if needle in text
    ]
    assert leaks == []
    # Metrics and probes name no objects at all.
    for where in scraped:
        assert not any(name in scraped[where] for name in markers), where
