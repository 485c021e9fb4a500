"""The CLI's side of ``mlctl server``: with ``MLCTL_SERVER`` (or ``--server``) set, commands call
the API instead of the local store, with the bearer token of ``mlctl login``.

The server's certificate is checked against ``MLCTL_SERVER_CA`` (a PEM bundle) or, without it, the
local CA (``mlctl local up``) for a loopback server and the system trust store otherwise. An API
error comes back as the same message, fix and exit code the local command would give.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx

from control_plane.drivers import gateway_addresses
from control_plane.errors import (
    EXIT_IN_PROGRESS,
    DataTestFailed,
    EvaluationFailed,
    InfraError,
    MlctlError,
    NotFound,
    PipelineFailed,
    PolicyViolation,
    TrainingFailed,
    UsageError,
    VerificationFailed,
)
from control_plane.pii import Finding
from control_plane.policy import findings as gate
from control_plane.settings import DEFAULT_BLUEPRINT
from control_plane.settings import current as settings

# Every command module imports this one (``remote()``), so it loads only what the client itself and
# the small modules above need: each verb imports the views and records it builds from the API's
# JSON when it runs (``# lazy:``), and `mlctl <group> --help` does not pay for the registry, the
# data stack or the database layer (tests/test_cli_startup.py, bench/cli_startup.py).
if TYPE_CHECKING:
    from control_plane.emulator import idp
    from control_plane.pipelines.service import RunView, StatusCallback
    from control_plane.registry.view import ModelVersion
    from control_plane.services import audit as audit_service
    from control_plane.services import models, monitoring, operations
    from control_plane.services import pii as pii_service
    from control_plane.services import pipelines as pipeline_service

__all__ = ["ApiClient", "Remote", "RemoteError", "RemoteInfra", "RemoteLocal", "RemoteMonitor", "RemotePipelines",
           "RemoteRun", "followed", "remote"]


class RemoteError(MlctlError):
    """An error the server answered with: its message, fix and exit code, as the CLI prints them."""

    def __init__(self, message: str, *, hint: str | None, exit_code: int, kind: str, status: int) -> None:
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.kind = kind
        self.status = status

    @classmethod
    def from_body(cls, err: dict[str, Any], status: int) -> RemoteError:
        """From the API's ``{"error": {message, hint, exit_code, kind}}`` (server/errors.py)."""
        return cls(str(err.get("message")), hint=err.get("hint"), exit_code=int(err.get("exit_code", 1)),
                   kind=str(err.get("kind", "")), status=status)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (names other than localhost are not resolved)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


T = TypeVar("T")


def polled(fetch: Callable[[], T], finished: Callable[[T], bool], interval: float) -> Iterator[T]:
    """What ``fetch`` answers, once every ``interval`` seconds, until ``finished`` says so (that
    answer is the last one): how the client follows work the server runs in the background."""
    while True:
        value = fetch()
        yield value
        if finished(value):
            return
        time.sleep(interval)


class ApiClient:
    def __init__(self, base_url: str, *, ca_file: Path | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise UsageError(f"MLCTL_SERVER={base_url!r} is not an http(s) URL", hint="e.g. https://127.0.0.1:8443")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise PolicyViolation(f"{base_url} is plain HTTP to another host: the token would travel in clear",
                                  hint="use https:// (mlctl server serves TLS by default)")
        self.base_url = base_url.rstrip("/")
        # One connection pool per command: a release or pipeline followed once a second reuses the
        # TLS session instead of a handshake per look (connections open lazily, close at exit).
        self._http = httpx.Client(base_url=self.base_url, verify=self._trust(parts.scheme, parts.hostname, ca_file),
                                  timeout=timeout)

    @staticmethod
    def _trust(scheme: str, host: str, ca_file: Path | None) -> ssl.SSLContext | bool:
        if scheme == "http":
            return True
        if ca_file is not None:
            if not ca_file.is_file():
                raise UsageError(f"MLCTL_SERVER_CA {ca_file}: no such file", hint="give the server CA's PEM bundle")
            return ssl.create_default_context(cafile=str(ca_file))
        if is_loopback(host):
            from control_plane.emulator import ca  # lazy: cryptography; start-up

            return ca.ssl_context()
        return ssl.create_default_context()

    @staticmethod
    def _token() -> str:
        from control_plane import identity  # lazy: jwt, cryptography; start-up
        from control_plane.identity import login, tokens  # lazy: jwt, cryptography; start-up

        cached = tokens.load()
        if cached is None:
            raise PolicyViolation("MLCTL_SERVER is set and you are not logged in",
                                  hint="mlctl login (or mlctl login --client-credentials for a workload)")
        if cached.expiring:
            verifier = identity.verifier()
            issuer = verifier.config.issuer(cached.issuer) if verifier is not None else None
            if verifier is not None and issuer is not None:
                fresh = login.refresh(verifier.config, issuer, cached)
                if fresh is not None:
                    tokens.save(fresh)
                    return fresh.access_token
        return cached.access_token

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             timeout: float | None = None) -> Any:
        return self.request(method, path, json=json, params=params, timeout=timeout).json()

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                content: Any = None, headers: dict[str, str] | None = None,
                into: Path | None = None, timeout: float | None = None) -> httpx.Response:
        """One authenticated request; an API error raises RemoteError. ``content``: a body to send
        (bytes or a file, streamed); ``into``: write the response body to this file as it arrives;
        ``timeout``: seconds for a call the server runs in the request for long (``local up``)."""
        sent = {"Authorization": f"Bearer {self._token()}", **(headers or {})}
        wait: Any = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        try:
            with self._http.stream(method, path, json=json, params=params, content=content, headers=sent,
                                   timeout=wait) as r:
                if r.status_code < 400 and into is not None:
                    with into.open("wb") as fh:
                        for chunk in r.iter_bytes():
                            fh.write(chunk)
                else:
                    r.read()
        except httpx.HTTPError as exc:
            raise InfraError(f"the mlctl server at {self.base_url} does not answer: {type(exc).__name__}",
                             hint="is `mlctl server` running? check MLCTL_SERVER") from None
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
            except (ValueError, KeyError, TypeError):
                raise InfraError(f"the mlctl server answered {r.status_code} without an error body",
                                 hint=f"check the server's log ({self.base_url})") from None
            raise RemoteError.from_body(err, r.status_code)
        return r


class Remote:
    """The verbs the CLI sends to ``mlctl server``, returning the same views as the local service
    functions (built from the API's JSON, which has the same keys), so a command renders and exits
    the same way whether it ran here or on the server."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.models = RemoteModels(api)
        self.audit = RemoteAudit(api)
        self.monitor = RemoteMonitor(api)
        self.pipelines = RemotePipelines(api)
        self.local = RemoteLocal(api)
        self.infra = RemoteInfra(api)

    def whoami(self) -> Any:
        from control_plane.identity import Actor, VerifiedIdentity  # lazy: jwt, cryptography; start-up
        from control_plane.services.operations import IdentityView  # lazy: start-up (module top)

        d = self.api.call("GET", "/v1/whoami")
        verified = None
        if d.get("source") == "verified":
            verified = VerifiedIdentity(issuer=d["issuer"], subject=d["subject"], kind=d["kind"], client_id=d["client"],
                                        roles=list(d["roles"]), groups=list(d.get("groups", [])),
                                        name=d.get("name", d["subject"]),
                                        expires_at=int(time.time()) + int(d.get("expires_in", 0)))
        return IdentityView(Actor(d["actor"], d["source"], list(d["roles"]), verified))

    def approve(self, name: str, version: str, env: str) -> Any:
        from control_plane.approvals import Decision  # lazy: start-up (module top)
        from control_plane.services.approvals import ApprovalView  # lazy: start-up (module top)

        d = self.api.call("POST", f"/v1/models/{name}/{version}/approvals", json={"env": env})
        return ApprovalView(Decision(**d))

    def release_status(self, service: str) -> Any:
        from control_plane.services.release_views import (  # lazy: start-up (module top)
            ReleaseView,
            status_exit_code,
        )

        d = self.api.call("GET", f"/v1/releases/{service}")
        return ReleaseView(d, d["state"], status_exit_code(d))

    def release_list(self, **filters: Any) -> Any:
        from control_plane.services.release_views import ReleaseListView  # lazy: start-up (module top)

        params = {k: v for k, v in filters.items() if v is not None}
        return ReleaseListView("releases", list(self.api.call("GET", "/v1/releases", params=params)))

    def events(self, *, last: int, type_glob: str | None) -> monitoring.EventsView:
        from control_plane.events import TYPE_PREFIX  # lazy: yaml; start-up
        from control_plane.services import monitoring  # lazy: start-up (module top)

        params = {"last": last, **({"type": type_glob} if type_glob else {})}
        return monitoring.EventsView(list(self.api.call("GET", "/v1/events", params=params)), TYPE_PREFIX)

    def release_history(self, service: str) -> Any:
        from control_plane.services.release_views import ReleaseListView  # lazy: start-up (module top)

        return ReleaseListView(f"history of {service}", list(self.api.call("GET", f"/v1/releases/{service}/history")),
                               history=True)

    def release_start(self, model: str, env: str, config: dict[str, Any], service: str | None,
                      *, poll: float = 1.0, on_state: Any = None) -> Any:
        """Start on the server (recorded and checked there), then follow it until it ends or pauses."""
        started = self.api.call("POST", "/v1/releases", json={"model": model, "env": env, "service": service,
                                                              "config": config})
        return self._follow(str(started["service"]), poll, on_state)

    def release_verb(self, service: str, verb: str, *, poll: float = 1.0, on_state: Any = None) -> Any:
        self.api.call("POST", f"/v1/releases/{service}/{verb}")
        return self._follow(service, poll, on_state)

    def _follow(self, service: str, poll: float, on_state: Any) -> Any:
        last = None
        for view in polled(lambda: self.release_status(service), lambda v: v.exit_code != EXIT_IN_PROGRESS, poll):
            if on_state is not None and view.state != last:
                on_state(view.state)
                last = view.state
        return view


def _version(d: dict[str, Any]) -> ModelVersion:
    """A registered version from its JSON (``ModelVersion.as_dict``, the keys ``-o json`` prints)."""
    from control_plane.registry.view import ModelVersion, SignatureInfo  # lazy: registry, pandas; start-up

    names = {f.name for f in dataclasses.fields(ModelVersion)} - {"signature"}
    return ModelVersion(**{k: v for k, v in d.items() if k in names}, signature=SignatureInfo(**d["signature"]))


class RemoteModels:
    """``mlctl model`` through the server: the same views as ``control_plane.services.models``."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def list_versions(self, name: str | None, *, actor: str | None, since: str | None) -> models.VersionsView:
        from control_plane.services import models  # lazy: start-up (module top)

        params = {k: v for k, v in {"name": name, "actor": actor, "since": since}.items() if v is not None}
        return models.VersionsView([_version(d) for d in self.api.call("GET", "/v1/models", params=params)])

    def show(self, ref: str) -> models.ShowView:
        from control_plane.registry import parse_ref  # lazy: registry, pandas; start-up
        from control_plane.services import models  # lazy: start-up (module top)

        name, version = parse_ref(ref)
        d = self.api.call("GET", f"/v1/models/{name}/{version}")
        return models.ShowView(_version(d), d)

    def sign(self, name: str, version: str, *, signer: str, env: str | None) -> models.SignView:
        from control_plane.services import models  # lazy: start-up (module top)

        d = self.api.call("POST", f"/v1/models/{name}/{version}/signatures", json={"signer": signer, "env": env})
        return models.SignView(_version(d))

    def verify(self, ref: str, *, public_key: Path | None) -> models.VerifyView:
        from control_plane.registry import parse_ref  # lazy: registry, pandas; start-up
        from control_plane.registry.signing import VerifyResult  # lazy: registry, pandas; start-up
        from control_plane.services import models  # lazy: start-up (module top)

        name, version = parse_ref(ref)
        pem = None
        if public_key is not None:
            try:
                pem = public_key.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise MlctlError(f"--key {public_key}: cannot read it ({exc})", hint="pass a PEM public key file") from None
        d = self.api.call("POST", f"/v1/models/{name}/{version}/verification", json={"public_key_pem": pem})
        names = {f.name for f in dataclasses.fields(VerifyResult)}
        return models.VerifyView(VerifyResult(**{k: v for k, v in d.items() if k in names}))

    def register(self, name: str, version: str, path: Path, *, datasets: list[str], features: list[str],
                 code_commit: str | None, config: Path | None, params: Path | None, metrics: Path | None,
                 parent: str | None, classification: str, store: str | None, env: str | None
                 ) -> models.RegisterView:
        """Upload ``path`` (one tar, streamed from a temporary file) with the register flags. Files
        named by flags are read here, where they are; the code pin is this machine's git HEAD."""
        from control_plane.registry import lineage as lin  # lazy: registry, pandas; start-up
        from control_plane.services import models, transfer  # lazy: start-up (module top)

        lin.check_name(name)
        lin.check_version(version)
        if not path.is_dir():
            raise lin.LineageError(f"--path {path} is not a directory",
                                   hint="pass the directory the training job wrote the model files to")
        if config is not None and not config.is_file():
            raise lin.LineageError(f"--config {config}: no such file", hint="pass the training config file")
        request = {
            "datasets": datasets, "features": features, "code": lin.code_commit(code_commit, path),
            "params": lin.read_json_object(params, "--params") if params is not None else None,
            "metrics": lin.read_json_object(metrics, "--metrics") if metrics is not None else None,
            "parent": parent, "classification": classification, "store": store, "env": env,
        }
        with tempfile.TemporaryDirectory(prefix="mlctl-upload-") as tmp:
            archive = transfer.pack_upload(request, path, config, Path(tmp) / "upload.tar")
            with archive.open("rb") as body:
                r = self.api.request("PUT", f"/v1/models/{name}/{version}", content=body,
                                     headers={"Content-Type": "application/x-tar"})
        d = r.json()
        return models.RegisterView(dataclasses.replace(_version(d), created=bool(d.get("created"))))

    def export(self, ref: str, directory: Path, *, public_key_out: Path | None) -> models.ExportView:
        """Download the server's verified export, check it again here (signature and key, with the
        pinned hashing configuration: what arrives is what the server verified) and only then put it
        at ``directory``; on any failure nothing is left behind, as locally."""
        from control_plane.registry import parse_ref  # lazy: registry, pandas; start-up
        from control_plane.registry.export import (  # lazy: registry, pandas; start-up
            ExportResult,
            default_key_path,
            write_public_key,
        )
        from control_plane.registry.export import (
            check_target as check_export_target,  # lazy: registry, pandas; start-up
        )
        from control_plane.services import models, transfer  # lazy: start-up (module top)
        from control_plane.signing import (  # lazy: cryptography; start-up
            SIGNATURE_FILENAME,
            key_fingerprint,
            verify_model,
        )

        name, version = parse_ref(ref)
        key_path = public_key_out if public_key_out is not None else default_key_path(directory)
        check_export_target(directory, key_path)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.export-", dir=directory.parent))
        try:
            archive = staging / "export.tar"
            r = self.api.request("GET", f"/v1/models/{name}/{version}/export", into=archive)
            sent = json.loads(r.headers[transfer.EXPORT_HEADER])
            model_dir, pem = transfer.unpack_export(archive, staging / "x", 1 << 40)
            verified = verify_model(model_dir, (model_dir / SIGNATURE_FILENAME).read_bytes(), pem)
            if f"sha256:{verified.root_digest}" != sent["root_digest"] or key_fingerprint(pem) != sent["key_id"]:
                raise VerificationFailed(f"the export of {ref} changed on its way from the server",
                                         hint="export again; if it persists, check what sits between you and it")
            if directory.exists():
                directory.rmdir()
            os.replace(model_dir, directory)
            os.chmod(directory, 0o700)  # model bytes may be confidential: private until the user shares them
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        write_public_key(key_path, pem)
        return models.ExportView(ExportResult(
            ref=sent["ref"], root_digest=sent["root_digest"], directory=str(directory),
            signature=str(directory / SIGNATURE_FILENAME), public_key=str(key_path), key_id=sent["key_id"],
            files=int(sent["files"])))

    def validate(self, ref: str, *, env: str | None, baseline: str | None, policy: dict[str, Any]) -> models.ValidateView:
        """The validation gate on the server's copy of NAME:V; the same report as locally."""
        from control_plane.services import models  # lazy: start-up (module top)
        from control_plane.validate import gate  # lazy: numpy + onnxruntime, one verb; CLI start-up

        name, version = gate.parse_ref(ref)
        d = self.api.call("POST", f"/v1/models/{name}/{version}/validation",
                          json={"env": env, "baseline": baseline, "policy": policy})
        return models.ValidateView(gate.ValidationReport(
            candidate=d["candidate"], baseline=d["baseline"], environment=d["environment"],
            checks=[gate.Check(**c) for c in d["checks"]], metrics=d["metrics"],
            baseline_metrics=d["baseline_metrics"]))

    def optimize(self, ref: str, *, env: str, target: str, precision: str, signer: str, timeout: float | None,
                 progress: Any = None, poll: float = 1.0) -> models.OptimizeView:
        """Start the build on the server (checked there: a refusal is its 403), then follow it,
        passing its progress lines on, until it ends: the result, or its error as the local one."""
        from control_plane.optimize.service import (
            OptimizeResult,  # lazy: onnx + tritonclient (~1 s), one verb; CLI start-up
        )
        from control_plane.registry import parse_ref  # lazy: registry, pandas; start-up
        from control_plane.services import models  # lazy: start-up (module top)

        name, version = parse_ref(ref)
        started = self.api.call("POST", f"/v1/models/{name}/{version}/optimizations", json={
            "env": env, "target": target, "precision": precision, "signer": signer, "timeout": timeout})
        result = followed(self.api, f"/v1/optimizations/{started['id']}", progress, poll)
        return models.OptimizeView(OptimizeResult(**result))


class RemoteMonitor:
    """``mlctl monitor drift`` and ``mlctl pii scan`` through the server: the client's files are
    uploaded (one tar, ``transfer.pack_files``; the server's size limit applies) and the server reads
    the copy under the names given here; ``s3://`` URIs are read by the server itself."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def _post_files(self, path: str, request: dict[str, Any], files: dict[str, Path]) -> Any:
        from control_plane.services import transfer  # lazy: start-up (module top)

        with tempfile.TemporaryDirectory(prefix="mlctl-upload-") as tmp:
            archive = transfer.pack_files(request, files, Path(tmp) / "upload.tar")
            with archive.open("rb") as body:
                r = self.api.request("POST", path, content=body, headers={"Content-Type": "application/x-tar"})
        return r.json()

    def drift(self, *, reference: str | None, service: str | None, current: str | None, config: Path | None,
              thresholds: dict[str, Any], remediation: str | None, last: int | None, since: str | None,
              fail_on_drift: bool) -> monitoring.DriftCheckView:
        """The same checks as locally first (a mistake costs no upload), then the drift on the server."""
        from control_plane.monitor.drift import (  # lazy: scipy (~0.5 s), one verb; CLI start-up
            DriftReport,
            FeatureDrift,
        )
        from control_plane.services import monitoring  # lazy: start-up (module top)

        reference = monitoring.check_drift_inputs(reference, service, current)
        files: dict[str, Path] = {}
        for slot, given in (("reference", reference), ("current", current)):
            if given is None or given.startswith("s3://"):
                continue
            if not Path(given).is_file():
                raise NotFound(f"{given} does not exist",
                               hint="give a CSV, Parquet or JSON Lines file (or s3://bucket/key)")
            files[slot] = Path(given)
        if config is not None:
            if not config.is_file():
                raise NotFound(f"--config {config}: no such file", hint="give the drift config YAML")
            files["config"] = config
        request = {"reference": reference, "current": current, "service": service,
                   "thresholds": {k: v for k, v in thresholds.items() if v is not None}, "remediation": remediation,
                   "last": last, "since": since, "fail_on_drift": fail_on_drift}
        d = self._post_files("/v1/monitor/drift", request, files)

        def feature(f: dict[str, Any]) -> FeatureDrift:  # JSON's nulls were NaN (DriftReport._finite)
            nan = float("nan")
            return FeatureDrift(**{**f, "scores": {k: nan if v is None else v for k, v in f["scores"].items()},
                                   "thresholds": {k: nan if v is None else v for k, v in f["thresholds"].items()}})

        report = DriftReport(reference=d["reference"], current=d["current"], n_reference=d["n_reference"],
                             n_current=d["n_current"], features=[feature(f) for f in d["features"]],
                             skipped=d["skipped"], schema=d["schema_drift"])
        return monitoring.DriftCheckView(report, d["reference"], d["current"], d["service"], d["model"], d["version"],
                                         d["remediation"], d["actions"], fail_on_drift)

    def pii_scan(self, path: Path, *, classification: str | None) -> pii_service.ScanView:
        """Upload ``path`` (a file or a directory) for the server to scan; the findings name it as
        given here, and the classification rule is applied to them as locally."""
        from control_plane.services import pii as pii_service  # lazy: start-up (module top)

        if not path.exists():
            raise NotFound(f"{path} does not exist", hint="give the sample input or feature data file to scan")
        d = self._post_files("/v1/pii/scans", {"path": str(path), "classification": classification},
                            {"data": path.resolve()})  # resolved: `.` has no name to pack under
        return pii_service.judged(path, classification, [Finding(**f) for f in d["findings"]])

    def replay(self) -> monitoring.ReplayView:
        """``mlctl monitor replay``: the server re-delivers its dead-lettered events to its sinks."""
        from control_plane.services import monitoring  # lazy: start-up (module top)

        return monitoring.ReplayView(**self.api.call("POST", "/v1/events/replay"))


class RemoteAudit:
    """``mlctl audit`` through the server: the same views as ``control_plane.services.audit``."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def verify(self) -> audit_service.VerifyView:
        from control_plane.audit.records import AuditReport  # lazy: sqlalchemy; start-up
        from control_plane.services import audit as audit_service  # lazy: start-up (module top)

        return audit_service.VerifyView(AuditReport(**self.api.call("GET", "/v1/audit/verify")))

    def prove(self, entry: int) -> audit_service.ProofView:
        from control_plane.services import audit as audit_service  # lazy: start-up (module top)

        return audit_service.ProofView(entry, self.api.call("GET", f"/v1/audit/proofs/{entry}"))

    def consistency(self, old: int, new: int | None) -> audit_service.ConsistencyView:
        from control_plane.services import audit as audit_service  # lazy: start-up (module top)

        params = {"old": old, **({"new": new} if new is not None else {})}
        return audit_service.ConsistencyView(self.api.call("GET", "/v1/audit/consistency", params=params))

    def checkpoint(self) -> audit_service.CheckpointView:
        from control_plane.audit.heads import SignedHead  # lazy: sqlalchemy; start-up
        from control_plane.services import audit as audit_service  # lazy: start-up (module top)

        d = self.api.call("POST", "/v1/audit/checkpoints")
        return audit_service.CheckpointView(SignedHead(**d["head"]) if d["head"] else None, d["anchor"])

    def list_entries(self, **filters: Any) -> audit_service.EntriesView:
        from control_plane.services import audit as audit_service  # lazy: start-up (module top)

        params = {k: v for k, v in filters.items() if v is not None}
        return audit_service.EntriesView(self.api.call("GET", "/v1/audit/entries", params=params))

    def export(self, path: Path, **filters: Any) -> audit_service.ExportView:
        """The server's JSON lines, written here as the local command writes them (0600)."""
        from control_plane.services import audit as audit_service  # lazy: start-up (module top)
        to_stdout = audit_service.check_export_path(path)
        params = {k: v for k, v in filters.items() if v is not None}
        r = self.api.request("GET", "/v1/audit/export", params=params)
        body = r.text
        if not to_stdout:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
            os.chmod(path, 0o600)
        return audit_service.ExportView(None if to_stdout else path, int(r.headers.get("X-Mlctl-Entries", "0")), body)


class RemoteLocal:
    """``mlctl local`` through the server: its embedded environment (server/local_routes.py), with
    the same views as ``services.operations``. ``up``/``down``/``traffic`` run in the request, so
    they wait ``LONG_S`` (traffic: its duration and that margin) instead of the usual minute."""

    LONG_S = 300.0  # the emulator starts in seconds, tens on a busy host; the server answers when done

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    @staticmethod
    def _env(blueprint: Path | None) -> str | None:
        """A blueprint's name, which the server resolves among its own blueprints (never a path)."""
        return None if blueprint is None or blueprint == DEFAULT_BLUEPRINT else blueprint.stem

    @staticmethod
    def _gateway(d: dict[str, Any], ca_cert: str | None = None) -> gateway_addresses.GatewayInfo:
        port = urlsplit(d["url"]).port or 0
        return gateway_addresses.GatewayInfo(d["url"], port, d["pid"], ca_cert or "")

    @staticmethod
    def _oidc(d: dict[str, Any]) -> idp.IdpInfo:
        from control_plane.emulator import idp  # lazy: jwt, cryptography; start-up

        return idp.IdpInfo(d["issuer"], d["pid"])

    def status(self, blueprint: Path) -> operations.LocalStatusView:
        from control_plane.emulator import aws as emulator  # lazy: pydantic, blueprints; start-up
        from control_plane.services import operations  # lazy: start-up (module top)

        env = self._env(blueprint)
        d = self.api.call("GET", "/v1/local", params={"env": env} if env else None)
        return operations.LocalStatusView(emulator.EmulatorInfo(d["emulator"]["endpoint"], d["emulator"]["pid"]),
                                          self._gateway(d["gateway"], d["ca"]["certificate"]),
                                          self._oidc(d["oidc_provider"]), d["ca"]["sha256"])

    def up(self, blueprint: Path) -> operations.LocalUpView:
        from control_plane.emulator import aws as emulator  # lazy: pydantic, blueprints; start-up
        from control_plane.services import operations  # lazy: start-up (module top)

        d = self.api.call("POST", "/v1/local/up", json={"env": self._env(blueprint)}, timeout=self.LONG_S)
        return operations.LocalUpView(emulator.EmulatorInfo(d["emulator"]["endpoint"], d["emulator"]["pid"]),
                                      self._gateway(d["gateway"]), Path(d["ca"]["certificate"]), d["ca"]["sha256"],
                                      self._oidc(d["oidc_provider"]), tuple(d.get("kept", ())))

    def down(self) -> operations.LocalDownView:
        from control_plane.services import operations  # lazy: start-up (module top)

        d = self.api.call("POST", "/v1/local/down", json={}, timeout=self.LONG_S)
        oidc = d["oidc_provider"]
        return operations.LocalDownView(d["emulator"]["stopped"], d["gateway"]["stopped"],
                                        d["model_servers"]["stopped"], oidc["stopped"], tuple(d.get("kept", ())),
                                        self._oidc(oidc) if "issuer" in oidc else None)

    def traffic(self, service: str, *, csv: Path, seconds: float, rate: float, tensor: str) -> operations.TrafficView:
        """The CSV's rows are read here (the same checks as locally) and sent from the server."""
        from control_plane.services import operations  # lazy: start-up (module top)
        limits = operations.SERVED_TRAFFIC
        for flag, value, most in (("--seconds", seconds, limits["seconds"]), ("--rate", rate, limits["rate"])):
            if value > most:
                raise UsageError(f"{flag} {value:g}: through the server at most {most:g}",
                                 hint="the server sends from its own gateway and bounds each run; run it again for more")
        if seconds <= 0 or rate <= 0:
            raise UsageError("--seconds and --rate must be positive", hint="e.g. --seconds 30 --rate 20")
        rows = operations.traffic_rows(csv, tensor)
        if not rows:
            raise UsageError(f"--csv {csv}: no rows to send", hint="pass a CSV with at least one data row")
        if len(rows) > limits["rows"] or sum(map(len, rows)) > limits["cells"]:
            raise UsageError(f"--csv {csv}: through the server at most {limits['rows']:,.0f} rows and "
                             f"{limits['cells']:,.0f} numbers", hint="pass fewer rows (they are cycled)")
        d = self.api.call("POST", f"/v1/local/traffic/{service}", timeout=seconds + self.LONG_S,
                          json={"rows": rows, "seconds": seconds, "rate": rate, "tensor": tensor})
        return operations.TrafficView(**d)


@dataclasses.dataclass(frozen=True)
class RemoteRun:
    run: RunView
    running: bool  # the server drives it in its background: follow it
    submitted_to: str | None  # --engine kubeflow: the KFP endpoint


class RemotePipelines:
    """``mlctl pipeline run/watch/status/list`` through the server: the same views as
    ``control_plane.services.pipelines``. A run is driven in the server's background; the client
    follows it (``poll`` seconds apart), handing each look's step states to ``on_status`` as the
    local run does, and ends with the run's record: a failed step raises its error (exit 20-23)."""

    _FAILED: ClassVar[dict[int, type[PipelineFailed]]] = {21: DataTestFailed, 22: TrainingFailed, 23: EvaluationFailed}

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def defined(self) -> pipeline_service.DefinedView:
        from control_plane.services import pipelines as pipeline_service  # lazy: start-up (module top)

        return pipeline_service.DefinedView(list(self.api.call("GET", "/v1/pipelines")))

    def list_runs(self, pipeline: str | None) -> pipeline_service.RunsView:
        from control_plane.pipelines.service import RunView  # lazy: registry, pandas; start-up
        from control_plane.services import pipelines as pipeline_service  # lazy: start-up (module top)

        params = {"pipeline": pipeline} if pipeline else None
        return pipeline_service.RunsView([RunView(**d) for d in self.api.call("GET", "/v1/pipelines/runs",
                                                                               params=params)])

    def status(self, run_id: str) -> pipeline_service.RunStatusView:
        from control_plane.services import pipelines as pipeline_service  # lazy: start-up (module top)

        return pipeline_service.RunStatusView(self._run(run_id))

    def _run(self, run_id: str) -> RunView:
        from control_plane.pipelines.service import RunView  # lazy: registry, pandas; start-up

        return RunView(**self.api.call("GET", f"/v1/pipelines/runs/{run_id}"))

    def start(self, name: str, *, dataset: str, features: str | None, force: bool, engine: str,
              host: str | None, image: str | None, env: str | None) -> RemoteRun:
        """Start NAME on the server: the run as recorded (``running`` while the server drives it; a
        reused run or a submission to Kubeflow answers at once). ``finish`` follows it."""
        from control_plane.pipelines.service import RunView  # lazy: registry, pandas; start-up
        from control_plane.services import pipelines as pipeline_service  # lazy: start-up (module top)
        r = self.api.request("POST", f"/v1/pipelines/{name}/runs", json={
            "dataset": dataset, "features": features, "force": force, "engine": engine, "host": host,
            "image": image, "env": env})
        return RemoteRun(RunView(**r.json()), r.status_code == 202, r.headers.get(pipeline_service.SUBMITTED_HEADER))

    def finish(self, started: RemoteRun, *, on_status: StatusCallback | None = None,
               poll: float = 1.0) -> pipeline_service.RunResultView:
        from control_plane.services import pipelines as pipeline_service  # lazy: start-up (module top)
        view = self.follow(started.run.run_id, on_status=on_status, poll=poll) if started.running else started.run
        return pipeline_service.RunResultView(view, submitted_to=started.submitted_to)

    def watch(self, name: str, *, adopt: bool, env: str | None,
              on_status: StatusCallback | None = None, poll: float = 1.0
              ) -> pipeline_service.WatchView:
        """One look on the server; a change it saw is followed to the end of its run."""
        from control_plane.pipelines.service import (  # lazy: registry, pandas; start-up
            RunView,
            WatchResult,
        )
        from control_plane.services import pipelines as pipeline_service  # lazy: start-up (module top)
        r = self.api.request("POST", f"/v1/pipelines/{name}/watches", json={"adopt": adopt, "env": env})
        d = r.json()
        started = RunView(**d["run"]) if d.get("run") else None
        result = WatchResult(changed=bool(d["changed"]), observation=dict(d["observation"]), run=started,
                             error=d.get("error"))
        if r.status_code == 202 and started is not None:
            try:
                final = self.follow(started.run_id, on_status=on_status, poll=poll)
            except PipelineFailed as exc:  # a watch reports the failure in its result, as locally
                result = dataclasses.replace(result, run=self._run(started.run_id), error={
                    "step": exc.step, "message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code})
            else:
                result = dataclasses.replace(result, run=final)
        return pipeline_service.WatchView(result)

    def follow(self, run_id: str, *, on_status: StatusCallback | None = None,
               poll: float = 1.0) -> RunView:
        """Look at the run until it ends; its error, with the local exit code and class, if it failed."""
        for view in polled(lambda: self._run(run_id), lambda v: v.status != "running", poll):
            if on_status is not None:
                on_status(view.steps)
        if view.status == "failed":
            code = int(view.exit_code or PipelineFailed.exit_code)
            cls = self._FAILED.get(code)
            if cls is not None:
                raise cls(view.error or "the pipeline run failed", step=view.failed_step or "", hint=view.hint)
            raise PipelineFailed(view.error or "the pipeline run failed", step=view.failed_step or "",
                                 hint=view.hint, exit_code=code)
        return view


# --- background operations and `mlctl infra` -----------------------------------------------------


def followed(api: ApiClient, path: str, progress: Callable[[Any], None] | None, poll: float = 1.0) -> Any:
    """Follow a background operation of the server (``server.operations``: ``GET path`` answers
    ``{"done", "progress", "result", "error"}``) to its end, handing each new progress entry to
    ``progress`` as it appears; the result, or the operation's error raised as the local one would be
    (message, fix, exit code)."""
    shown = 0
    for d in polled(lambda: api.call("GET", path), lambda d: bool(d["done"]), poll):
        for entry in d["progress"][shown:]:
            if progress is not None:
                progress(entry)
        shown = len(d["progress"])
    if d["error"] is not None:
        raise RemoteError.from_body(d["error"], int(d["error"].get("status", 500)))
    return d["result"]


class RemoteInfra:
    """``mlctl infra VERB`` through the server: the server runs terraform/checkov on **its**
    blueprint (named, never uploaded: ``blueprint`` None is the server's default) as a background
    operation; this follows it, handing each ``(stack, message)`` to ``progress`` as the local verb
    does, and returns the same view as ``control_plane.services.infra`` (its failure, drift's exit 5
    or the gate's, is the view's, raised by the CLI as locally)."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def run(self, verb: str, *, blueprint: str | None, no_synth: bool = False,
            progress: Callable[[str, str], None] | None = None, poll: float = 1.0) -> Any:
        started = self.api.call("POST", f"/v1/infra/{verb}", json={"blueprint": blueprint, "no_synth": no_synth})
        d = followed(self.api, f"/v1/infra/operations/{started['id']}",
                     None if progress is None else lambda entry: progress(str(entry[0]), str(entry[1])), poll)
        return self._view(verb, d)

    @staticmethod
    def _view(verb: str, d: dict[str, Any]) -> Any:
        from control_plane.infra.lifecycle import (  # lazy: pydantic, blueprints; start-up
            DriftItem,
            StackResult,
        )
        from control_plane.infra.synth import SynthesizedStack  # lazy: pydantic, blueprints; start-up
        from control_plane.services import infra as infra_service  # lazy: start-up (module top)

        if verb == "synth":
            return infra_service.SynthView(Path(d["outdir"]), [SynthesizedStack(**{
                **s, "directory": Path(s["directory"]), "path": Path(s["path"]),
                "dependencies": tuple(s["dependencies"])}) for s in d["stacks"]])
        if verb == "bootstrap":
            return infra_service.BackendsView(list(d["backends"]))
        if verb == "drift":
            return infra_service.DriftView([DriftItem(**i) for i in d["changes"]])
        if verb == "check":
            return infra_service.GateView(gate.GateReport(
                blueprint=d["blueprint"], stacks=list(d["stacks"]),
                findings=[gate.Finding(**{k: v for k, v in f.items() if k != "status"}) for f in d["findings"]],
                stale_skips=[gate.StaleSkip(**s) for s in d["stale_skips"]], checkov_version=d["checkov_version"],
                skips_file=d["skips_file"]))
        return infra_service.StackResultsView(verb, [StackResult(**r) for r in d["stacks"]])


def remote() -> Remote | None:
    """The API server the CLI acts through (``MLCTL_SERVER``), or None to act on the local store."""
    s = settings()
    if not s.server:
        return None
    return Remote(ApiClient(s.server, ca_file=s.server_ca))
