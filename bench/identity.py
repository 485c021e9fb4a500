"""Benchmark: the cost of verifying one OIDC access token, per request.

    .venv/bin/python bench/identity.py [--n 3000] [--output json]

Starts the embedded OpenID provider (node-oidc-provider) in a temporary $MLCTL_HOME, gets a real
access token by client credentials, then times, in the same process:
  ours:     ``Verifier.verify`` (header checks, issuer lookup, cached JWKS key by kid, signature,
            registered claims, typ, principal type, role mapping);
  baseline: a bare ``jwt.decode`` with the already-resolved RSA key and the same audience/issuer
            (the RS256 signature check and claim parsing every verifier pays anyway).
Both run against a warm JWKS cache: what a server pays per request, not per key rotation.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._report import add_output_flag, emit, per_call  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    add_output_flag(parser)
    args = parser.parse_args()
    os.environ["MLCTL_HOME"] = tempfile.mkdtemp(prefix="mlctl-bench-identity-")
    import httpx
    import jwt

    from control_plane.emulator import idp
    from control_plane.identity import config
    from control_plane.identity.verifier import Verifier

    info = idp.up()
    try:
        cid, secret = idp.workload_credentials()
        token = httpx.post(f"{info.issuer}/token", data={"grant_type": "client_credentials", "scope": "mlctl",
                                                         "resource": idp.AUDIENCE}, auth=(cid, secret)).json()["access_token"]
        loaded = config.load()
        assert loaded is not None
        verifier = Verifier(loaded)
        key = jwt.PyJWKClient(f"{info.issuer}/jwks").get_signing_key_from_jwt(token).key
        ours = per_call(lambda: verifier.verify(token), args.n)
        base = per_call(lambda: jwt.decode(token, key, algorithms=["RS256"], audience=idp.AUDIENCE,
                                            issuer=info.issuer), args.n)
    finally:
        idp.down()
    result = {"n": args.n, "ours_us": round(ours * 1e6, 1), "baseline_us": round(base * 1e6, 1),
              "ratio": round(ours / base, 2), "ours_per_s": round(1 / ours)}
    emit(result, args.output, [
        f"token verification, {args.n} calls, warm JWKS cache",
        f"  ours (Verifier.verify)      {result['ours_us']:>8} µs/token  ({result['ours_per_s']}/s on one core)",
        f"  baseline (bare jwt.decode)  {result['baseline_us']:>8} µs/token",
        f"  ratio                       {result['ratio']:>8}x",
    ], indent=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
