"""Certificate generation for the control-plane kit: chains, SANs, subjects, and a real TLS handshake."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from informers.testing.certs import CertificateAuthority


@pytest.fixture(scope="module")
def cas() -> tuple[CertificateAuthority, CertificateAuthority]:
    return CertificateAuthority("test-serving-ca"), CertificateAuthority("test-client-ca")


def test_serving_certificate_chains_to_its_ca_and_carries_sans(cas):
    serving_ca, _ = cas
    pair = serving_ca.issue_serving("kube-apiserver", ["127.0.0.1", "localhost"])
    cert = pair.certificate
    cert.verify_directly_issued_by(serving_ca.certificate)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert b"BEGIN EC PRIVATE KEY" in pair.key_pem  # SEC1: what kube-apiserver accepts


def test_client_certificate_names_user_and_groups(cas):
    _, client_ca = cas
    cert = client_ca.issue_client("alice", ["dev", "ops"]).certificate
    cert.verify_directly_issued_by(client_ca.certificate)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["dev", "ops"]


def test_a_certificate_from_another_ca_does_not_verify(cas):
    serving_ca, client_ca = cas
    cert = client_ca.issue_client("mallory").certificate
    with pytest.raises(Exception):
        cert.verify_directly_issued_by(serving_ca.certificate)


def test_mutual_tls_handshake_with_generated_certificates(cas, tmp_path: Path):
    serving_ca, client_ca = cas
    (tmp_path / "serving-ca.crt").write_bytes(serving_ca.cert_pem)
    (tmp_path / "client-ca.crt").write_bytes(client_ca.cert_pem)
    server_cert, server_key = serving_ca.issue_serving("srv", ["127.0.0.1"]).write(tmp_path, "server")
    client_cert, client_key = client_ca.issue_client("bob", ["team"]).write(tmp_path, "client")
    assert oct(client_key.stat().st_mode & 0o777) == "0o600"

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(server_cert, server_key)
    server_ctx.load_verify_locations(tmp_path / "client-ca.crt")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen["peer"] = tls.getpeercert()
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "serving-ca.crt"))
    client_ctx.load_cert_chain(client_cert, client_key)
    with socket.create_connection(listener.getsockname()) as raw:
        with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.recv(2) == b"ok"
    thread.join(5)
    listener.close()
    subject = dict(item[0] for item in seen["peer"]["subject"])  # type: ignore[index]
    assert subject["commonName"] == "bob"
    assert subject["organizationName"] == "team"
