"""A small fake of the Azure Resource Manager REST API, over HTTPS on a free loopback port.

It answers the calls ``control_plane.infra.azure.bootstrap`` makes, the way ARM does (same paths,
JSON shapes and status codes), and records every request, so tests run the real management SDKs
end to end. It fakes Azure, not our code. The SDKs refuse bearer tokens over plain HTTP, hence TLS
with a throwaway CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from control_plane.emulator import processes

TOKEN = "fake-arm-token"
UAE_LOCATIONS = ["UAE North", "UAE Central"]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class ArmState:
    registered: set[str]
    locations: dict[str, list[str]] = field(default_factory=dict)  # namespace -> display names
    vm_sizes: dict[str, list[str]] = field(default_factory=dict)  # size -> restriction reasons
    fail: dict[str, int] = field(default_factory=dict)  # path regex (PUT) -> status to answer
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def puts(self, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == "PUT" and re.search(pattern, r.path, re.I)]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-arm")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "arm.pem", directory / "arm.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    state: ArmState  # set on the subclass per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", "00000000-0000-0000-0000-000000000001")
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.state.requests.append(Request(self.command, url.path, parse_qs(url.query), body))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, _error("AuthenticationFailed", "missing or invalid bearer token"))
            return
        if self.command == "GET":
            self._get(url.path, parse_qs(url.query))
        elif self.command == "PUT":
            self._put(url.path, body or {})
        else:
            self._send(405, _error("MethodNotAllowed", self.command))

    do_GET = do_PUT = do_POST = do_DELETE = _handle

    def _get(self, path: str, query: dict[str, list[str]]) -> None:
        if m := re.fullmatch(r"/subscriptions/[^/]+/providers/Microsoft\.Compute/skus", path, re.I):
            wanted = (query.get("$filter") or [""])[0]
            location = re.search(r"location eq '([^']+)'", wanted)
            loc = location.group(1) if location else "uaenorth"
            value = [
                {
                    "resourceType": "virtualMachines",
                    "name": size,
                    "locations": [loc],
                    "restrictions": [
                        {"type": "Location", "values": [loc], "reasonCode": reason} for reason in reasons
                    ],
                }
                for size, reasons in self.state.vm_sizes.items()
            ]
            self._send(200, {"value": value})
            return
        if m := re.fullmatch(r"/subscriptions/([^/]+)/providers/([^/]+)", path, re.I):
            ns = m.group(2)
            self._send(
                200,
                {
                    "id": path,
                    "namespace": ns,
                    "registrationState": "Registered" if ns in self.state.registered else "NotRegistered",
                    "resourceTypes": [
                        {"resourceType": rt, "locations": self.state.locations.get(ns, UAE_LOCATIONS)}
                        for rt in (
                            "managedClusters",
                            "vaults",
                            "storageAccounts",
                            "registries",
                            "virtualNetworks",
                            "workspaces",
                            "diskEncryptionSets",
                            "userAssignedIdentities",
                        )
                    ],
                },
            )
            return
        res = self.state.resources.get(path.lower())
        if res is None:
            self._send(404, _error("ResourceNotFound", f"{path} not found"))
        else:
            self._send(200, res)

    def _put(self, path: str, body: dict[str, Any]) -> None:
        for pattern, status in self.state.fail.items():
            if re.search(pattern, path, re.I):
                self._send(
                    status, _error("AuthorizationFailed" if status == 403 else "Failed", f"refused {path}")
                )
                return
        name = path.rstrip("/").split("/")[-1]
        res = {**body, "id": path, "name": name}
        props = dict(res.get("properties") or {})
        existed = path.lower() in self.state.resources
        if re.search(r"/userAssignedIdentities/", path, re.I):
            props.update(
                principalId="11111111-1111-1111-1111-111111111111",
                clientId="22222222-2222-2222-2222-222222222222",
                tenantId="33333333-3333-3333-3333-333333333333",
            )
        elif re.search(r"/vaults/[^/]+/keys/", path, re.I):
            vault = path.split("/vaults/")[1].split("/")[0]
            props.update(
                keyUri=f"https://{vault}.vault.azure.net/keys/{name}",
                keyUriWithVersion=f"https://{vault}.vault.azure.net/keys/{name}/0123456789abcdef",
            )
        elif re.search(r"/vaults/[^/]+$", path, re.I):
            props.update(vaultUri=f"https://{name}.vault.azure.net/")
        elif re.search(r"/roleAssignments/", path, re.I):
            scope = path.split("/providers/Microsoft.Authorization/")[0]
            props.update(scope=scope)
            for other_path, other in self.state.resources.items():
                o = other.get("properties") or {}
                if (
                    "/roleassignments/" in other_path
                    and other_path != path.lower()
                    and o.get("principalId") == props.get("principalId")
                    and o.get("roleDefinitionId") == props.get("roleDefinitionId")
                    and o.get("scope") == scope
                ):
                    self._send(409, _error("RoleAssignmentExists", "The role assignment already exists."))
                    return
        if "/blobservices/" not in path.lower() and "/roleassignments/" not in path.lower():
            props.setdefault("provisioningState", "Succeeded")
        res["properties"] = props
        self.state.resources[path.lower()] = res
        if re.search(r"/storageAccounts/[^/]+$", path, re.I) and not existed:
            # Storage creates asynchronously: 202 + Location, which the SDK polls until 200.
            op = f"/subscriptions/{path.split('/')[2]}/providers/Microsoft.Storage/locations/uaenorth/asyncoperations/{name}"
            self.state.resources[op.lower()] = res
            self.send_response(202)
            self.send_header("Location", f"https://{self.headers['Host']}{op}?api-version=2025-01-01")
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        # ARM answers 200 for updates, key creation and service properties; 201 for new resources.
        always_200 = re.search(r"(/keys/[^/]+|/blobServices/default)$", path, re.I)
        self._send(200 if existed or always_200 else 201, res)


class FakeArm:
    """Start with ``with FakeArm(tmp_path, state) as arm: arm.url``."""

    def __init__(self, directory: Path, state: ArmState) -> None:
        self.state = state
        self.cert, key = _self_signed(directory)
        port = processes.free_port()
        handler = type("Handler", (_Handler,), {"state": state})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeArm:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
