"""The PKCS#11 signer against a real SoftHSM2 token (skipped where SoftHSM2 or PyKCS11 is absent)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.errors import MlctlError, NotFound
from control_plane.signing import get_signer, sign_model, verify_model, verify_signature
from tests.signing.conftest import softhsm_module

MODULE = softhsm_module()
PyKCS11 = pytest.importorskip("PyKCS11", reason="PyKCS11 is not installed (pip install PyKCS11)")
pytestmark = pytest.mark.skipif(
    MODULE is None or shutil.which("softhsm2-util") is None,
    reason="SoftHSM2 is not installed (apt-get install softhsm2)",
)

TOKEN, PIN, SO_PIN, KEY = "mlctl-test", "246810", "13579246", "model-signing"


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh SoftHSM2 token with an EC P-256 key pair, generated on the token (never exported).
    The token directory is private to the test session (SOFTHSM2_CONF points at it)."""
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
        timeout=60,
    )
    lib = PyKCS11.PyKCS11Lib()
    lib.load(MODULE)
    slot = next(s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == TOKEN)
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    session.login(PIN)
    p256 = bytes.fromhex("06082a8648ce3d030107")
    common = [(PyKCS11.CKA_TOKEN, PyKCS11.CK_TRUE), (PyKCS11.CKA_LABEL, KEY), (PyKCS11.CKA_ID, (0x42,))]
    session.generateKeyPair(
        [
            *common,
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
            (PyKCS11.CKA_VERIFY, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_EC_PARAMS, p256),
        ],
        [
            *common,
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
            (PyKCS11.CKA_SIGN, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_PRIVATE, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_SENSITIVE, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_EXTRACTABLE, PyKCS11.CK_FALSE),
        ],
        mecha=PyKCS11.MechanismECGENERATEKEYPAIR,
    )
    session.logout()
    session.closeSession()
    yield {
        "MLCTL_PKCS11_MODULE": str(MODULE),
        "MLCTL_PKCS11_TOKEN": TOKEN,
        "MLCTL_PKCS11_KEY": KEY,
        "MLCTL_PKCS11_PIN": PIN,
    }
    if old is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = old


@pytest.fixture()
def pkcs11_env(softhsm_token: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in softhsm_token.items():
        monkeypatch.setenv(name, value)
    return softhsm_token


def test_pkcs11_signer_signs_models_that_verify(
    pkcs11_env: dict[str, str], model_dir: Path, tmp_path: Path
) -> None:
    from tests.signing.test_signers import upstream_verify

    signer = get_signer("pkcs11")
    assert signer.kind == "pkcs11" and signer.key_id.startswith("sha256:")
    assert verify_signature(signer.public_key_pem(), b"data", signer.sign(b"data"))
    bundle = sign_model(model_dir, signer)
    assert verify_model(model_dir, bundle, signer.public_key_pem()).key_id == signer.key_id
    upstream_verify(model_dir, bundle, signer.public_key_pem(), tmp_path)


def test_pkcs11_wrong_pin_never_echoes_it(
    pkcs11_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCTL_PKCS11_PIN", "99999999")
    with pytest.raises(MlctlError, match="login to PKCS#11 token 'mlctl-test' failed") as err:
        get_signer("pkcs11")
    assert "99999999" not in str(err.value) and "MLCTL_PKCS11_PIN" in (err.value.hint or "")


def test_pkcs11_unknown_token_and_key(pkcs11_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_PKCS11_KEY", "no-such-key")
    with pytest.raises(NotFound, match="no private key labelled 'no-such-key'"):
        get_signer("pkcs11")
    monkeypatch.setenv("MLCTL_PKCS11_TOKEN", "no-such-token")
    with pytest.raises(NotFound, match="no PKCS#11 token labelled 'no-such-token'") as err:
        get_signer("pkcs11")
    assert TOKEN in (err.value.hint or "")


def test_pkcs11_settings_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLCTL_PKCS11_MODULE", "MLCTL_PKCS11_TOKEN", "MLCTL_PKCS11_KEY", "MLCTL_PKCS11_PIN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MlctlError, match="needs MLCTL_PKCS11_MODULE, MLCTL_PKCS11_TOKEN"):
        get_signer("pkcs11")
