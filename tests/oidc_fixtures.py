"""The real embedded OpenID provider (node-oidc-provider) for tests: started once per session in
its own $MLCTL_HOME, and a per-test ``oidc`` handle that trusts it and logs people in through the
device flow (its dev interaction pages, over HTTP) or workloads through client credentials."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _home(path: Path) -> Iterator[None]:
    old = os.environ.get("MLCTL_HOME")
    os.environ["MLCTL_HOME"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLCTL_HOME", None)
        else:
            os.environ["MLCTL_HOME"] = old


@dataclass
class Provider:
    home: Path
    issuer: str

    @property
    def identity_file(self) -> Path:
        return self.home / "identity.yaml"

    def rotate_keys(self) -> str:
        from control_plane.emulator import idp

        with _home(self.home):
            return idp.rotate_keys()

    def signing_keys(self) -> list[dict[str, object]]:
        import json

        return list(json.loads((self.home / "idp" / "jwks.json").read_text())["keys"])

    def workload_secret(self) -> tuple[str, str]:
        from control_plane.emulator import idp

        with _home(self.home):
            return idp.workload_credentials()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    if shutil.which("node") is None or not (REPO / "node_modules" / "oidc-provider").exists():
        pytest.skip("node and `npm ci` (oidc-provider) are needed for the embedded OpenID provider")
    from control_plane.emulator import idp

    home = tmp_path_factory.mktemp("oidc-home")
    home.chmod(0o700)
    with _home(home):
        info = idp.up()
    try:
        yield Provider(home, info.issuer)
    finally:
        with _home(home):
            idp.down()


class Oidc:
    """Per test: this test's $MLCTL_HOME trusts the session's provider."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.issuer = provider.issuer

    def tokens_for(self, user: str) -> dict[str, str]:
        """A device-flow login of ``user`` at the provider: the raw token response."""
        import httpx

        from control_plane.emulator import idp
        from control_plane.emulator.idp.devlogin import complete_device_login

        device = httpx.post(f"{self.issuer}/device/auth", data={
            "client_id": idp.CLI_CLIENT, "scope": "openid offline_access mlctl", "resource": idp.AUDIENCE,
        }).json()
        complete_device_login(device["verification_uri_complete"], user)
        body = httpx.post(f"{self.issuer}/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": device["device_code"],
            "client_id": idp.CLI_CLIENT,
        }).json()
        assert "access_token" in body, body.get("error")
        return dict(body)

    def login(self, user: str) -> None:
        """Act as ``user`` with a verified identity: their tokens in this test's token cache."""
        import time

        from control_plane.emulator import idp
        from control_plane.identity import tokens

        os.environ.pop("MLCTL_ACTOR", None)
        body = self.tokens_for(user)
        tokens.save(tokens.CachedTokens(
            issuer=self.issuer, client_id=idp.CLI_CLIENT, access_token=body["access_token"],
            expires_at=int(time.time()) + int(body["expires_in"]), refresh_token=body.get("refresh_token", ""),
        ))

    def login_workload(self) -> None:
        """Act as the demo workload (client credentials) with a verified identity."""
        import time

        from control_plane.emulator import idp
        from control_plane.identity import tokens

        os.environ.pop("MLCTL_ACTOR", None)
        tokens.save(tokens.CachedTokens(issuer=self.issuer, client_id=idp.WORKLOAD_CLIENT,
                                        access_token=self.workload_token(), expires_at=int(time.time()) + 300,
                                        grant="client_credentials"))

    def map_clients(self, path: Path, **clients: list[str]) -> None:
        """Like ``map_groups``, for workload client ids (``ci_pipeline=[...]``)."""
        import yaml

        doc = yaml.safe_load(self.provider.identity_file.read_text())
        for name, roles in clients.items():
            doc["issuers"][0]["clients"][name.replace("_", "-")] = roles
        path.write_text(yaml.safe_dump(doc))
        os.environ["MLCTL_IDENTITY_FILE"] = str(path)

    def map_groups(self, path: Path, **groups: list[str]) -> None:
        """Use a copy of the provider's identity file with these group -> roles mappings changed
        (``mlctl_approver=[...]`` for group ``mlctl-approver``)."""
        import yaml

        doc = yaml.safe_load(self.provider.identity_file.read_text())
        for name, roles in groups.items():
            doc["issuers"][0]["groups"][name.replace("_", "-")] = roles
        path.write_text(yaml.safe_dump(doc))
        os.environ["MLCTL_IDENTITY_FILE"] = str(path)

    def workload_token(self) -> str:
        import httpx

        from control_plane.emulator import idp

        cid, secret = self.provider.workload_secret()
        r = httpx.post(f"{self.issuer}/token", data={"grant_type": "client_credentials", "scope": "mlctl",
                                                     "resource": idp.AUDIENCE}, auth=(cid, secret))
        return str(r.json()["access_token"])


@pytest.fixture()
def oidc(oidc_provider: Provider, mlctl_home: Path, monkeypatch: pytest.MonkeyPatch) -> Oidc:
    monkeypatch.setenv("MLCTL_IDENTITY_FILE", str(oidc_provider.identity_file))
    monkeypatch.delenv("MLCTL_TOKEN_CACHE", raising=False)
    return Oidc(oidc_provider)
