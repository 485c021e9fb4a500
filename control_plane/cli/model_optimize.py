"""``mlctl model optimize``: build a Triton repository (TensorRT or ONNX) from a signed version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._served_names import served_blueprint, served_env
from control_plane.client import remote
from control_plane.errors import UsageError
from control_plane.output import OutputFormat, OutputOption, info, render
from control_plane.settings import DEFAULT_BLUEPRINT


def optimize(
    ref: Annotated[str, typer.Argument(metavar="NAME:V", help="The registered, signed ONNX model version.")],
    env_name: Annotated[str | None, typer.Option("--env", help="Environment (in a multi-cloud blueprint).")] = None,
    blueprint: Annotated[Path, typer.Option("--blueprint", "-b", help="Blueprint of the target environment.")] = (
        DEFAULT_BLUEPRINT
    ),
    target: Annotated[str, typer.Option("--target", help="tensorrt (GPU engine) or onnx (ONNX Runtime in Triton).")] = (
        "tensorrt"
    ),
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 or int8 (int8 needs calibration data).")] = (
        "fp16"
    ),
    signer: Annotated[str, typer.Option("--signer", help="Key that signs the derived version: local, kms, pkcs11.")] = (
        "local"
    ),
    kubeconfig: Annotated[Path | None, typer.Option("--kubeconfig", help="Cluster for the build Job.")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds to wait for the build Job.")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Optimize NAME:V for the environment's GPUs and register the result as a derived, signed version.

    TensorRT engines are built where TensorRT exists: in process when `import tensorrt` works, else as
    a Kubernetes Job on the environment's GPU pool (NVIDIA's TensorRT image pinned by digest in
    $MLCTL_HOME/optimize.yaml). The engine must pass the parity gate against the source model under
    ONNX Runtime, or it is not registered. See docs/optimize.md.
    """
    from blueprints import load_environment
    from control_plane.services import Context
    from control_plane.services import models as service

    api = remote()
    if api is not None:  # a build can outlast a request: the server runs it, this follows it
        if kubeconfig is not None:
            raise UsageError("with MLCTL_SERVER, the build runs on the server's cluster: --kubeconfig is a file "
                             "on this machine", hint="drop --kubeconfig (or unset MLCTL_SERVER to build from here)")
        # names the server has, never a file here (the default: the local default's environment, as before)
        named, in_blueprint = served_env(env_name), served_blueprint(blueprint)
        served = named or in_blueprint or load_environment(DEFAULT_BLUEPRINT).name
        render(api.models.optimize(ref, env=served, target=target, precision=precision, signer=signer,
                                   timeout=timeout, progress=lambda m: info(f"optimize: {m}")), output)
        return
    env = load_environment(blueprint, env_name)
    api_client = None
    if kubeconfig is not None:
        from kubernetes import config as kconfig

        api_client = kconfig.new_client_from_config(str(kubeconfig))
    view = service.optimize(Context(), ref, environment=env, target=target, precision=precision, signer=signer,
                            kube_api_client=api_client, timeout=timeout, progress=lambda m: info(f"optimize: {m}"))
    render(view, output)
