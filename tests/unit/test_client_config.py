"""ClientConfig validation and load_config from generated kubeconfigs and a fake service account."""

from __future__ import annotations

import base64
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from informers.client import ApiClient
from informers.config import ClientConfig, load_config
from informers.errors import ConfigError

from ._local_http import LocalServer


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    srv.json("/api", {"kind": "APIVersions", "versions": ["v1"]})
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No test may see the developer's own cluster settings.
    for name in (
        "KUBECONFIG",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write_kubeconfig(
    path: Path, contexts: dict[str, tuple[str, str]], current: str, users: dict[str, str], extra_cluster: str = ""
) -> Path:
    """contexts: name -> (server URL, user name); users: name -> YAML body of the user."""
    clusters = "".join(
        f"- name: {name}\n  cluster:\n    server: {url}\n{extra_cluster}" for name, (url, _) in contexts.items()
    )
    ctxs = "".join(
        f"- name: {name}\n  context:\n    cluster: {name}\n    user: {user}\n" for name, (_, user) in contexts.items()
    )
    usrs = "".join(f"- name: {name}\n  user:\n{textwrap.indent(body, '    ')}" for name, body in users.items())
    path.write_text(
        f"apiVersion: v1\nkind: Config\nclusters:\n{clusters}contexts:\n{ctxs}"
        f"current-context: {current}\nusers:\n{usrs}"
    )
    return path


def test_defaults_match_client_go() -> None:
    config = ClientConfig(host="https://127.0.0.1:6443")
    assert (config.qps, config.burst) == (5.0, 10)
    assert (config.connect_timeout, config.read_timeout) == (10.0, 60.0)
    assert config.max_retries == 10
    assert config.throttled
    assert config.authorization_header() is None


@pytest.mark.parametrize(
    "options",
    [
        {"qps": 0.0},
        {"burst": 0},
        {"read_timeout": 0.0},
        {"connect_timeout": -1.0},
        {"max_retries": -1},
        {"pool_maxsize": 0},
        {"cert_file": "/c.pem"},
        {"host": "127.0.0.1:6443"},
    ],
)
def test_invalid_options_raise_config_error(options: dict[str, object]) -> None:
    values: dict[str, object] = {"host": "https://127.0.0.1:6443", **options}
    with pytest.raises(ConfigError):
        ClientConfig(**values)  # type: ignore[arg-type]


def test_negative_qps_disables_throttling_and_token_is_hidden() -> None:
    config = ClientConfig(host="https://h:6443", qps=-1.0, token="s3cret")
    assert not config.throttled
    assert "s3cret" not in repr(config)
    assert config.authorization_header() == "Bearer s3cret"


def test_load_config_from_kubeconfig_with_token_talks_to_the_server(server: LocalServer, tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "kubeconfig", {"local": (server.url, "alice")}, "local", {"alice": "token: alice-token\n"}
    )
    config = load_config(path, qps=20.0, burst=40)
    assert config.host == server.url
    assert (config.qps, config.burst) == (20.0, 40)
    with ApiClient(config) as client:
        assert client.get_json("/api") == {"kind": "APIVersions", "versions": ["v1"]}
    assert server.requests[0].headers["Authorization"] == "Bearer alice-token"


def test_context_selects_cluster_and_user(server: LocalServer, tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "kubeconfig",
        {"far": ("https://far.invalid:6443", "alice"), "near": (server.url, "bob")},
        "far",
        {"alice": "token: alice-token\n", "bob": "token: bob-token\n"},
    )
    assert load_config(path).host == "https://far.invalid:6443"
    config = load_config(path, context="near")
    with ApiClient(config) as client:
        client.get_json("/api")
    assert server.requests[0].headers["Authorization"] == "Bearer bob-token"


def test_unknown_context_names_it(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kubeconfig", {"a": ("https://h:1", "u")}, "a", {"u": "token: t\n"})
    with pytest.raises(ConfigError, match="'missing'"):
        load_config(path, context="missing")


def test_missing_kubeconfig_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope"):
        load_config(tmp_path / "nope")


def test_unknown_option_raises_config_error(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kubeconfig", {"a": ("https://h:1", "u")}, "a", {"u": "token: t\n"})
    with pytest.raises(ConfigError, match="invalid client option"):
        load_config(path, qpss=3)


def test_kubeconfig_env_wins_over_in_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kubeconfig", {"a": ("https://env-host:6443", "u")}, "a", {"u": "token: t\n"})
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert load_config().host == "https://env-host:6443"


def test_default_kubeconfig_location_is_used(tmp_path: Path) -> None:
    kube_dir = tmp_path / "home" / ".kube"
    kube_dir.mkdir(parents=True)
    write_kubeconfig(kube_dir / "config", {"a": ("https://home-host:6443", "u")}, "a", {"u": "token: t\n"})
    assert load_config().host == "https://home-host:6443"


def test_certificate_data_becomes_files(tmp_path: Path) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    data = base64.b64encode(pem).decode()
    path = write_kubeconfig(
        tmp_path / "kubeconfig",
        {"a": ("https://h:6443", "u")},
        "a",
        {"u": f"client-certificate-data: {data}\nclient-key-data: {data}\n"},
        extra_cluster=f"    certificate-authority-data: {data}\n    tls-server-name: api.internal\n",
    )
    config = load_config(path)
    assert config.ca_file and Path(config.ca_file).read_bytes() == pem
    assert config.cert_file and Path(config.cert_file).read_bytes() == pem
    assert config.key_file and Path(config.key_file).read_bytes() == pem
    assert config.tls_server_name == "api.internal"
    assert config.verify_ssl
    assert config.authorization_header() is None


def test_exec_plugin_token_is_refreshed_when_expired(server: LocalServer, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    counter.write_text("0")
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        textwrap.dedent(f"""
        import json, pathlib
        counter = pathlib.Path({str(counter)!r})
        n = int(counter.read_text()) + 1
        counter.write_text(str(n))
        print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                          "status": {{"token": f"exec-token-{{n}}",
                                     "expirationTimestamp": "2000-01-01T00:00:00Z"}}}}))
    """)
    )
    user = (
        f"exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: {sys.executable}\n"
        f"  args: [{str(plugin)!r}]\n  interactiveMode: Never\n"
    )
    path = write_kubeconfig(tmp_path / "kubeconfig", {"local": (server.url, "exec-user")}, "local", {"exec-user": user})
    config = load_config(path)
    with ApiClient(config) as client:
        client.get_json("/api")
        client.get_json("/api")
    tokens = [r.headers["Authorization"] for r in server.requests]
    # The credential was already expired, so every request ran the plugin again.
    assert tokens[0].startswith("Bearer exec-token-")
    assert tokens[0] != tokens[1]


def test_in_cluster_service_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import kubernetes.config.incluster_config as incluster

    token_file = tmp_path / "token"
    token_file.write_text("sa-token")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster, "SERVICE_TOKEN_FILENAME", str(token_file))
    monkeypatch.setattr(incluster, "SERVICE_CERT_FILENAME", str(ca_file))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    config = load_config()
    assert config.host == "https://10.96.0.1:443"
    assert config.ca_file == str(ca_file)
    assert config.authorization_header() == "bearer sa-token"


def test_in_cluster_failure_without_kubeconfig_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import kubernetes.config.incluster_config as incluster

    monkeypatch.setattr(incluster, "SERVICE_TOKEN_FILENAME", "/nonexistent/token")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(ConfigError, match="in-cluster configuration failed"):
        load_config()
