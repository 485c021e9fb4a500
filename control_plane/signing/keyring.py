"""The trusted keyring: which public keys may have signed a model released to an environment.

A signature is checked against a key *we* trust for that environment, never against the public key
stored beside the signature in the registry row (whoever can edit the row could swap both). The
operator configures the keyring in ``$MLCTL_HOME/keyring.yaml`` (or ``MLCTL_KEYRING_FILE``)::

    environments:
      uae-prod-aws:
        kms: true              # the environment's KMS signing key (alias/<env>-signing), read from KMS
        keys:                  # and/or pinned public keys (an HSM key, another region's KMS key)
          - name: hsm-signing-1
            kind: pkcs11
            pem: |
              -----BEGIN PUBLIC KEY-----
              ...
      uae-local:
        dev: true              # the local development key (refused for staging and prod tiers)

Without an entry, an environment trusts its KMS key; a dev-tier environment also trusts the local
development key. A staging or prod environment never trusts the development key, even if listed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from control_plane.errors import MlctlError, PolicyViolation
from control_plane.settings import current as settings
from control_plane.settings import mlctl_home, state_dir
from control_plane.signing.keys import key_fingerprint, load_p256_public_key
from control_plane.signing.signers import DEV_KEY_FILE, KmsSigner, LocalSigner

if TYPE_CHECKING:
    from blueprints.schema import Environment

DEV_KIND = "local-dev"


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    pem: bytes
    kind: str  # "aws-kms" | "pkcs11" | "pinned" | "local-dev"
    source: str  # where the trust comes from, for the gate's reasons

    def __repr__(self) -> str:
        return f"TrustedKey({self.key_id}, {self.kind}, {self.source})"


def keyring_file() -> Path:
    return settings().keyring_file or mlctl_home() / "keyring.yaml"


def _entry(env_name: str) -> dict[str, Any] | None:
    path = keyring_file()
    if not path.exists():
        return None
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PolicyViolation(f"{path}: cannot read the keyring ({exc})",
                              hint="see docs/signing.md for the keyring's shape") from None
    envs = data.get("environments") if isinstance(data, dict) else None
    if not isinstance(envs, dict):
        raise PolicyViolation(f"{path}: expected 'environments: {{NAME: {{kms, dev, keys}}}}'",
                              hint="see docs/signing.md for the keyring's shape")
    entry = envs.get(env_name)
    if entry is not None and not isinstance(entry, dict):
        raise PolicyViolation(f"{path}: environments.{env_name}: expected a mapping (kms, dev, keys)")
    unknown = set(entry or {}) - {"kms", "dev", "keys"}
    if unknown:
        raise PolicyViolation(f"{path}: environments.{env_name}: unknown key(s) {', '.join(sorted(unknown))}",
                              hint="use kms, dev and keys")
    return entry


def dev_key_id() -> str | None:
    """The local development key's id, if this machine has one (never creates it)."""
    path = state_dir("keys") / DEV_KEY_FILE
    return LocalSigner(path).key_id if path.exists() else None


def _kms_key(env: Environment) -> TrustedKey | None:
    if str(env.cloud) != "aws":
        return None
    try:
        signer = KmsSigner(env)
    except MlctlError:
        return None  # no KMS key reachable: it cannot be trusted, the gate names what is
    return TrustedKey(signer.key_id, signer.public_key_pem(), "aws-kms", f"KMS {signer.key_ref}")


def _candidates(env: Environment) -> Iterator[TrustedKey]:
    """The trusted keys, cheapest first (KMS is a network call, asked only when needed)."""
    entry = _entry(env.name)
    production = str(env.tier) != "dev"
    dev_id = dev_key_id()
    if not production and dev_id is not None and (entry is None or bool(entry.get("dev", False))):
        dev = LocalSigner()
        yield TrustedKey(dev.key_id, dev.public_key_pem(), DEV_KIND, "the local development key")
    for i, raw in enumerate((entry or {}).get("keys") or []):
        where = f"{keyring_file()}: environments.{env.name}.keys[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("pem"), str):
            raise PolicyViolation(f"{where}: needs 'pem' (a P-256 public key)", hint="see docs/signing.md")
        pem = raw["pem"].encode()
        try:
            load_p256_public_key(pem)
        except (MlctlError, ValueError) as exc:
            raise PolicyViolation(f"{where}: not a P-256 public key ({exc})") from None
        kid = key_fingerprint(pem)
        kind = str(raw.get("kind", "pinned"))
        if production and (kind == DEV_KIND or kid == dev_id):
            continue  # a staging or prod environment never trusts the development key
        yield TrustedKey(kid, pem, kind, f"keyring key {raw.get('name', i)}")
    if entry is None or bool(entry.get("kms", False)):
        kms = _kms_key(env)
        if kms is not None:
            yield kms


def trusted_keys(env: Environment) -> list[TrustedKey]:
    """Every key that may have signed what ``env`` serves (rules in the module docstring)."""
    return list(_candidates(env))


def trusted_key_for(env: Environment, key_id: str, signer_kind: str | None) -> TrustedKey:
    """The trusted key with ``key_id`` for ``env``; PolicyViolation naming why otherwise."""
    keys: list[TrustedKey] = []
    for key in _candidates(env):
        if key.key_id == key_id:
            return key
        keys.append(key)
    tier = str(env.tier)
    if tier != "dev" and (signer_kind == DEV_KIND or key_id == dev_key_id()):
        raise PolicyViolation(
            f"signed with the development key ({key_id[:23]}…); {env.name} is {tier} tier and accepts only "
            "keys from its keyring (its KMS key by default)",
            hint=f"register the model again and sign it with the environment's key: mlctl model sign NAME:V "
                 f"--signer kms (MLCTL_BLUEPRINT pointing at {env.name}'s blueprint)",
        )
    names = ", ".join(f"{k.key_id[:23]}… ({k.source})" for k in keys) or "none"
    raise PolicyViolation(
        f"signed by key {key_id[:23]}… ({signer_kind or 'unknown kind'}), which {env.name}'s keyring does not trust "
        f"(trusted: {names})",
        hint=f"sign with a trusted key, or have the operator add the key to {keyring_file()}",
    )
