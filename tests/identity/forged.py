"""Bad tokens made from the real provider's good ones: each wrong in exactly one way (the check
under test). Shared by the in-process verifier matrix and the HTTP matrix against `mlctl server`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(h))), json.loads(base64.urlsafe_b64decode(pad(p))), s


def provider_key(oidc: Any, kid: str) -> Any:
    jwk = next(k for k in oidc.provider.signing_keys() if k["kid"] == kid)
    return jwt.PyJWK(jwk).key


def resign(oidc: Any, token: str, **claims: Any) -> str:
    """The provider's token with ``claims`` changed, signed again with the provider's own key."""
    header, payload, _ = parts(token)
    payload.update(claims)
    return jwt.encode(payload, provider_key(oidc, header["kid"]), algorithm="RS256", headers=header)


def bad_tokens(oidc: Any, good: str, id_token: str) -> dict[str, tuple[str, str]]:
    """name -> (token, the verifier's short reason). The wrong-issuer case naming `localhost` for a
    provider at `127.0.0.1` is here; an issuer trusted as `localhost` is the caller's to set up."""
    header, payload, _sig = parts(good)
    now = int(time.time())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    none = f"{b64(json.dumps({'alg': 'none', 'typ': 'at+jwt'}).encode())}.{b64(json.dumps(payload).encode())}."
    public_pem = provider_key(oidc, header["kid"]).public_key().public_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64(json.dumps({**header, 'alg': 'HS256'}).encode())}.{b64(json.dumps(payload).encode())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()  # algorithm confusion
    h, _p, s = good.split(".")
    edited = dict(payload, groups=["mlctl-platform-admin", "mlctl-approver"])  # promote yourself
    return {
        "not a JWT": ("not-a-jwt", "not a JWT"),
        "another key": (jwt.encode(payload, other, algorithm="RS256", headers=header), "bad signature"),
        "another key, unknown kid": (jwt.encode(payload, other, algorithm="RS256", headers={**header, "kid": "attacker"}),
                                     "signed by a key the issuer does not publish"),
        "alg none": (none, "algorithm none not allowed"),
        "HS256 with the public key": (f"{signing_input}.{b64(mac)}", "algorithm HS256 not allowed"),
        "expired": (resign(oidc, good, exp=now - 120, iat=now - 420), "expired"),
        "not yet valid": (resign(oidc, good, nbf=now + 600), "not yet valid"),
        "wrong audience": (resign(oidc, good, aud="urn:some-other-service"), "wrong audience"),
        "wrong issuer (localhost)": (resign(oidc, good, iss=oidc.issuer.replace("127.0.0.1", "localhost")),
                                     "issuer not trusted"),
        "ID token": (id_token, "not an access token (typ is not at+jwt)"),
        "claims edited after signing": (f"{h}.{b64(json.dumps(edited).encode())}.{s}", "bad signature"),
    }
