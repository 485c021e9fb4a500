"""Operations verbs: the local environment (up/down/status, traffic), identity (login/whoami/logout),
GPU preflight and the tour's sample.

Monitoring verbs (drift, events, replay, the metrics endpoint) are in ``services.monitoring``, the
KServe manifests (render, validate) in ``services.manifests``.

Each verb takes a :class:`Context` and returns a view; none prints (progress through callbacks).
``local up`` / ``local down`` change this machine's environment and are authorized
(``local.up`` / ``local.down`` in ``policies/rbac.rego``: platform-admin) and audited. The others
change nothing the policy governs: status, traffic (inference requests through the gateway, as any
user of the service sends them), manifests rendered or checked without a cluster, the GPU probe, a
sample written into a new directory. The identity verbs are client-side (they obtain, show or forget
this user's own tokens at the identity provider) and need no role: they are what establishes one.

(About 420 lines: eleven small verbs of the embedded environment, each beside the view it returns.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from blueprints import load_environment
from blueprints.gpu_catalog import gpu_info
from control_plane import audit, environments, identity
from control_plane.drivers import gateway
from control_plane.drivers.local import LocalDriver
from control_plane.emulator import aws as emulator
from control_plane.emulator import ca, idp
from control_plane.errors import MlctlError, NotFound, PolicyViolation, UsageError
from control_plane.gpu import check_engine_compatible, probe
from control_plane.gpu.preflight import PreflightReport
from control_plane.identity import Actor, config, tokens
from control_plane.identity import login as flows
from control_plane.output import info, table
from control_plane.services.context import Context
from control_plane.signing import model_digests

Note = Callable[[str], None]


def _quiet(message: str) -> None:
    return None


# --- the local environment -----------------------------------------------------------------------


@dataclass(frozen=True)
class LocalUpView:
    emulator: emulator.EmulatorInfo
    gateway: gateway.GatewayInfo
    ca_cert: Path
    ca_sha256: str | None
    oidc: idp.IdpInfo
    kept: tuple[str, ...] = ()  # through the server: what it left as it was (KEPT_BY_SERVER)

    def as_json(self) -> Any:
        view = {
            "emulator": {"endpoint": self.emulator.endpoint, "pid": self.emulator.pid, "running": True},
            "gateway": {"url": self.gateway.url, "grpc": self.gateway.grpc_target, "pid": self.gateway.pid,
                        "running": True},
            "ca": {"certificate": str(self.ca_cert), "sha256": self.ca_sha256},
            "oidc_provider": {"issuer": self.oidc.issuer, "pid": self.oidc.pid,
                              "running": self.oidc.running if self.kept else True},
        }
        return {**view, "kept": list(self.kept)} if self.kept else view

    def renderables(self) -> Iterable[Any]:
        yield (f"AWS emulator up at [bold]{self.emulator.endpoint}[/] (pid {self.emulator.pid}); "
               "stop it with `mlctl local down`")
        yield (f"gateway (nginx) up at [bold]{self.gateway.url}[/] (pid {self.gateway.pid}); services at "
               f"/v2/models/<service>, gRPC at {self.gateway.grpc_target} (metadata mlctl-service: <service>)")
        yield f"local CA: {self.ca_cert} (trust it in clients: curl --cacert, grpc root_certificates)"
        if self.kept:
            yield _kept_line(self.oidc)
        else:
            yield f"OpenID provider up at [bold]{self.oidc.issuer}[/] (pid {self.oidc.pid}); log in with `mlctl login`"


@dataclass(frozen=True)
class LocalDownView:
    emulator: bool
    gateway: bool
    model_servers: int
    oidc: bool
    kept: tuple[str, ...] = ()  # through the server: what it left running (KEPT_BY_SERVER)
    oidc_info: idp.IdpInfo | None = None  # with ``kept``: the provider the server verifies tokens with

    def as_json(self) -> Any:
        view: dict[str, Any] = {"emulator": {"stopped": self.emulator}, "gateway": {"stopped": self.gateway},
                                "model_servers": {"stopped": self.model_servers}, "oidc_provider": {"stopped": self.oidc}}
        if not self.kept:
            return view
        if self.oidc_info is not None:  # the provider that stayed up, as `local status` shows it
            view["oidc_provider"].update(issuer=self.oidc_info.issuer, pid=self.oidc_info.pid,
                                         running=self.oidc_info.running)
        return {**view, "kept": list(self.kept)}

    def renderables(self) -> Iterable[Any]:
        yield "AWS emulator stopped" if self.emulator else "AWS emulator was not running"
        yield f"gateway {'stopped' if self.gateway else 'was not running'}; {self.model_servers} model server(s) stopped"
        if self.kept:
            yield _kept_line(self.oidc_info)
        else:
            yield "OpenID provider stopped" if self.oidc else "OpenID provider was not running"


# What `local up` / `local down` leave alone when the API server runs them (``serving=True``): the
# server verifies every token with the provider's keys and serves TLS with the CA's certificate, so a
# remote `local down` must not pull its own identity provider from under it.
KEPT_BY_SERVER = ("ca", "oidc_provider")


def _kept_line(oidc: idp.IdpInfo | None) -> str:
    where = f" at {oidc.issuer} ({f'running, pid {oidc.pid}' if oidc.running else 'not running'})" \
        if oidc is not None and oidc.issuer else ""
    return (f"local CA and OpenID provider{where} left as they are: the server verifies tokens and serves TLS "
            "with them (stop them on the server's host: mlctl local down, without MLCTL_SERVER)")


@dataclass(frozen=True)
class LocalStatusView:
    emulator: emulator.EmulatorInfo
    gateway: gateway.GatewayInfo
    oidc: idp.IdpInfo
    ca_sha256: str | None

    def as_json(self) -> Any:
        return {
            "emulator": {"endpoint": self.emulator.endpoint, "pid": self.emulator.pid, "running": self.emulator.running},
            "gateway": {"url": self.gateway.url, "pid": self.gateway.pid, "running": self.gateway.running},
            "oidc_provider": {"issuer": self.oidc.issuer, "pid": self.oidc.pid, "running": self.oidc.running},
            "ca": {"certificate": self.gateway.ca_cert or None, "sha256": self.ca_sha256},
        }

    def renderables(self) -> Iterable[Any]:
        emu, gw, oidc = self.emulator, self.gateway, self.oidc
        yield f"AWS emulator at {emu.endpoint}: {f'running (pid {emu.pid})' if emu.running else 'stopped'}"
        yield f"gateway at {gw.url}: {f'running (pid {gw.pid})' if gw.running else 'stopped'}"
        yield f"OpenID provider at {oidc.issuer or '-'}: {f'running (pid {oidc.pid})' if oidc.running else 'stopped'}"
        yield f"local CA: {gw.ca_cert or 'not created yet (mlctl local up creates it)'}"


LOCAL = "local"  # the subject of local.up / local.down: this machine's embedded environment


def _dev_tier_only(ctx: Context, env: Any, verb: str) -> None:
    """Through the server, `local up/down` act on the server's embedded environment: dev tier only
    (a refusal is audited, like an RBAC denial)."""
    if str(env.tier) == "dev":
        return
    refusal = PolicyViolation(
        f"`mlctl local {verb}` through the server acts on its embedded environment, and {env.name} is "
        f"{env.tier} tier: the server runs local services for dev-tier environments only",
        hint="pass a dev-tier blueprint (e.g. --blueprint blueprints/uae-local.yaml); staging and prod run on "
             "their own infrastructure (mlctl infra)")
    with ctx.acting():
        audit.record(action=f"local.{verb}", subject=LOCAL, decision="deny", reasons=[refusal.message],
                     details={"environment": env.name, "tier": str(env.tier)})
    raise refusal


def local_up(ctx: Context, blueprint: Path, *, serving: bool = False) -> LocalUpView:
    """Start the AWS emulator, the local CA, the TLS gateway and the OpenID provider; idempotent.

    ``serving``: the API server runs it for a caller, on its own embedded environment: dev tier only,
    and the CA and the provider it stands on are left as they are (``KEPT_BY_SERVER``)."""
    env = load_environment(blueprint)
    ctx.authorize("local.up", LOCAL, env=env)
    if serving:
        _dev_tier_only(ctx, env, "up")
    info = emulator.up(env)
    tls = ca.ensure()  # idempotent: the server's own certificate comes from it, never replaced
    gw = gateway.up()
    oidc = idp.status() if serving else idp.up()
    with ctx.acting():
        audit.record(action="local.up", subject=LOCAL, details={
            "environment": env.name, "emulator": info.endpoint, "gateway": gw.url, "oidc_issuer": oidc.issuer,
            **({"kept": list(KEPT_BY_SERVER)} if serving else {})})
    return LocalUpView(info, gw, tls.ca_cert, ca.fingerprint(), oidc, KEPT_BY_SERVER if serving else ())


def local_down(ctx: Context, *, serving: bool = False, blueprint: Path | None = None) -> LocalDownView:
    """Stop the emulator (its state is lost), the local model servers, the gateway and the provider.

    ``serving``: the API server runs it for a caller: ``blueprint`` (the server's default
    environment without it) must be dev tier, and the CA and the provider stay up."""
    if serving:
        env = load_environment(blueprint) if blueprint is not None else environments.default_environment()
        ctx.authorize("local.down", LOCAL, env=env)
        _dev_tier_only(ctx, env, "down")
        view = LocalDownView(emulator.down(), gateway.down(), LocalDriver().stop_all(), False,
                             KEPT_BY_SERVER, idp.status())
    else:
        ctx.authorize("local.down", LOCAL)
        view = LocalDownView(emulator.down(), gateway.down(), LocalDriver().stop_all(), idp.down())
    with ctx.acting():
        audit.record(action="local.down", subject=LOCAL, details=view.as_json())
    return view


def local_status(ctx: Context, blueprint: Path) -> LocalStatusView:
    return LocalStatusView(emulator.status(load_environment(blueprint)), gateway.status(), idp.status(),
                           ca.fingerprint())


# --- local traffic -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrafficView:
    service: str
    url: str
    sent: int
    ok: int
    statuses: dict[str, int]
    seconds: float

    def as_json(self) -> Any:
        return dataclasses.asdict(self)

    def renderables(self) -> Iterable[Any]:
        detail = "" if self.ok == self.sent else f" ({', '.join(f'{k}: {v}' for k, v in sorted(self.statuses.items()))})"
        yield _plain(f"sent {self.sent} requests to {self.service}: {self.ok} ok{detail}")


def _plain(text: str) -> Any:
    """Text printed as is (no markup, no highlighting): it quotes file paths and user input."""
    return Text(text)


def traffic_rows(csv: Path, tensor: str) -> list[list[float]]:
    """The request rows of a CSV: its ``TENSOR_<n>`` columns in order (other columns ignored)."""
    import pandas as pd  # heavy (~0.5 s); only this verb needs it

    try:
        frame = pd.read_csv(csv)
    except FileNotFoundError:
        raise NotFound(f"--csv {csv}: no such file", hint="e.g. mlctl sample ./tour, then --csv tour/today.csv") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--csv {csv}: cannot read it as CSV ({exc})", hint="pass a CSV with a header row") from None
    cols = [c for c in frame.columns if str(c).startswith(f"{tensor}_")]
    if not cols:
        raise UsageError(f"--csv {csv}: no {tensor}_<n> columns",
                         hint=f"the model's input tensor is {tensor!r}: name the columns {tensor}_0, {tensor}_1, ...")
    cols.sort(key=lambda c: int(str(c).rsplit("_", 1)[1]))
    return frame[cols].astype(float).values.tolist()


# What one `local traffic` run may ask of the API server (it sends from the server's own gateway):
# seconds, requests per second, rows, numbers in all (server/local_routes.py enforces them).
SERVED_TRAFFIC: dict[str, float] = {"seconds": 120.0, "rate": 50.0, "rows": 10_000, "cells": 1_000_000}


def traffic(ctx: Context, service: str, *, csv: Path | None = None, seconds: float = 30.0, rate: float = 20.0,
            tensor: str = "input", note: Note = _quiet, rows: list[list[float]] | None = None) -> TrafficView:
    """Send paced V2 inference requests to ``service`` through the local gateway, one CSV row each
    (``rows``: already read, e.g. by a client of the API server, instead of ``csv``)."""
    import httpx

    if seconds <= 0 or rate <= 0:
        raise UsageError("--seconds and --rate must be positive", hint="e.g. --seconds 30 --rate 20")
    gw = gateway.status()
    if not gw.running:
        raise NotFound("the local gateway is not running", hint="start it: mlctl local up")
    if rows is None:
        if csv is None:
            raise UsageError("--csv is required", hint="e.g. --csv tour/today.csv")
        rows = traffic_rows(csv, tensor)
    if not rows:
        raise UsageError(f"--csv {csv}: no rows to send" if csv is not None else "no rows to send",
                         hint="pass a CSV with at least one data row")
    url = f"{gw.url}/v2/models/{service}/infer"
    sent = ok = 0
    statuses: dict[str, int] = {}
    started = time.monotonic()
    interval = 1.0 / rate
    note(f"sending {rate:g} requests/s to {url} for {seconds:g}s")
    # The gateway speaks TLS with the local CA's certificate: verify it, never verify=False.
    with httpx.Client(trust_env=False, timeout=10, verify=ca.httpx_verify(url)) as client:
        while time.monotonic() - started < seconds:
            row = rows[sent % len(rows)]
            body = {"inputs": [{"name": tensor, "shape": [1, len(row)], "datatype": "FP32", "data": row}]}
            try:
                code = str(client.post(url, json=body).status_code)
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            sent += 1
            ok += code == "200"
            statuses[code] = statuses.get(code, 0) + 1
            pause = started + sent * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    return TrafficView(service, url, sent, ok, statuses, round(time.monotonic() - started, 3))


# --- identity (client-side) ----------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityView:
    actor: Actor
    logged_in: bool = False

    def as_json(self) -> Any:
        me = self.actor
        view: dict[str, Any] = {"actor": me.name, "source": me.source, "roles": me.roles, **me.audit_view()}
        if me.verified is not None:
            view.update(name=me.verified.name, groups=me.verified.groups,
                        expires_in=max(0, me.verified.expires_at - int(time.time())))
        return view

    def renderables(self) -> Iterable[Any]:
        me = self.actor
        if me.verified is not None:
            v = me.verified
            yield (f"{'logged in as' if self.logged_in else 'you are'} [bold]{v.subject}[/] ({v.kind}) "
                   f"verified by {v.issuer}")
            yield (f"  roles: {', '.join(me.roles) or 'none'}; groups: {', '.join(v.groups) or 'none'}; "
                   f"client {v.client_id}; token expires in {self.as_json()['expires_in']} s")
        else:
            how = "--as / MLCTL_ACTOR" if me.source == "asserted" else "the operating-system user"
            yield f"you are [bold]{me.name}[/], asserted by {how} (not verified: dev-tier environments only)"
            yield f"  roles (roles file): {', '.join(me.roles) or 'none'}; log in with `mlctl login`"


@dataclass(frozen=True)
class LogoutView:
    logged_out: bool

    def as_json(self) -> Any:
        return {"logged_out": self.logged_out}

    def renderables(self) -> Iterable[Any]:
        yield "logged out" if self.logged_out else "you were not logged in"


def _identity_config() -> Any:
    loaded = config.load()
    if loaded is None:
        raise PolicyViolation(
            f"no identity file at {config.identity_file()}: mlctl does not know which issuer to trust",
            hint="run `mlctl local up` (the embedded provider writes one) or write one (docs/identity.md)",
        )
    return loaded


def login(ctx: Context, *, issuer: str | None = None, client_credentials: tuple[str, str] | None = None,
          on_device_code: Callable[[Any], None] = lambda _code: None) -> IdentityView:
    """Obtain tokens (device grant for people; ``client_credentials=(id, secret)`` for workloads),
    verify the access token as the server would, and cache them (0600). ``on_device_code`` is
    called with the ``DeviceCode`` to show the person before polling starts."""
    cfg = _identity_config()
    iss = flows.pick_issuer(cfg, issuer)
    if client_credentials is not None:
        cached = flows.client_credentials(cfg, iss, *client_credentials)
    else:
        device = flows.start_device(cfg, iss)
        on_device_code(device)
        cached = flows.poll_device(iss, device)
    v = identity.verifier()
    assert v is not None
    v.verify(cached.access_token)  # never cache a token we would refuse
    tokens.save(cached)
    return IdentityView(Context(settings=ctx.settings).actor, logged_in=True)  # resolved anew: the new token


def whoami(ctx: Context) -> IdentityView:
    """Who this Context acts as: the verified identity and its mapped roles, or the asserted one."""
    return IdentityView(ctx.actor)


def logout(ctx: Context) -> LogoutView:
    """Forget the cached tokens (JWT access tokens cannot be revoked; they expire within minutes)."""
    return LogoutView(tokens.clear())




# --- GPU preflight -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuView:
    report: PreflightReport
    pool_check: dict[str, str] | None

    def as_json(self) -> Any:
        return {**self.report.as_dict(), "pool_check": self.pool_check}

    def renderables(self) -> Iterable[Any]:
        r = self.report
        yield f"driver {r.driver_version}, CUDA {r.cuda_driver_version}, NVML {r.nvml_version}"
        yield table("GPUs", ["#", "name", "compute cap.", "memory (MiB)", "MIG", "ECC", "recommended precision"],
                    [(d.index, d.name, d.compute_capability, f"{d.memory_free_mib}/{d.memory_total_mib}",
                      d.mig_mode, d.ecc_mode, d.recommended_precision) for d in r.devices])
        for warning in r.warnings:
            info(f"[yellow]warning:[/] {warning}")
        if self.pool_check:
            p = self.pool_check
            yield f"matches pool {p['pool']} ({p['gpu_model']}, cc {p['compute_capability']})"


def gpu_preflight(ctx: Context, *, blueprint: Path | None = None, pool: str | None = None) -> GpuView:
    """This node's GPUs through NVML; with ``blueprint``, checked against its GPU pool (an engine is
    specific to its compute capability)."""
    report = probe()
    pool_check: dict[str, str] | None = None
    if blueprint is not None:
        env = load_environment(blueprint)
        pools = [p for p in env.cluster.gpu_pools if pool in (None, p.name)]
        if not pools:
            raise MlctlError(f"no GPU pool '{pool or '(any)'}' in {blueprint}", hint="check cluster.gpu_pools")
        model, cc = gpu_info(str(env.cloud), pools[0].instance_type) or ("unknown", "unknown")
        for device in report.devices:
            check_engine_compatible(device.compute_capability, cc, what=f"GPU {device.index} ({device.name})")
        pool_check = {"pool": pools[0].name, "gpu_model": model, "compute_capability": cc}
    return GpuView(report, pool_check)


# --- the tour's sample ---------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class SampleView:
    directory: str
    models: dict[str, dict[str, Any]]
    tables: dict[str, dict[str, str]]

    def as_json(self) -> Any:
        return {"directory": self.directory, "models": self.models, "tables": self.tables}

    def shell_lines(self) -> list[str]:
        """``export NAME=value`` lines for ``eval`` (``mlctl sample --shell``)."""
        values = {"SAMPLE_DIR": self.directory, "TRAIN_SHA256": self.tables["reference"]["sha256"],
                  "TODAY_SHA256": self.tables["current"]["sha256"]}
        return [f"export {k}={shlex.quote(v)}" for k, v in values.items()]

    def renderables(self) -> Iterable[Any]:
        for m in self.models.values():
            yield _plain(f"model  {m['path']}  root {m['root_digest']}  accuracy {m['accuracy']:.3f}")
        for t in self.tables.values():
            yield _plain(f"table  {t['path']}  sha256:{t['sha256']}")
        ref, v1 = self.tables["reference"], self.models["v1"]
        yield _plain(f"next: mlctl model register digits --version 1 --path {v1['path']} "
                     f"--dataset file://{ref['path']}@sha256:{ref['sha256']}")


def sample(ctx: Context, directory: Path, *, note: Note = _quiet) -> SampleView:
    """Write the tour's sample into a new (or empty) directory: two ONNX digits classifiers trained
    now (v1, v2), a reference and a drifted current table, with their digests."""
    from control_plane.samples import (  # lazy: trains with scikit-learn; one verb, kept off CLI start-up
        build_sample_model,
        write_sample_tables,
    )

    directory = directory.expanduser()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(
            f"{directory} already exists and is not an empty directory",
            hint="pass a new directory, e.g. mlctl sample ./tour (the sample never overwrites files)",
        )
    note(f"training the sample digits classifier (v1, v2) into {directory} …")
    models: dict[str, dict[str, Any]] = {}
    for variant in ("v1", "v2"):
        model = build_sample_model(directory / f"digits-{variant}", variant=variant)
        root_hex, files = model_digests(model.path)
        models[variant] = {"path": str(model.path.resolve()), "root_digest": f"sha256:{root_hex}",
                           "files": len(files), "accuracy": model.accuracy}
    reference, current = write_sample_tables(directory)
    tables = {"reference": {"path": str(reference.resolve()), "sha256": _sha256(reference)},
              "current": {"path": str(current.resolve()), "sha256": _sha256(current)}}
    return SampleView(str(directory.resolve()), models, tables)
