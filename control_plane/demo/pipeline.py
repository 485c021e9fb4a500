"""``make demo``'s pipeline segment: a new data set version lands in the environment's bucket →
``watch`` starts one KFP local run → a signed version → the release engine ships it.

Called once from ``control_plane/demo/run.py`` with the demo's release engine, after its own releases.
(The refusals — a breaking schema change, PII, a failing unit test — are in tests/pipelines, to keep
the demo short.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from blueprints import load_environment
from control_plane.emulator.aws import client_kwargs
from control_plane.errors import MlctlError
from control_plane.output import console
from control_plane.pipelines import load_config, watch_once
from control_plane.release import ReleaseConfig
from control_plane.release.analysis import Thresholds
from control_plane.samples.pipeline import write_datasets
from control_plane.services import release
from control_plane.settings import DEFAULT_BLUEPRINT

SERVICE = "digits"


def _say(msg: str) -> None:
    console.print(msg, highlight=False)


def _printer() -> Any:
    # The local engine keeps KFP's chatter off sys.stdout while it runs; progress goes to the
    # process's real stdout.
    out = Console(file=sys.__stdout__, highlight=False)
    seen: dict[str, str] = {}

    def on_status(steps: dict[str, dict[str, Any]]) -> None:
        for key, st in sorted(steps.items(), key=lambda kv: kv[1].get("started", 0)):
            state = str(st.get("state"))
            if seen.get(key) != state and state in ("done", "failed"):
                secs = st.get("finished", 0) - st.get("started", 0)
                out.print(f"    · {key} {state} ({secs:.1f} s)")
            seen[key] = state

    return on_status


@contextmanager
def _children_act_as(ctx: Any) -> Iterator[None]:
    """Run pipeline verbs as ``ctx``'s actor (the local engine passes an asserted actor on to the
    step processes that register and sign)."""
    with ctx.acting():
        yield


def segment(home: Path, ctx: Any, hooks: Any = None) -> dict[str, Any]:
    """``ctx``: the demo's Context for eli (the ml-engineer who runs pipelines and releases);
    ``hooks``: the release progress printer."""
    import boto3

    _say("[bold]8. continuous training[/] (new data in the bucket → KFP pipeline → signed version → release)")
    cfg = load_config("digits")
    env = load_environment(DEFAULT_BLUEPRINT)
    s3 = boto3.client("s3", **client_kwargs(env))
    bucket, key = env.registries.model_bucket, cfg.source.split("/", 3)[3] if cfg.source else ""
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": env.region})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    data = write_datasets(home / "demo-data")

    s3.put_object(Bucket=bucket, Key=key, Body=data["v1"].read_bytes())
    with _children_act_as(ctx):
        watch_once(cfg, adopt=True)
    _say(f"  watching {cfg.source}: v1 (what production was trained on) adopted, nothing trained")

    s3.put_object(Bucket=bucket, Key=key, Body=data["v2"].read_bytes())
    _say("  data set v2 landed (1,797 rows instead of 1,200) → pipeline:")
    with _children_act_as(ctx):
        result = watch_once(cfg, on_status=_printer())
    if result.run is None or result.run.registered is None:
        raise MlctlError(f"demo pipeline did not register a version: {result.error}",
                         hint="see the run log under $MLCTL_HOME/pipelines/runs")
    ref = result.run.registered
    version = ref.split(":", 1)[1]
    _say(f"  registered and signed {ref} (run {result.run.run_id}, data {result.observation['sha256'][:12]}…)")
    with _children_act_as(ctx):
        again = watch_once(cfg)
    _say(f"  watch again: {'changed?!' if again.changed else 'no change, nothing trained'}")

    ship = ReleaseConfig(strategy="blue-green", analysis_window=1, scale_down_delay=120,
                         pre_analysis_requests=30, thresholds=Thresholds(min_requests=0))
    rel = release.start(ctx, SERVICE, version, "uae-local", ship, hooks=hooks)
    _say(f"  release {ref}: {rel.state}")
    if rel.state != "DONE":
        reasons = (rel.data or {}).get("reasons")
        raise MlctlError(f"release of {ref} ended {rel.state}: {reasons}", hint="see $MLCTL_HOME/logs")
    return {"registered": ref, "run_id": result.run.run_id, "released": rel.state}
