"""``make demo``: the main job, end to end, on the embedded local environment.

local environment up (AWS emulator + nginx gateway + OpenID provider) → register digits:1 and
digits:2 (a real ONNX classifier trained here; digits:2 by a person logged in through the device
flow) → sign → approve (dev; then for a prod tier: the asserted, the registrant's own and a single
approval refused, two verified approvers allowed) → release v1 → release v2 blue-green while a
steady request stream runs → roll back to v1 → status → continuous training (a new data set version
in the bucket → KFP pipeline → digits:3 signed → released), then a summary (requests served, errors,
switch latency) and clean-up.

State goes to a temporary $MLCTL_HOME that is removed afterwards, unless MLCTL_HOME is set (then
it is kept, and running the demo again reuses it: registering identical bytes, signing with the
same key and approving twice are no-ops). The demo's identities live in their own roles file
(``demo-roles.yaml``), never in the operator's ``roles.yaml``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from control_plane import audit, settings
from control_plane.demo import identity as demo_identity
from control_plane.demo.actors import as_actor
from control_plane.demo.pipeline import segment as pipeline_segment
from control_plane.drivers import gateway
from control_plane.drivers.local import LocalDriver
from control_plane.emulator import aws as emulator
from control_plane.emulator import idp, processes
from control_plane.errors import MlctlError
from control_plane.output import console, err_console
from control_plane.release import ReleaseConfig, engine
from control_plane.release.analysis import Thresholds
from control_plane.release.loadgen import LoadStream, switch_latency
from control_plane.samples import build_sample_model
from control_plane.services import Context, approvals, models, operations, release
from control_plane.services.release import ReleaseHooks
from control_plane.settings import DEFAULT_BLUEPRINT

SERVICE = "digits"
# The settings the demo exports to the processes it starts, for the length of the run (main()).
_DEMO_SETTINGS = ExitStack()
DEMO_ROLES = """# Written by `make demo` (control_plane/demo/run.py) for its own run.
actors:
  dana: [data-scientist]   # registers
  eli: [ml-engineer]       # signs and releases
  amira: [approver]        # approves
  pat: [platform-admin]    # brings the local environment up (and down)
"""


def _say(msg: str) -> None:
    console.print(msg, highlight=False)


def prepare_identities(home: Path) -> Path:
    roles = home / "demo-roles.yaml"
    roles.write_text(DEMO_ROLES)
    # For the demo's child processes too (KFP's step processes register and sign): exported.
    _DEMO_SETTINGS.enter_context(settings.exported_to_children(roles_file=roles))
    return roles


def build_and_register(home: Path, *, quiet: bool = False,
                       registrants: Mapping[str, Context] | None = None) -> dict[str, Path]:
    """Train v1/v2 of the sample model, register them as digits:1/2 (as dana, or as
    ``registrants[number]``) and sign them (as eli)."""
    src: dict[str, Path] = {}
    for number, variant in (("1", "v1"), ("2", "v2")):
        model = build_sample_model(home / "demo-models" / variant, variant=variant)
        src[variant] = model.path
        registrant = (registrants or {}).get(number) or as_actor("dana")
        mv = models.register(registrant, SERVICE, number, model.path, code_commit="0" * 40, datasets=[],
                             metrics={"accuracy": model.accuracy}).version
        signed = models.sign(as_actor("eli"), SERVICE, number).version
        if not quiet:
            _say(
                f"  {mv.ref} registered by {mv.registered_by}, signed by eli: accuracy {model.accuracy:.3f}, "
                f"root {mv.root_digest[:23]}…, key {signed.signature.key_id}"
            )
    return src


def _transition_printer(marks: dict[str, float]) -> Any:
    def on(_rid: str, state: str, phase: str) -> None:
        if phase == "begin" and state == "SWITCHED":
            marks["decision"] = time.monotonic()
        if phase == "done":
            _say(f"    · {state.lower().replace('_', ' ')}")

    return ReleaseHooks(on_transition=on)


def run() -> int:
    created_home = settings.current().home is None
    home = settings.current().home or Path(tempfile.mkdtemp(prefix="mlctl-demo-"))
    # Exported, not only overridden: the model servers, the gateway, the reapers and KFP's step
    # processes the demo starts are child processes and must use the same home and emulator.

    _DEMO_SETTINGS.enter_context(settings.exported_to_children(
        home=home, emulator_endpoint=settings.current().emulator_endpoint or f"http://127.0.0.1:{processes.free_port()}"))

    driver = LocalDriver()
    summary: dict[str, Any] = {"home": str(home)}
    t_start = time.monotonic()
    try:
        _say(f"[bold]1. local environment up[/] ($MLCTL_HOME={home}), as pat (platform-admin)")
        prepare_identities(home)
        up = operations.local_up(as_actor("pat"), DEFAULT_BLUEPRINT)  # what `mlctl --as pat local up` runs
        emu, gw = up.emulator, up.gateway
        _say(f"  AWS emulator {emu.endpoint}, gateway {gw.url}, OpenID provider {up.oidc.issuer}")

        _say("[bold]2. register → sign[/] (sample model: scikit-learn digits → ONNX, trained now)")
        # digits:2's registrant is a verified person (a lead who also approves), so that step 3b can
        # show separation of duties judged on the verified subject.
        noor = demo_identity.device_login("noor", _say)
        src = build_and_register(home, registrants={"2": noor})

        _say(
            "[bold]3. approve[/] (uae-local is a dev environment: the policy needs no approval; recorded anyway)"
        )
        decision = approvals.approve(as_actor("amira"), SERVICE, "2", "uae-local")
        _say(f"  amira approved digits:2 for dev → gate {'allows' if decision.allowed else 'denies'}")

        _say("[bold]3b. verified identities[/] for a prod-tier environment (device-flow logins)")

        demo_identity.show("2", noor, _say)

        eli = as_actor("eli")
        cfg = ReleaseConfig(
            strategy="blue-green",
            analysis_window=3,
            scale_down_delay=120,
            pre_analysis_requests=30,
            thresholds=Thresholds(min_requests=20),
        )
        marks: dict[str, float] = {}
        hooks = _transition_printer(marks)

        leftover = engine.active_release(SERVICE)
        if leftover is not None:  # an earlier demo in this $MLCTL_HOME was interrupted
            _say(f"  rolling back {leftover.id}, left in progress by an interrupted run")
            release.abort(eli, SERVICE, hooks)

        _say("[bold]4. release digits:1[/] (blue-green)")
        # No clients yet, so its post-promotion window has no traffic to judge: don't ask for any.
        first = ReleaseConfig(
            strategy="blue-green",
            analysis_window=1,
            scale_down_delay=120,
            pre_analysis_requests=30,
            thresholds=Thresholds(min_requests=0),
        )
        v1 = release.start(eli, SERVICE, "1", "uae-local", first, hooks=hooks)
        _check(v1.state == "DONE", f"release digits:1 ended {v1.state}: {_reasons(v1)}")
        body = json.loads((src["v1"] / "sample_input.json").read_text())

        _say("[bold]5. release digits:2 blue-green[/] while a steady stream of requests runs (~200/s)")
        load = LoadStream(
            gateway.url(), SERVICE, body, rate=200, threads=6, max_requests=100_000, max_seconds=300
        ).start()
        load.wait_for(400, timeout=30)
        v2 = release.start(eli, SERVICE, "2", "uae-local", cfg, hooks=hooks)
        _check(v2.state == "DONE", f"release digits:2 ended {v2.state}: {_reasons(v2)}")
        green = driver.server_address(SERVICE, _colour(v2))
        switch_v2 = marks.get("decision")
        load.wait_for(load.stats.sent + 400, timeout=30)

        _say("[bold]6. roll back to digits:1[/] (instant: its colour is still up)")
        marks.clear()
        rb = release.rollback(eli, SERVICE, hooks)  # the same rollback as `mlctl release rollback`
        _check(rb.state == "DONE", f"rollback ended {rb.state}: {_reasons(rb)}")
        blue = driver.server_address(SERVICE, _colour(rb))
        switch_rb = marks.get("decision")
        load.wait_for(load.stats.sent + 400, timeout=30)
        stats = load.stop()

        _say("[bold]7. status[/]")
        view = release.status(eli, SERVICE).data or {}
        _say(
            f"  {SERVICE}: live {view['live']['version']} on {view['live']['colour']}, weights {view['weights']}, "
            f"release {view['release']} {view['state']}"
        )
        summary["pipeline"] = pipeline_segment(home, eli, hooks)  # continuous training (control_plane/demo/pipeline.py)
        lat_v2 = switch_latency(stats.samples, switch_v2, green, until=switch_rb) if switch_v2 else None
        lat_rb = switch_latency(stats.samples, switch_rb, blue) if switch_rb else None
        report = audit.verify()
        summary.update(
            {
                "requests": stats.sent,
                "served": stats.ok,
                "errors": stats.failed,
                "rate_per_s": round(load.achieved_rate, 1),
                "switch_latency_ms": {"v1→v2": _ms(lat_v2), "rollback v2→v1": _ms(lat_rb)},
                "audit_entries": report.entries,
                "audit_ok": report.ok,
            }
        )
        _say("\n[bold]summary[/]")
        _say(
            f"  requests through the gateway: {stats.sent} at {load.achieved_rate:.0f}/s; "
            f"served {stats.ok}; errors {stats.failed}"
        )
        _say(
            f"  switch latency (decision → every request answered by the new colour): "
            f"v1→v2 {_ms(lat_v2)} ms, rollback {_ms(lat_rb)} ms"
        )
        _say(f"  audit trail: {report.entries} entries, {'intact' if report.ok else 'BROKEN'}")
        _say(f"  total {time.monotonic() - t_start:.0f} s")
        _check(stats.failed == 0, f"{stats.failed} requests failed: {stats.errors[:3]}")
        _check(report.ok, f"audit trail does not verify: {report.problems}")
        return 0
    finally:
        _say("[bold]clean-up[/]: model servers, gateway, emulator, OpenID provider")
        try:
            operations.local_down(as_actor("pat"))  # what `mlctl --as pat local down` runs
        except Exception:  # the demo failed before its roles existed: stop what runs, all the same

            driver.stop_all()
            gateway.down()
            emulator.down()
            idp.down()
        if created_home:
            shutil.rmtree(home, ignore_errors=True)


def _reasons(view: Any) -> list[str]:
    return list((view.data or {}).get("reasons") or [])


def _colour(view: Any) -> str:
    return str((view.data or {}).get("colour"))


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f}"


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise MlctlError(
            f"demo failed: {message}",
            hint="see the logs under $MLCTL_HOME/logs (set MLCTL_HOME to keep them)",
        )


def main() -> None:
    try:
        with _DEMO_SETTINGS:
            code = run()
        sys.exit(code)
    except MlctlError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err_console.print(f"  [bold]fix:[/] {exc.hint}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
