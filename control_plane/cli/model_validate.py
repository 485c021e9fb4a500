"""``mlctl model validate NAME:V --env ENV``: the validation gate from the command line.

``validate`` is a plain typer command function; the ``model`` group registers it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._served_names import served_env
from control_plane.client import remote
from control_plane.errors import UsageError
from control_plane.output import OutputFormat, OutputOption, render


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
    from control_plane.services import Context
    from control_plane.services import models as service
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
    api = remote()
    if api is not None:
        if model_dir is not None or baseline_dir is not None or eval_set is not None or schema is not None:
            raise UsageError("with MLCTL_SERVER, mlctl model validate gates a version in the server's registry: "
                             "NAME:VERSION --env ENV; --model-dir, --baseline-dir, --eval and --schema are files "
                             "on this machine", hint="unset MLCTL_SERVER to validate directories here, or "
                             "register the model and validate NAME:VERSION")
        if ref is None:
            raise UsageError("which model? give NAME:VERSION", hint="mlctl model validate fraud:3 --env prod")
        view = api.models.validate(ref, env=served_env(env), baseline=baseline, policy=dataclasses.asdict(policy))
    else:
        view = service.validate(Context(), ref, env=env, baseline=baseline, model_dir=model_dir,
                                baseline_dir=baseline_dir, eval_set=eval_set, schema=schema, policy=policy)
    render(view, output)
    failure = view.failure()
    if failure is not None:
        raise failure
