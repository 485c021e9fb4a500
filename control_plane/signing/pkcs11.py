"""A signer whose P-256 private key lives on a PKCS#11 token (an HSM, a smart card, SoftHSM2 in tests).

Settings come from the environment, so that no secret is ever on a command line:
MLCTL_PKCS11_MODULE (the vendor's .so), MLCTL_PKCS11_TOKEN (token label), MLCTL_PKCS11_KEY (key
label; private and public key objects share it) and MLCTL_PKCS11_PIN (user PIN; never logged or
echoed in an error).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from control_plane.errors import InfraError, MlctlError, NotFound, ToolMissing
from control_plane.settings import current as settings
from control_plane.signing.keys import key_fingerprint, spki_pem
from control_plane.signing.protocol import checked as _checked

ENV_VARS = ("MLCTL_PKCS11_MODULE", "MLCTL_PKCS11_TOKEN", "MLCTL_PKCS11_KEY", "MLCTL_PKCS11_PIN")
# DER of the named-curve OID 1.2.840.10045.3.1.7 (prime256v1), as tokens return it in CKA_EC_PARAMS.
_P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")


def _pkcs11() -> Any:
    try:
        import PyKCS11
    except ImportError:
        raise ToolMissing(
            "the PyKCS11 package is not installed", hint="pip install PyKCS11 (make setup installs it)"
        ) from None
    return PyKCS11


class Pkcs11Signer:
    kind = "pkcs11"

    def __init__(self, module: str, token: str, key_label: str, pin: str) -> None:
        lib_mod = _pkcs11()
        self._mod = lib_mod
        if not Path(module).exists():
            raise ToolMissing(
                f"PKCS#11 module {module} does not exist",
                hint="set MLCTL_PKCS11_MODULE to your HSM vendor's library (SoftHSM2: libsofthsm2.so)",
            )
        self.token = token
        self.key_label = key_label
        self._pin = pin
        try:
            self._lib = lib_mod.PyKCS11Lib()
            self._lib.load(module)
            self._slot = self._find_slot(token)
        except lib_mod.PyKCS11Error as exc:
            raise InfraError(
                f"PKCS#11 module {module} failed: {exc}", hint="check the module and token"
            ) from None
        # Log in once now so that a wrong PIN or a missing key fails here, not halfway through a signing.
        with self._logged_in() as session:
            self._find_key(session, lib_mod.CKO_PRIVATE_KEY)
            self._pem = self._read_public_key(session)
        self.key_id = key_fingerprint(self._pem)

    def __repr__(self) -> str:  # never show the PIN
        return f"Pkcs11Signer(token={self.token!r}, key={self.key_label!r})"

    @contextlib.contextmanager
    def _logged_in(self) -> Iterator[Any]:
        """A session logged in for one operation. PKCS#11 login state is shared by every session of the
        process, so we log out after each use: a later signer with a wrong PIN must not ride on ours."""
        m = self._mod
        session = self._lib.openSession(self._slot, m.CKF_SERIAL_SESSION)
        try:
            try:
                session.login(self._pin)
            except m.PyKCS11Error as exc:
                if getattr(exc, "value", None) != m.CKR_USER_ALREADY_LOGGED_IN:
                    # The PIN itself is never part of the message.
                    raise MlctlError(
                        f"login to PKCS#11 token '{self.token}' failed: {str(exc).strip()}",
                        hint="check MLCTL_PKCS11_PIN (the user PIN of that token)",
                    ) from None
            yield session
            with contextlib.suppress(m.PyKCS11Error):
                session.logout()
        finally:
            with contextlib.suppress(m.PyKCS11Error):
                session.closeSession()

    @classmethod
    def from_environment(cls) -> Pkcs11Signer:
        s = settings()
        given = (s.pkcs11_module, s.pkcs11_token, s.pkcs11_key, s.pkcs11_pin)
        values = {name: value or "" for name, value in zip(ENV_VARS, given, strict=True)}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise MlctlError(
                f"the pkcs11 signer needs {', '.join(missing)}",
                hint="export MLCTL_PKCS11_MODULE=/path/to/vendor-pkcs11.so MLCTL_PKCS11_TOKEN=<token label> "
                "MLCTL_PKCS11_KEY=<key label> MLCTL_PKCS11_PIN=<user pin>",
            )
        return cls(*(values[name] for name in ENV_VARS))

    def _find_slot(self, token: str) -> Any:
        labels = []
        for slot in self._lib.getSlotList(tokenPresent=True):
            label = self._lib.getTokenInfo(slot).label.strip()
            labels.append(label)
            if label == token:
                return slot
        raise NotFound(
            f"no PKCS#11 token labelled '{token}'",
            hint=f"set MLCTL_PKCS11_TOKEN to one of: {', '.join(labels) or '(no initialized tokens)'}",
        )

    def _find_key(self, session: Any, cls: Any) -> Any:
        m = self._mod
        found = session.findObjects([(m.CKA_CLASS, cls), (m.CKA_LABEL, self.key_label)])
        if not found:
            what = "private" if cls == m.CKO_PRIVATE_KEY else "public"
            raise NotFound(
                f"token '{self.token}' has no {what} key labelled '{self.key_label}'",
                hint="set MLCTL_PKCS11_KEY to the label of an EC P-256 key pair on that token",
            )
        return found[0]

    def _read_public_key(self, session: Any) -> bytes:
        from asn1crypto.core import OctetString

        m = self._mod
        public = self._find_key(session, m.CKO_PUBLIC_KEY)
        params, point = session.getAttributeValue(public, [m.CKA_EC_PARAMS, m.CKA_EC_POINT])
        if bytes(params) != _P256_PARAMS:
            raise MlctlError(
                f"PKCS#11 key '{self.key_label}' is not an EC P-256 key",
                hint="generate the signing key pair on curve prime256v1 (secp256r1)",
            )
        raw = bytes(point)
        # CKA_EC_POINT is a DER OCTET STRING wrapping the point (PKCS#11 v2.40); some tokens omit the wrap.
        if raw[:1] == b"\x04" and len(raw) != 65:
            raw = OctetString.load(raw).native
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        return spki_pem(key)

    def public_key_pem(self) -> bytes:
        return self._pem

    def sign(self, data: bytes) -> bytes:
        m = self._mod
        with self._logged_in() as session:
            private = self._find_key(session, m.CKO_PRIVATE_KEY)
            # CKM_ECDSA over a digest we compute: every token has it (CKM_ECDSA_SHA256 is optional).
            raw = bytes(session.sign(private, hashlib.sha256(data).digest(), m.Mechanism(m.CKM_ECDSA)))
        half = len(raw) // 2
        der = encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
        return _checked(self, data, der)
