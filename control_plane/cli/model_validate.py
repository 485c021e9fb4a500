"""``mlctl model validate NAME:V --env ENV``: the validation gate from the command line.

``validate`` is a plain typer command function; the ``model`` group registers it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from control_plane.errors import MlctlError, PolicyViolation
from control_plane.output import OutputFormat, OutputOption, console, emit_json, table


def validate(
    ref: Annotated[str | None, typer.Argument(help="NAME:VERSION of a registered model.")] = None,
    env: Annotated[
        str | None, typer.Option("--env", "-e", help="Environment whose production version is the baseline.")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Baseline NAME:VERSION (default: production in --env).")
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="Validate a model directory instead of a registered version (holds model.onnx and eval.npz)."
        ),
    ] = None,
    baseline_dir: Annotated[
        Path | None, typer.Option(help="With --model-dir: the baseline model directory.")
    ] = None,
    eval_set: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            help="With --model-dir: evaluation set (.npz with X, y; or a table with a label column).",
        ),
    ] = None,
    schema: Annotated[
        Path | None, typer.Option(help="With --model-dir: schema JSON recorded at registration.")
    ] = None,
    accuracy_tolerance: Annotated[float, typer.Option(help="Allowed accuracy drop vs the baseline.")] = 0.02,
    f1_tolerance: Annotated[float, typer.Option(help="Allowed macro-F1 drop vs the baseline.")] = 0.02,
    min_accuracy: Annotated[float | None, typer.Option(help="Absolute accuracy floor.")] = None,
    min_stability: Annotated[
        float, typer.Option(help="Least share of rows keeping their label under noise.")
    ] = 0.95,
    stability_eps: Annotated[
        float, typer.Option(help="Noise bound, as a fraction of each feature's range.")
    ] = 0.01,
    fgsm_eps: Annotated[float, typer.Option(help="FGSM step, as a fraction of each feature's range.")] = 0.03,
    max_fgsm_drop: Annotated[float, typer.Option(help="Largest allowed accuracy drop under FGSM.")] = 0.15,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Gate a model version: metrics vs baseline, robustness, and data checks. Exit 4 when it fails."""
    from control_plane.validate import gate

    policy = gate.ValidationPolicy(
        accuracy_tolerance=accuracy_tolerance,
        f1_tolerance=f1_tolerance,
        min_accuracy=min_accuracy,
        stability_eps=stability_eps,
        min_stability=min_stability,
        fgsm_eps=fgsm_eps,
        max_fgsm_drop=max_fgsm_drop,
    )
    if model_dir is not None:
        if ref is not None:
            raise MlctlError(
                "give NAME:VERSION or --model-dir, not both", hint="drop one of them", exit_code=2
            )
        schema_doc = None
        if schema is not None:
            try:
                schema_doc = json.loads(schema.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise MlctlError(
                    f"--schema {schema}: cannot read JSON ({exc})",
                    hint="give the schema JSON file",
                    exit_code=2,
                ) from None
        cand = gate.Candidate(ref=str(model_dir), model_dir=model_dir, eval_path=eval_set, schema=schema_doc)
        base = gate.Candidate(ref=str(baseline_dir), model_dir=baseline_dir) if baseline_dir else None
        report = gate.validate_paths(cand, base, policy=policy, environment=env)
        gate.record_decision(report)
    else:
        if ref is None:
            raise MlctlError(
                "which model? give NAME:VERSION (or --model-dir DIR)",
                hint="mlctl model validate fraud:3 --env prod",
                exit_code=2,
            )
        if env is None:
            raise MlctlError(
                "--env is required with NAME:VERSION",
                hint="--env prod (its production version is the baseline)",
                exit_code=2,
            )
        name, version = gate.parse_ref(ref)
        report = gate.validate_version(name, version, env, baseline=baseline, policy=policy)
    if output is OutputFormat.json:
        emit_json(report.to_dict())
    else:
        rows = [
            (
                c.name,
                c.status.upper(),
                "" if c.value is None else f"{c.value:.4g}",
                "" if c.threshold is None else f"{c.threshold:.4g}",
                c.detail,
            )
            for c in report.checks
        ]
        console.print(
            table(
                f"Validation of {report.candidate}"
                + (f" against {report.baseline}" if report.baseline else " (no baseline)"),
                ["check", "status", "value", "threshold", "detail"],
                rows,
            )
        )
        console.print("[green]PASS[/]" if report.passed else "[bold red]FAIL[/]")
    if not report.passed:
        raise PolicyViolation(
            f"validation gate failed for {report.candidate}: " + ", ".join(c.name for c in report.failed),
            hint="fix the model (or the evaluation data) and register a new version; tolerances are flags "
            "(--accuracy-tolerance, --min-stability, ...) if the policy allows",
        )
