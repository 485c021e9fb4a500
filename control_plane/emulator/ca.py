"""The local certificate authority: TLS for everything mlctl serves on this machine.

``mlctl local up`` creates it once under ``$MLCTL_HOME/ca`` (see ``settings.local_ca_dir``):

- ``ca.key`` / ``ca.pem``: an ECDSA P-256 root, valid 10 years, path length 0 (it can sign only
  end-entity certificates), never leaves the machine; the key is 0600.
- ``server.key`` / ``server.pem``: a server certificate for ``127.0.0.1``, ``::1`` and
  ``localhost`` signed by it, valid 1 year and renewed automatically when less than 30 days
  remain (or when the CA changed); the gateway listener serves it, and the API server will.

Clients trust exactly this root (``ssl_context()``, ``httpx_verify()``), never the system store
and never ``verify=False``: a process that is not ours cannot impersonate the gateway even on
loopback. A private key is written with ``O_EXCL`` at mode 0600 before a byte of it exists on
disk, so it is never readable by anyone else, not even for an instant.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from control_plane.errors import InfraError
from control_plane.settings import local_ca_dir

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
SERVER_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class LocalCA:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _paths(root: Path) -> tuple[Path, Path, Path, Path]:
    return root / "ca.key", root / "ca.pem", root / "server.key", root / "server.pem"


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)


def _new_ca(key_path: Path, cert_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mlctl local"),
            x509.NameAttribute(NameOID.COMMON_NAME, "mlctl local CA"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _new_server_cert(ca_key_path: Path, ca_cert_path: Path, key_path: Path, cert_path: Path) -> None:
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise InfraError(f"{ca_key_path} is not an EC key", hint=f"remove {ca_key_path.parent} and run `mlctl local up`")
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _server_cert_current(server_cert: Path, ca_cert: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(server_cert.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    except (FileNotFoundError, ValueError):
        return False
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):  # issued by an earlier CA
        return False
    return cert.not_valid_after_utc - _now() > RENEW_BEFORE


def ensure() -> LocalCA:
    """Create the CA and the server certificate if missing (idempotent; renews when due)."""
    root = local_ca_dir()
    root.chmod(0o700)
    ca_key, ca_cert, srv_key, srv_cert = _paths(root)
    if not (ca_key.exists() and ca_cert.exists()):
        _new_ca(ca_key, ca_cert)
    mode = ca_key.stat().st_mode & 0o777
    if mode & 0o077:
        raise InfraError(
            f"the local CA key {ca_key} is readable by others (mode {mode:o})",
            hint=f"chmod 600 {ca_key}, or remove {root} to start a new CA",
        )
    if not (srv_key.exists() and _server_cert_current(srv_cert, ca_cert)):
        _new_server_cert(ca_key, ca_cert, srv_key, srv_cert)
    return LocalCA(ca_cert=ca_cert, server_cert=srv_cert, server_key=srv_key)


def ca_cert_path() -> Path:
    """The root certificate clients trust (it must exist: ``mlctl local up`` creates it)."""
    path = _paths(local_ca_dir())[1]
    if not path.exists():
        raise InfraError(
            f"the local CA certificate {path} does not exist",
            hint="run `mlctl local up` (it creates the local CA and starts the gateway)",
        )
    return path


def ssl_context() -> ssl.SSLContext:
    """A client context that trusts only the local CA, with hostname checks on."""
    ctx = ssl.create_default_context(cafile=str(ca_cert_path()))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def httpx_verify(url: str) -> ssl.SSLContext | bool:
    """``verify=`` for an httpx client calling ``url``: the local CA for https, nothing for http
    (a model server's own loopback port, which speaks plain HTTP)."""
    return ssl_context() if url.startswith("https://") else True


def fingerprint() -> str | None:
    """SHA-256 fingerprint of the local CA (for `mlctl local status`), None if there is none."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        cert = x509.load_pem_x509_certificate(_paths(local_ca_dir())[1].read_bytes())
        return cert.fingerprint(hashes.SHA256()).hex(":")
    return None
