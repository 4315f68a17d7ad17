"""A real etcd + kube-apiserver on loopback, for tests and demos (the envtest pattern, in Python).

``ControlPlane`` generates its certificates (serving CA, client CA, service-account signing key),
starts etcd and kube-apiserver (RBAC on) on free loopback ports, and hands out kubeconfigs: an admin
one (client certificate in ``system:masters``), ones for non-admin users, and ServiceAccount tokens.
The apiserver can be stopped, started and restarted alone with etcd's data kept. Invariant: once
``start()`` has been called, ``stop()`` (or leaving the ``with`` block, even after a failed start)
ends both processes and removes the temporary directory.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import urllib3

from ..errors import InformerdError
from .assets import Assets, find_assets
from .certs import CertificateAuthority, KeyPair, new_private_key, private_key_pem, public_key_pem
from .processes import ManagedProcess

__all__ = ["ControlPlane", "ControlPlaneError", "free_port"]

_SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


class ControlPlaneError(InformerdError, RuntimeError):
    """The control plane failed to start, or an admin request to it failed."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ControlPlane:
    """etcd + kube-apiserver for tests. Use as a context manager or call ``start``/``stop``."""

    def __init__(
        self,
        *,
        assets: Assets | None = None,
        apiserver_args: Sequence[str] = (),
        etcd_args: Sequence[str] = (),
        start_timeout: float = 120.0,
        workdir: Path | None = None,
    ) -> None:
        """``apiserver_args``/``etcd_args`` are appended (and so override) the kit's own flags."""
        self._assets = assets
        self._apiserver_extra = list(apiserver_args)
        self._etcd_extra = list(etcd_args)
        self.start_timeout = start_timeout
        self._own_workdir = workdir is None
        self._workdir_arg = workdir
        self.workdir: Path | None = None
        self.etcd: ManagedProcess | None = None
        self.apiserver: ManagedProcess | None = None
        self.etcd_port = 0
        self.apiserver_port = 0
        self._http: urllib3.PoolManager | None = None
        self._admin: KeyPair | None = None
        self._client_ca: CertificateAuthority | None = None

    # -- addresses and files -------------------------------------------------------------------
    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def server(self) -> str:
        """The apiserver URL, ``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the apiserver's serving certificate."""
        return self._dir / "certs" / "serving-ca.crt"

    @property
    def admin_kubeconfig(self) -> Path:
        return self._dir / "kubeconfigs" / "admin.kubeconfig"

    @property
    def _dir(self) -> Path:
        if self.workdir is None:
            raise ControlPlaneError("the control plane has not been started")
        return self.workdir

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> ControlPlane:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        assets = self._assets or find_assets()
        self._assets = assets
        if self.workdir is None:
            self.workdir = self._workdir_arg or Path(tempfile.mkdtemp(prefix="informerd-cp-"))
        for sub in ("certs", "etcd-data", "kubeconfigs", "logs"):
            (self._dir / sub).mkdir(parents=True, exist_ok=True)
        self.etcd_port, peer_port, self.apiserver_port = free_port(), free_port(), free_port()
        self._write_certificates()  # after the ports: the admin kubeconfig names the server
        self.etcd = ManagedProcess(
            "etcd",
            [
                str(assets.etcd),
                "--name=informerd-test",
                f"--data-dir={self._dir / 'etcd-data'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=informerd-test=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
                *self._etcd_extra,
            ],
            self._dir / "logs" / "etcd.log",
        )
        self.etcd.start()
        self._wait_etcd()
        self.start_apiserver()
        return self

    def _write_certificates(self) -> None:
        certs = self._dir / "certs"
        serving_ca = CertificateAuthority("informerd-serving-ca")
        self._client_ca = CertificateAuthority("informerd-client-ca")
        (certs / "serving-ca.crt").write_bytes(serving_ca.cert_pem)
        (certs / "client-ca.crt").write_bytes(self._client_ca.cert_pem)
        hosts = [
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "10.0.0.1",
        ]
        serving_ca.issue_serving("kube-apiserver", hosts).write(certs, "apiserver")
        sa_key = new_private_key()
        (certs / "sa.key").write_bytes(private_key_pem(sa_key))
        (certs / "sa.pub").write_bytes(public_key_pem(sa_key))
        self._admin = self._client_ca.issue_client("admin", ["system:masters"])
        self._admin.write(certs, "admin")
        self._write_kubeconfig(
            self.admin_kubeconfig,
            "admin",
            {
                "client-certificate": str(certs / "admin.crt"),
                "client-key": str(certs / "admin.key"),
            },
        )
        self._http = urllib3.PoolManager(
            cert_reqs=ssl.CERT_REQUIRED,
            ca_certs=str(certs / "serving-ca.crt"),
            cert_file=str(certs / "admin.crt"),
            key_file=str(certs / "admin.key"),
            maxsize=4,
        )

    def _apiserver_argv(self) -> list[str]:
        assert self._assets is not None
        certs = self._dir / "certs"
        return [
            str(self._assets.kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            f"--secure-port={self.apiserver_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",  # without a default route it cannot pick one
            f"--cert-dir={certs}",
            f"--tls-cert-file={certs / 'apiserver.crt'}",
            f"--tls-private-key-file={certs / 'apiserver.key'}",
            f"--client-ca-file={certs / 'client-ca.crt'}",
            f"--service-account-issuer={_SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={certs / 'sa.pub'}",
            f"--service-account-signing-key-file={certs / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=RBAC",
            *self._apiserver_extra,
        ]

    def start_apiserver(self) -> None:
        """Start (or start again) kube-apiserver on the same port; etcd's data is kept."""
        self.apiserver = ManagedProcess(
            "kube-apiserver", self._apiserver_argv(), self._dir / "logs" / "kube-apiserver.log"
        )
        self.apiserver.start()
        self._wait_apiserver()

    def stop_apiserver(self, *, kill: bool = False) -> None:
        """Stop kube-apiserver alone (``kill=True``: SIGKILL, like a crash)."""
        if self.apiserver is not None:
            self.apiserver.kill() if kill else self.apiserver.stop()

    def restart_apiserver(self, *, kill: bool = False) -> None:
        self.stop_apiserver(kill=kill)
        self.start_apiserver()

    def stop(self) -> None:
        # Everything is thrown away: a short grace period, then SIGKILL (a graceful apiserver
        # shutdown waits for its open watches to drain, which can take many seconds).
        for proc in (self.apiserver, self.etcd):
            if proc is not None:
                proc.stop(timeout=3.0)
        if self._http is not None:
            self._http.clear()
        if self.workdir is not None and self._own_workdir and not os.environ.get("INFORMERD_KEEP_CP"):
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- readiness ------------------------------------------------------------------------------
    def _wait_etcd(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        http = urllib3.PoolManager()
        while True:
            assert self.etcd is not None
            self.etcd.check_alive()
            try:
                resp = http.request("GET", f"{self.etcd_url}/health", timeout=2.0, retries=False)
                if resp.status == 200 and orjson.loads(resp.data).get("health") == "true":
                    return
            except (urllib3.exceptions.HTTPError, orjson.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"etcd not healthy after {self.start_timeout:.0f} s:\n{self.etcd.log_tail()}")
            time.sleep(0.1)

    def _wait_apiserver(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = "no answer"
        for path in ("/readyz", "/api/v1/namespaces/default"):
            while True:
                assert self.apiserver is not None
                self.apiserver.check_alive()
                try:
                    status, body = self.request("GET", path, timeout=5.0)
                    if status == 200:
                        break
                    last = f"{path}: HTTP {status} {body[:300]!r}"
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    last = f"{path}: {exc}"
                if time.monotonic() > deadline:
                    raise ControlPlaneError(
                        f"kube-apiserver not ready after {self.start_timeout:.0f} s ({last});"
                        f" log tail:\n{self.apiserver.log_tail()}"
                    )
                time.sleep(0.2)

    # -- admin access ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float = 30.0,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        """One admin request (client certificate in system:masters); returns (status, body)."""
        if self._http is None:
            raise ControlPlaneError("the control plane has not been started")
        data = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        resp = self._http.request(
            method,
            self.server + path,
            body=data,
            headers=headers,
            timeout=urllib3.Timeout(connect=5.0, read=timeout),
            retries=False,
        )
        return resp.status, resp.data

    def request_json(self, method: str, path: str, body: Any = None, *, expect: Sequence[int] = (200, 201)) -> Any:
        """An admin request whose status must be in ``expect``; returns the decoded body."""
        status, data = self.request(method, path, body)
        if status not in expect:
            raise ControlPlaneError(f"{method} {path}: HTTP {status}: {data[:500]!r}")
        return orjson.loads(data) if data else None

    # -- identities -----------------------------------------------------------------------------
    def _write_kubeconfig(
        self, path: Path, user: str, credentials: Mapping[str, str], server: str | None = None
    ) -> Path:
        # JSON is valid YAML, so every kubeconfig reader accepts it.
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "informerd-test",
                    "cluster": {
                        "server": server or self.server,
                        "certificate-authority": str(self._dir / "certs" / "serving-ca.crt"),
                    },
                }
            ],
            "users": [{"name": user, "user": dict(credentials)}],
            "contexts": [{"name": user, "context": {"cluster": "informerd-test", "user": user}}],
            "current-context": user,
        }
        path.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))
        path.chmod(0o600)
        return path

    def kubeconfig(self, *, server: str | None = None) -> Path:
        """The admin kubeconfig, optionally pointing at another address (e.g. a fault proxy)."""
        if server is None:
            return self.admin_kubeconfig
        name = f"admin-{abs(hash(server)) % 10**8}.kubeconfig"
        certs = self._dir / "certs"
        return self._write_kubeconfig(
            self._dir / "kubeconfigs" / name,
            "admin",
            {
                "client-certificate": str(certs / "admin.crt"),
                "client-key": str(certs / "admin.key"),
            },
            server,
        )

    def user_kubeconfig(self, user: str, groups: Sequence[str] = (), *, server: str | None = None) -> Path:
        """A kubeconfig for a non-admin user (client certificate with CN=user, O=groups)."""
        assert self._client_ca is not None
        stem = f"user-{user}".replace(":", "_").replace("/", "_")
        cert, key = self._client_ca.issue_client(user, groups).write(self._dir / "certs", stem)
        return self._write_kubeconfig(
            self._dir / "kubeconfigs" / f"{stem}-{abs(hash(server)) % 10**8}.kubeconfig",
            user,
            {"client-certificate": str(cert), "client-key": str(key)},
            server,
        )

    def service_account_token(self, namespace: str, name: str, *, expiration_seconds: int = 3600) -> str:
        """A token for a ServiceAccount (created if missing) from the TokenRequest API."""
        status, _ = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        )
        if status not in (201, 409):
            raise ControlPlaneError(f"creating ServiceAccount {namespace}/{name}: HTTP {status}")
        token = self.request_json(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
        )
        return str(token["status"]["token"])

    def service_account_kubeconfig(self, namespace: str, name: str, *, server: str | None = None) -> Path:
        token = self.service_account_token(namespace, name)
        return self._write_kubeconfig(
            self._dir / "kubeconfigs" / f"sa-{namespace}-{name}.kubeconfig",
            f"system:serviceaccount:{namespace}:{name}",
            {"token": token},
            server,
        )

    # -- etcd -----------------------------------------------------------------------------------
    def _etcd_post(self, path: str, body: Mapping[str, Any]) -> Any:
        resp = urllib3.request("POST", self.etcd_url + path, body=orjson.dumps(body), timeout=10.0, retries=False)
        if resp.status != 200:
            raise ControlPlaneError(f"etcd {path}: HTTP {resp.status}: {resp.data[:300]!r}")
        return orjson.loads(resp.data)

    def etcd_revision(self) -> int:
        """etcd's current revision (what kube-apiserver reports as resourceVersion)."""
        answer = self._etcd_post("/v3/kv/range", {"key": base64.b64encode(b"/").decode(), "limit": 1})
        return int(answer["header"]["revision"])

    def compact_etcd(self, revision: int | None = None) -> int:
        """Compact etcd up to ``revision`` (default: the current one); returns the revision used.

        Watches and lists from older resourceVersions then fail with 410 Gone.
        """
        revision = revision or self.etcd_revision()
        self._etcd_post("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision
