"""Smoke tests over the V2 protocol, against one colour directly (before it gets traffic).

1. ``GET /v2/models/{m}/ready`` answers ready;
2. ``POST /v2/models/{m}/infer`` with the model's recorded sample input (``sample_input.json``
   in the model directory) answers 200 within the latency bound;
3. every output the model card (``model.json``) declares comes back with the declared shape
   (``-1`` matches the request's batch size).

A model directory without a recorded sample input gets step 1 and a metadata check only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from control_plane.emulator.ca import httpx_verify


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    latency_seconds: float | None = None


def _declared_outputs(model_dir: Path) -> list[dict[str, Any]]:
    try:
        card = json.loads((model_dir / "model.json").read_text())
    except (FileNotFoundError, ValueError):
        return []
    outputs = card.get("outputs") or []
    return [o for o in outputs if isinstance(o, dict) and "name" in o]


def run(base_url: str, model: str, model_dir: Path | None, *, latency_bound: float = 1.0) -> SmokeResult:
    reasons: list[str] = []
    with httpx.Client(
        base_url=base_url, timeout=max(5.0, latency_bound * 2), trust_env=False, verify=httpx_verify(base_url)
    ) as client:
        try:
            ready = client.get(f"/v2/models/{model}/ready")
            if ready.status_code != 200 or not ready.json().get("ready"):
                return SmokeResult(False, [f"/v2/models/{model}/ready answered HTTP {ready.status_code}"])
            sample = model_dir / "sample_input.json" if model_dir else None
            if sample is None or not sample.exists():
                meta = client.get(f"/v2/models/{model}")
                ok = meta.status_code == 200
                return SmokeResult(ok, [] if ok else [f"metadata answered HTTP {meta.status_code}"])
            body = json.loads(sample.read_text())
            start = time.perf_counter()
            resp = client.post(f"/v2/models/{model}/infer", json=body)
            latency = time.perf_counter() - start
        except (httpx.HTTPError, ValueError) as exc:
            return SmokeResult(False, [f"V2 call failed: {type(exc).__name__}: {exc}"])
    if resp.status_code != 200:
        return SmokeResult(False, [f"infer answered HTTP {resp.status_code}: {resp.text[:200]}"], latency)
    if latency > latency_bound:
        reasons.append(f"infer took {latency * 1000:.0f} ms > bound {latency_bound * 1000:.0f} ms")
    outputs = {o.get("name"): o for o in resp.json().get("outputs", [])}
    batch = (body.get("inputs") or [{}])[0].get("shape", [1])[0]
    for declared in _declared_outputs(model_dir) if model_dir else []:
        got = outputs.get(declared["name"])
        if got is None:
            reasons.append(f"output {declared['name']!r} missing from the answer")
            continue
        want = [batch if d == -1 else d for d in declared.get("shape", [])]
        if want and list(got.get("shape", [])) != want:
            reasons.append(
                f"output {declared['name']!r} has shape {got.get('shape')}, the model card says {want}"
            )
    if not outputs:
        reasons.append("infer answered with no outputs")
    return SmokeResult(not reasons, reasons, latency)


def load(base_url: str, model: str, model_dir: Path | None, count: int, *, timeout: float = 5.0) -> int:
    """Send ``count`` recorded sample requests to one colour (pre-promotion analysis traffic).

    Returns how many answered 200; the analysis reads the server's own metrics, not this count.
    """
    sample = model_dir / "sample_input.json" if model_dir else None
    if sample is None or not sample.exists():
        return 0
    body = json.loads(sample.read_text())
    ok = 0
    with httpx.Client(
        base_url=base_url, timeout=timeout, trust_env=False, verify=httpx_verify(base_url)
    ) as client:
        for _ in range(count):
            try:
                ok += client.post(f"/v2/models/{model}/infer", json=body).status_code == 200
            except httpx.HTTPError:
                continue
    return ok
