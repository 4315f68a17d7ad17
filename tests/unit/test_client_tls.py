"""ApiClient over TLS to a local HTTPS server: CA verification, client certificates, SNI name."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from informers.client import ApiClient
from informers.config import ClientConfig
from informers.errors import ConnectError, TLSVerificationError
from informers.testing import certs  # the testing extra (cryptography) is part of the test install

from ._local_http import Handler, LocalServer


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    ca = certs.CertificateAuthority("test-ca")
    other_ca = certs.CertificateAuthority("other-ca")
    files = {"ca": directory / "ca.crt", "other_ca": directory / "other.crt"}
    files["ca"].write_bytes(ca.cert_pem)
    files["other_ca"].write_bytes(other_ca.cert_pem)
    files["server_crt"], files["server_key"] = ca.issue_serving("apiserver", ["127.0.0.1", "api.internal"]).write(
        directory, "server"
    )
    files["client_crt"], files["client_key"] = ca.issue_client("alice", ["devs"]).write(directory, "client")
    return files


@pytest.fixture
def server(pki: dict[str, Path]) -> Iterator[LocalServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server_crt"], pki["server_key"])
    context.load_verify_locations(pki["ca"])
    context.verify_mode = ssl.CERT_OPTIONAL  # the tests with and without a client certificate share it
    srv = LocalServer(tls=context)
    srv.json("/api", {"kind": "APIVersions", "versions": ["v1"]})
    yield srv
    srv.close()


def test_ca_and_client_certificate(server: LocalServer, pki: dict[str, Path]) -> None:
    config = ClientConfig(
        host=server.url, ca_file=str(pki["ca"]), cert_file=str(pki["client_crt"]), key_file=str(pki["client_key"])
    )
    with ApiClient(config) as client:
        assert client.get_json("/api") == {"kind": "APIVersions", "versions": ["v1"]}
    assert server.requests[0].client_cert_subject == "organizationName=devs,commonName=alice"


def test_ca_data_instead_of_a_file(server: LocalServer, pki: dict[str, Path]) -> None:
    config = ClientConfig(host=server.url, ca_data=pki["ca"].read_text())
    with ApiClient(config) as client:
        assert client.get_json("/api")["versions"] == ["v1"]
    assert server.requests[0].client_cert_subject == ""


def test_unknown_ca_fails_closed_with_a_typed_error_and_no_retries(server: LocalServer, pki: dict[str, Path]) -> None:
    config = ClientConfig(host=server.url, ca_file=str(pki["other_ca"]))
    with ApiClient(config) as client, pytest.raises(TLSVerificationError) as caught:
        client.get_json("/api")
    assert client.statistics().connection_retries == 0
    assert isinstance(caught.value, ConnectError) and not caught.value.retryable
    assert "certificate could not be verified (self-signed certificate in certificate chain)" in str(caught.value)
    assert server.requests == []  # nothing was sent over the untrusted connection


def test_the_system_cas_do_not_trust_a_private_ca(server: LocalServer) -> None:
    assert ClientConfig(host=server.url).verify_ssl is True  # verification is the default
    with ApiClient(ClientConfig(host=server.url)) as client, pytest.raises(TLSVerificationError):
        client.get_json("/api")


def test_turning_verification_off_logs_a_warning(server: LocalServer, pki: dict[str, Path]) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        ApiClient(ClientConfig(host=server.url, verify_ssl=False)).close()
        ApiClient(ClientConfig(host=server.url, ca_file=str(pki["ca"]))).close()
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["event"].startswith("TLS verification is off")
    assert warnings[0]["host"] == server.url.split("//", 1)[1]


def test_verify_ssl_off_accepts_any_certificate(server: LocalServer, pki: dict[str, Path]) -> None:
    config = ClientConfig(host=server.url, ca_file=str(pki["other_ca"]), verify_ssl=False)
    with ApiClient(config) as client, pytest.warns(Warning):  # urllib3's InsecureRequestWarning
        assert client.get_json("/api")["versions"] == ["v1"]


def test_tls_server_name_checks_the_certificate_against_that_name(server: LocalServer, pki: dict[str, Path]) -> None:
    good = ClientConfig(host=server.url, ca_file=str(pki["ca"]), tls_server_name="api.internal")
    with ApiClient(good) as client:
        assert client.get_json("/api")["versions"] == ["v1"]
    bad = ClientConfig(host=server.url, ca_file=str(pki["ca"]), tls_server_name="elsewhere.internal")
    with ApiClient(bad) as client, pytest.raises(TLSVerificationError, match="Hostname mismatch"):
        client.get_json("/api")


def test_close_unblocks_a_reader_of_a_tls_watch(server: LocalServer, pki: dict[str, Path]) -> None:
    @server.route("/api/v1/pods")
    def stream(h: Handler) -> None:
        h.start_chunked()
        h.chunk(b'{"n":1}\n')
        h.stall()

    client = ApiClient(ClientConfig(host=server.url, ca_file=str(pki["ca"]), qps=-1.0))
    watch = client.watch("/api/v1/pods", idle_timeout=60.0)
    lines: list[bytes] = []
    failures: list[BaseException] = []

    def reader() -> None:
        try:
            lines.extend(watch)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.2)  # the reader is blocked in an SSL read by now
    assert thread.is_alive()
    watch.close()
    thread.join(5)
    assert not thread.is_alive()
    assert lines == [b'{"n":1}'] and failures == []
    client.close()
