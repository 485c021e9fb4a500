"""The local CA: private keys 0600, a root that can only sign end-entity certificates, a server
certificate for loopback that clients verify, idempotent, renewed when the CA changes."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading

import pytest
from cryptography import x509

from control_plane.emulator import ca
from control_plane.errors import InfraError
from control_plane.settings import local_ca_cert, local_ca_dir


def test_ensure_creates_a_private_ca_and_a_loopback_server_certificate(mlctl_home):
    made = ca.ensure()
    root = local_ca_dir()
    assert made.ca_cert == local_ca_cert() == root / "ca.pem"
    assert root.stat().st_mode & 0o777 == 0o700
    for key in ("ca.key", "server.key"):
        assert (root / key).stat().st_mode & 0o777 == 0o600
    ca_cert = x509.load_pem_x509_certificate(made.ca_cert.read_bytes())
    constraints = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    server = x509.load_pem_x509_certificate(made.server_cert.read_bytes())
    server.verify_directly_issued_by(ca_cert)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    before = {p.name: p.read_bytes() for p in root.iterdir()}
    ca.ensure()  # idempotent
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before


def test_a_new_ca_reissues_the_server_certificate(mlctl_home):
    first = ca.ensure()
    old_server = first.server_cert.read_bytes()
    (local_ca_dir() / "ca.key").unlink()
    (local_ca_dir() / "ca.pem").unlink()
    second = ca.ensure()
    assert second.server_cert.read_bytes() != old_server
    x509.load_pem_x509_certificate(second.server_cert.read_bytes()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(second.ca_cert.read_bytes())
    )


def test_a_readable_ca_key_is_refused(mlctl_home):
    ca.ensure()
    (local_ca_dir() / "ca.key").chmod(0o644)
    with pytest.raises(InfraError, match="readable by others") as err:
        ca.ensure()
    assert "chmod 600" in err.value.hint


def test_clients_need_the_ca_and_trust_only_it(mlctl_home, tmp_path):
    with pytest.raises(InfraError, match="does not exist") as err:
        ca.ssl_context()
    assert "mlctl local up" in err.value.hint
    made = ca.ensure()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(made.server_cert, made.server_key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            for _ in range(3):
                conn, _ = listener.accept()
                try:
                    with server_ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"ok")
                except (ssl.SSLError, OSError):
                    conn.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        for name in ("127.0.0.1", "localhost"):  # both names the certificate carries
            with socket.create_connection(("127.0.0.1", port)) as raw, ca.ssl_context().wrap_socket(
                raw, server_hostname=name
            ) as tls:
                assert tls.recv(2) == b"ok"
        # A client trusting the system store (not our CA) refuses the gateway's certificate.
        with socket.create_connection(("127.0.0.1", port)) as raw, pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
        t.join(timeout=5)
