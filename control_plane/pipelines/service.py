"""Pipeline verbs: run (by hand or on a change), watch, status, list, compile, submit.

Audit happens here (RBAC in ``control_plane.services.pipelines``, the entry every front end calls);
every run is a row in ``pipeline_runs``. A run is
keyed by its inputs (pipeline, data set pin, feature set and its schema digest): the same inputs
that already produced a registered version are not trained again (``force`` overrides), and
``watch`` claims each observed change in ``pipeline_changes`` first, so that two watchers, or one
watcher run twice, start exactly one pipeline per change.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from control_plane import audit, identity
from control_plane.emulator.processes import is_alive
from control_plane.errors import MlctlError, NotFound, PipelineFailed
from control_plane.events import emit, read_event_log
from control_plane.output import info
from control_plane.pipelines import config as pconfig
from control_plane.pipelines.config import PipelineConfig
from control_plane.pipelines.models import PipelineChangeRow, PipelineRunRow
from control_plane.registry.lineage import code_commit, parse_dataset, parse_features
from control_plane.registry.service import now
from control_plane.settings import mlctl_home, state_dir
from control_plane.store import session_scope

StatusCallback = Callable[[dict[str, dict[str, Any]]], None]


def _now() -> str:
    return now()


@dataclass
class RunView:
    run_id: str
    pipeline: str
    status: str
    trigger: str
    engine: str
    dataset: str
    features: str | None
    registered: str | None = None
    failed_step: str | None = None
    error: str | None = None
    hint: str | None = None
    exit_code: int | None = None
    steps: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    created_by: str = ""
    created_at: str = ""
    finished_at: str | None = None
    reused: bool = False  # an earlier run with the same inputs answered this request

    @classmethod
    def from_row(cls, row: PipelineRunRow, *, reused: bool = False) -> RunView:
        return cls(run_id=row.id, pipeline=row.pipeline, status=row.status, trigger=row.trigger,
                   engine=row.engine, dataset=row.dataset, features=row.features, registered=row.registered,
                   failed_step=row.failed_step, error=row.error, hint=row.hint, exit_code=row.exit_code,
                   steps=json.loads(row.steps or "{}"), result=json.loads(row.result or "{}"),
                   created_by=row.created_by, created_at=row.created_at, finished_at=row.finished_at,
                   reused=reused)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_config(name: str | None, path: str | Path | None = None, env: str | None = None) -> PipelineConfig:
    return pconfig.override_environment(pconfig.load(name, path=path), env)


def change_key(cfg: PipelineConfig, dataset: str, features: str | None) -> str:
    """What identifies a run's inputs: the data set pin and the feature set with its schema digest."""
    from control_plane.pipelines.steps import (
        feature_set,  # lazy: kfp (~2 s); CLI start-up imports this module
    )

    try:
        name, version, _, schema_sha = feature_set(cfg, features)
        feats = f"{name}@{version}#{schema_sha}"
    except MlctlError:
        feats = features or ""  # the data-test step reports the missing schema with its fix
    return hashlib.sha256(f"{cfg.name}|{dataset}|{feats}".encode()).hexdigest()


def _check_dataset(dataset: str) -> str:
    return str(parse_dataset(dataset)["ref"])


def _code_commit(cfg: PipelineConfig) -> str | None:
    pin = code_commit(None, Path(cfg.base_dir or "."))
    return None if pin["commit"] == "unknown" else str(pin["commit"])


def _succeeded(pipeline: str, key: str) -> PipelineRunRow | None:
    with session_scope() as s:
        return s.execute(select(PipelineRunRow).where(
            PipelineRunRow.pipeline == pipeline, PipelineRunRow.change_key == key,
            PipelineRunRow.status == "succeeded").order_by(PipelineRunRow.created_at.desc())).scalars().first()


def _update(run_id: str, **fields: Any) -> PipelineRunRow:
    with session_scope() as s:
        row = s.get(PipelineRunRow, run_id)
        assert row is not None
        for k, v in fields.items():
            setattr(row, k, v)
        s.flush()
        s.expunge(row)
        return row


def begin(cfg: PipelineConfig, *, dataset: str, features: str | None = None, trigger: str = "manual",
          key: str | None = None, force: bool = False) -> RunView:
    """Check the inputs and record a run of ``cfg`` (status ``running``, its start audited), or
    return the earlier run these inputs already trained (``reused``; ``force`` trains again).
    ``execute`` then drives it: apart, so that a server can answer with the run id at once."""
    dataset = _check_dataset(dataset)
    if features:
        parse_features(features)
    key = key or change_key(cfg, dataset, features)
    if not force:
        done = _succeeded(cfg.name, key)
        if done is not None:
            return RunView.from_row(done, reused=True)
    run_id = f"{cfg.name}-{uuid.uuid4().hex[:12]}"
    who = identity.current().name  # the acting identity: verified, asserted (dev tier) or the OS user
    with session_scope() as s:
        row = PipelineRunRow(id=run_id, pipeline=cfg.name, engine="local", trigger=trigger, change_key=key,
                             dataset=dataset, features=features, status="running", steps="{}", result="{}",
                             created_by=who, created_at=_now(), driver=_this_driver())
        s.add(row)
        audit.record(action="pipeline.run", subject=f"pipeline/{cfg.name}",
                     details={"run_id": run_id, "dataset": dataset, "features": features, "trigger": trigger,
                              "engine": "local", "phase": "start"}, session=s)
        s.flush()
        s.expunge(row)
    return RunView.from_row(row)


def _this_driver() -> str:
    """This process, as a run names its driver: ``execute`` runs where ``begin`` recorded the run."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _driver_gone(driver: str | None) -> bool:
    """True only when ``driver`` is a process on this host that no longer runs. Another host's, or an
    older run's that names none: we cannot tell, so it is not ours to end."""
    host, _, pid = (driver or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return int(pid) != os.getpid() and not is_alive(int(pid))


def end_orphaned_runs() -> list[str]:
    """End every local run still ``running`` whose driving process is gone (a server or CLI stopped
    mid-run): status ``failed``, the step it was in, why and the fix, audited as the acting identity
    (the server, at its start). Runs driven by a live process are left alone. The run ids ended."""
    with session_scope() as s:
        candidates = s.execute(select(PipelineRunRow.id, PipelineRunRow.driver).where(
            PipelineRunRow.status == "running", PipelineRunRow.engine == "local")).all()
    ended = []
    for run_id, driver in candidates:
        if not _driver_gone(driver):
            continue
        from control_plane.pipelines.engines import (
            read_status,  # lazy: kfp (~2 s); CLI start-up imports this module
        )

        steps = read_status(mlctl_home() / "pipelines" / "runs" / run_id / "status")
        cut = [k for k, st in steps.items() if st.get("state") == "running"]
        for key in cut:
            steps[key].update(state="failed", message="interrupted: its driving process stopped")
        step = str(steps[cut[0]].get("step", cut[0])) if cut else None
        with session_scope() as s:
            row = s.get(PipelineRunRow, run_id)
            if row is None or row.status != "running" or row.driver != driver:
                continue  # another server starting at the same time ended it first
            error = (f"the run was interrupted{f' in step {step}' if step else ''}: the process driving it "
                     f"({driver}) stopped before it finished (the server was stopped or restarted)")
            hint = (f"start it again: mlctl pipeline run {row.pipeline} --dataset {row.dataset}"
                    f"{f' --features {row.features}' if row.features else ''} (no --force needed: it did not succeed)")
            row.status, row.failed_step, row.error, row.hint = "failed", step, error, hint
            row.exit_code, row.steps, row.finished_at = PipelineFailed.exit_code, json.dumps(steps), _now()
            audit.record(action="pipeline.run", subject=f"pipeline/{row.pipeline}", decision="deny", reasons=[error],
                         details={"run_id": run_id, "failed_step": step, "phase": "finish", "status": "failed",
                                  "interrupted": True, "driver": driver}, session=s)
        ended.append(run_id)
    return ended


def execute(cfg: PipelineConfig, started: RunView, *, on_status: StatusCallback | None = None) -> RunView:
    """Drive the run ``begin`` recorded on the local engine to its end; records the outcome.

    Raises the failed step's error (``DataTestFailed``, ``TrainingFailed``, ``EvaluationFailed``,
    ``PipelineFailed``) after recording it."""
    from control_plane.pipelines.engines import (
        LocalEngine,  # lazy: kfp (~2 s); CLI start-up imports this module
    )

    subject, run_id, dataset = f"pipeline/{cfg.name}", started.run_id, started.dataset
    run_dir = state_dir("pipelines", "runs", run_id)
    try:
        local = LocalEngine().run(cfg, dataset=dataset, features=started.features, run_id=run_id, run_dir=run_dir,
                                  code_commit=_code_commit(cfg), on_status=on_status)
    except MlctlError as exc:
        step = getattr(exc, "step", None) or None
        from control_plane.pipelines.engines import (
            read_status,  # lazy: kfp (~2 s); CLI start-up imports this module
        )

        _update(run_id, status="failed", failed_step=step, error=exc.message, hint=exc.hint,
                exit_code=exc.exit_code, steps=json.dumps(read_status(run_dir / "status")), finished_at=_now())
        audit.record(action="pipeline.run", subject=subject, decision="deny", reasons=[exc.message],
                     details={"run_id": run_id, "failed_step": step, "phase": "finish", "status": "failed"})
        _emit("pipeline.failed", cfg, run_id, {"failed_step": step, "dataset": dataset})
        raise
    registered = local.result.get("ref")
    row = _update(run_id, status="succeeded", registered=registered, steps=json.dumps(local.steps),
                  result=json.dumps(local.result, default=str), finished_at=_now())
    audit.record(action="pipeline.run", subject=subject, digests={"root": str(local.result.get("root_digest"))},
                 details={"run_id": run_id, "registered": registered, "phase": "finish", "status": "succeeded"})
    _emit("pipeline.succeeded", cfg, run_id, {"registered": registered, "dataset": dataset})
    return RunView.from_row(row)


def run(cfg: PipelineConfig, *, dataset: str, features: str | None = None, trigger: str = "manual",
        key: str | None = None, force: bool = False, on_status: StatusCallback | None = None) -> RunView:
    """Run the pipeline on the local engine for ``dataset`` (``URI@DIGEST``); returns the run.

    Raises the failed step's error (``DataTestFailed``, ``TrainingFailed``, ``EvaluationFailed``,
    ``PipelineFailed``) after recording it."""
    started = begin(cfg, dataset=dataset, features=features, trigger=trigger, key=key, force=force)
    return started if started.reused else execute(cfg, started, on_status=on_status)


def _emit(kind: str, cfg: PipelineConfig, run_id: str, data: dict[str, Any]) -> None:
    try:
        emit(kind, f"pipeline/{cfg.name}", {"run_id": run_id, "pipeline": cfg.name, **data})
    except MlctlError as exc:  # a failing sink must not turn a finished run into an error
        info(f"[yellow]warning:[/] event {kind} not delivered: {exc.message}")


# ---- change detection ------------------------------------------------------------------------


@dataclass
class Observation:
    source: str
    dataset: str  # the pin the run will use: URI[?versionId=V]@sha256:HEX
    features: str
    key: str
    detail: dict[str, Any]


def observe(cfg: PipelineConfig) -> Observation:
    """The current state of the pipeline's source object and feature set (no side effects)."""
    from control_plane.pipelines.steps import (  # lazy: kfp (~2 s); CLI start-up imports this module
        _s3_location,
        check_bucket,
        feature_set,
        s3_client,
    )

    if not cfg.source or not cfg.source.startswith("s3://"):
        raise MlctlError(f"pipeline {cfg.name} has no s3:// source to watch",
                         hint="set source: s3://BUCKET/KEY (the environment's bucket) in the pipeline file",
                         exit_code=2)
    check_bucket(cfg, cfg.source, step="watch")
    bucket, key, _ = _s3_location(cfg.source)
    client = s3_client(cfg)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # botocore ClientError: 404 when nothing has landed yet
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise NotFound(f"watch: {cfg.source} cannot be read ({code})",
                       hint="upload the data set there first, or fix source: in the pipeline file") from None
    version = head.get("VersionId")
    if version in (None, "null"):
        version = None
    body = client.get_object(Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))["Body"]
    sha = hashlib.sha256()
    while chunk := body.read(1 << 20):
        sha.update(chunk)
    uri = f"{cfg.source}?versionId={version}" if version else cfg.source
    name, fversion, _, schema_sha = feature_set(cfg, None)
    detail = {"version_id": version, "etag": str(head.get("ETag", "")).strip('"'), "sha256": sha.hexdigest(),
              "features": f"{name}@{fversion}", "schema_sha256": schema_sha}
    ident = "|".join([cfg.source, version or detail["etag"], detail["sha256"], detail["features"], schema_sha])
    return Observation(source=cfg.source, dataset=f"{uri}@sha256:{sha.hexdigest()}",
                       features=f"{name}@{fversion}", key=hashlib.sha256(ident.encode()).hexdigest(),
                       detail=detail)


def _claim(cfg: PipelineConfig, obs: Observation) -> bool:
    try:
        with session_scope() as s:
            s.add(PipelineChangeRow(pipeline=cfg.name, change_key=obs.key, source=obs.source,
                                    detail=json.dumps(obs.detail, sort_keys=True),
                                    seen_by=identity.current().name, seen_at=_now()))
    except IntegrityError:
        return False
    return True


@dataclass
class WatchResult:
    changed: bool
    observation: dict[str, Any]
    run: RunView | None = None
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "observation": self.observation,
                "run": None if self.run is None else self.run.to_dict(), "error": self.error}


def watch_once(cfg: PipelineConfig, *, on_status: StatusCallback | None = None, adopt: bool = False) -> WatchResult:
    """Look once: a new object version / ETag of the source or another feature-set schema starts
    exactly one run; an input already seen starts nothing. ``adopt`` records what is there now as
    seen without training (when a watch starts on data that production was already trained on)."""
    result, finish = watch_begin(cfg, adopt=adopt)
    return result if finish is None else finish(on_status)


WatchFinish = Callable[[StatusCallback | None], WatchResult]


def watch_begin(cfg: PipelineConfig, *, adopt: bool = False) -> tuple[WatchResult, WatchFinish | None]:
    """The quick half of ``watch_once``: look, claim the change, and begin its run. Returns the
    result so far and, when a run was begun, what drives it to its end (a server runs that part in
    the background and answers with the run at once)."""
    obs = observe(cfg)
    summary = {"dataset": obs.dataset, "features": obs.features, **obs.detail}
    if not _claim(cfg, obs):
        return WatchResult(changed=False, observation=summary), None
    audit.record(action="pipeline.watch", subject=f"pipeline/{cfg.name}",
                 details={"change": summary, "change_key": obs.key, "adopted": adopt})
    if adopt:
        return WatchResult(changed=False, observation={**summary, "adopted": True}), None
    key = change_key(cfg, _check_dataset(obs.dataset), obs.features)  # the same key a manual run computes
    try:
        started = begin(cfg, dataset=obs.dataset, features=obs.features, trigger="watch", key=key)
    except PipelineFailed as exc:
        return _watch_failed(cfg, obs, summary, key, exc), None
    if started.reused:
        _link(cfg, obs, started.run_id)
        return WatchResult(changed=True, observation=summary, run=started), None

    def finish(on_status: StatusCallback | None = None) -> WatchResult:
        try:
            view = execute(cfg, started, on_status=on_status)
        except PipelineFailed as exc:
            return _watch_failed(cfg, obs, summary, key, exc)
        _link(cfg, obs, view.run_id)
        return WatchResult(changed=True, observation=summary, run=view)

    return WatchResult(changed=True, observation=summary, run=started), finish


def _watch_failed(cfg: PipelineConfig, obs: Observation, summary: dict[str, Any], key: str,
                  exc: PipelineFailed) -> WatchResult:
    # The change is consumed: the same bytes never train twice. Fix the data (a new version)
    # or run by hand with --force after fixing the pipeline.
    last = _latest_for_key(cfg.name, key)
    _link(cfg, obs, last.id if last else None)
    return WatchResult(changed=True, observation=summary, run=RunView.from_row(last) if last else None,
                       error={"step": exc.step, "message": exc.message, "hint": exc.hint,
                              "exit_code": exc.exit_code})


def _latest_for_key(pipeline: str, key: str) -> PipelineRunRow | None:
    with session_scope() as s:
        return s.execute(select(PipelineRunRow).where(PipelineRunRow.pipeline == pipeline,
                                                      PipelineRunRow.change_key == key)
                         .order_by(PipelineRunRow.created_at.desc())).scalars().first()


def _link(cfg: PipelineConfig, obs: Observation, run_id: str | None) -> None:
    with session_scope() as s:
        row = s.execute(select(PipelineChangeRow).where(PipelineChangeRow.pipeline == cfg.name,
                                                        PipelineChangeRow.change_key == obs.key)).scalar_one()
        row.run_id = run_id


def retrain_requests(cfg: PipelineConfig) -> list[dict[str, Any]]:
    """``retrain.required`` events (emitted by the registry when a newer data set or feature set
    than production's lands) that concern this pipeline's model, newest last."""
    out = []
    for event in read_event_log():
        if not str(event.get("type", "")).endswith("retrain.required"):
            continue
        data = event.get("data") or {}
        if (data.get("production") or {}).get("model") == cfg.model:
            out.append(event)
    return out


# ---- read side -------------------------------------------------------------------------------


def get_run(run_id: str) -> RunView:
    with session_scope() as s:
        row = s.get(PipelineRunRow, run_id)
        if row is None:
            recent = s.execute(select(PipelineRunRow.id).order_by(PipelineRunRow.created_at.desc())
                               .limit(5)).scalars().all()
            raise NotFound(f"pipeline run {run_id!r} does not exist",
                           hint=f"recent runs: {', '.join(recent)}" if recent else "start one: mlctl pipeline run NAME")
        view = RunView.from_row(row)
    if view.status == "running" and view.engine == "local":
        view.steps = _live_steps(run_id)
    return view


def _live_steps(run_id: str) -> dict[str, Any]:
    """A running run's step states, from the status files its steps write (the row has them only
    at the end): what ``status`` shows while it runs, here or through a server."""
    status_dir = mlctl_home() / "pipelines" / "runs" / run_id / "status"
    if not status_dir.is_dir():
        return {}
    from control_plane.pipelines.engines import (
        read_status,  # lazy: kfp (~2 s); CLI start-up imports this module
    )

    return read_status(status_dir)


def list_runs(pipeline: str | None = None, limit: int = 50) -> list[RunView]:
    with session_scope() as s:
        q = select(PipelineRunRow).order_by(PipelineRunRow.created_at.desc()).limit(limit)
        if pipeline:
            q = q.where(PipelineRunRow.pipeline == pipeline)
        return [RunView.from_row(r) for r in s.execute(q).scalars()]


def compile_pipeline(cfg: PipelineConfig, *, image: str, out: Path) -> Path:
    from control_plane.pipelines.engines import (
        compile_ir,  # lazy: kfp (~2 s); CLI start-up imports this module
    )

    return compile_ir(cfg, image=image, out=out)


def submit_run(cfg: PipelineConfig, *, dataset: str, features: str | None, image: str, host: str,
               token: str | None, namespace: str | None = None, client: Any = None) -> RunView:
    """Compile and submit to Kubeflow Pipelines; the run is recorded as ``submitted``."""
    from control_plane.pipelines.engines import submit  # lazy: kfp (~2 s); CLI start-up imports this module

    subject = f"pipeline/{cfg.name}"
    dataset = _check_dataset(dataset)
    run_id = f"{cfg.name}-{uuid.uuid4().hex[:12]}"
    package = compile_pipeline(cfg, image=image, out=state_dir("pipelines", "runs", run_id) / "pipeline.yaml")
    info = submit(cfg, package=package, host=host, token=token, dataset=dataset, features=features,
                  run_id=run_id, code_commit=_code_commit(cfg), namespace=namespace, client=client)
    with session_scope() as s:
        row = PipelineRunRow(id=run_id, pipeline=cfg.name, engine="kubeflow", trigger="manual",
                             change_key=change_key(cfg, dataset, features), dataset=dataset, features=features,
                             status="submitted", steps="{}", result=json.dumps(info, default=str),
                             created_by=identity.current().name, created_at=_now())
        s.add(row)
        audit.record(action="pipeline.run", subject=subject,
                     details={"run_id": run_id, "engine": "kubeflow", "host": host, "dataset": dataset,
                              "kfp_run_id": info.get("kfp_run_id")}, session=s)
        s.flush()
        return RunView.from_row(row)
