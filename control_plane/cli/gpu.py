"""``mlctl gpu``: GPU preflight over NVML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.gpu import NO_GPU_EXIT_CODE, check_engine_compatible, probe
from control_plane.output import OutputFormat, OutputOption, console, emit_json, info, table

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
    report = probe()
    pool_check: dict[str, str] | None = None
    if blueprint is not None:
        from blueprints import load_environment
        from blueprints.gpu_catalog import gpu_info

        env = load_environment(blueprint)
        pools = [p for p in env.cluster.gpu_pools if pool in (None, p.name)]
        if not pools:
            from control_plane.errors import MlctlError

            raise MlctlError(f"no GPU pool '{pool or '(any)'}' in {blueprint}", hint="check cluster.gpu_pools")
        model, cc = gpu_info(str(env.cloud), pools[0].instance_type) or ("unknown", "unknown")
        for device in report.devices:
            check_engine_compatible(device.compute_capability, cc, what=f"GPU {device.index} ({device.name})")
        pool_check = {"pool": pools[0].name, "gpu_model": model, "compute_capability": cc}
    if output is OutputFormat.json:
        emit_json({**report.as_dict(), "pool_check": pool_check})
        return
    console.print(
        f"driver {report.driver_version}, CUDA {report.cuda_driver_version}, NVML {report.nvml_version}"
    )
    console.print(
        table(
            "GPUs",
            ["#", "name", "compute cap.", "memory (MiB)", "MIG", "ECC", "recommended precision"],
            [
                (d.index, d.name, d.compute_capability, f"{d.memory_free_mib}/{d.memory_total_mib}",
                 d.mig_mode, d.ecc_mode, d.recommended_precision)
                for d in report.devices
            ],
        )
    )
    for warning in report.warnings:
        info(f"[yellow]warning:[/] {warning}")
    if pool_check:
        console.print(f"matches pool {pool_check['pool']} ({pool_check['gpu_model']}, cc {pool_check['compute_capability']})")
