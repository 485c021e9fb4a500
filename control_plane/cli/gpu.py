"""``mlctl gpu``: GPU preflight over NVML (verb: ``services.operations.gpu_preflight``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._show import show
from control_plane.gpu import NO_GPU_EXIT_CODE
from control_plane.output import OutputFormat, OutputOption
from control_plane.services import Context, operations

app = typer.Typer(help="GPU checks: drivers, devices, compute capability, MIG, ECC, precision.", no_args_is_help=True)


@app.command(
    help=(
        "Read the GPUs of this node through NVML: driver and CUDA versions, devices, compute capability, "
        "memory, MIG and ECC modes, and the precision to build TensorRT engines for. With --blueprint, also "
        "check that these GPUs match the blueprint's GPU pool (an engine is specific to its compute "
        f"capability).\n\nExit codes: 0 ok; {NO_GPU_EXIT_CODE} no GPU or no NVML on this machine; "
        "4 the GPUs do not match the pool."
    )
)
def preflight(
    blueprint: Annotated[
        Path | None, typer.Option("--blueprint", "-b", help="Blueprint with the target GPU pool.")
    ] = None,
    pool: Annotated[str | None, typer.Option("--pool", help="GPU pool name (default: the first).")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    show(operations.gpu_preflight(Context(), blueprint=blueprint, pool=pool), output)
