"""``mlctl sample DIR``: the README tour's inputs, written locally with nothing downloaded.

Two versions of a real ONNX digits classifier (scikit-learn's bundled 8x8 digits, trained now),
a reference table (``train.csv``, the training split) and a current table (``today.csv``, held-out
rows made brighter: it drifts on purpose), and the digests the tour's commands need.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from control_plane.errors import UsageError
from control_plane.output import OutputFormat, OutputOption, console, emit_json, info


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sample(
    directory: Annotated[Path, typer.Argument(help="Where to write the sample (created; must be empty or absent).")],
    shell: Annotated[bool, typer.Option(
        "--shell", help="Print `export NAME=value` lines for `eval` instead of a summary.")] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Write the tour's sample: digits-v1/ and digits-v2/ (ONNX models), train.csv and today.csv,
    and print their digests (sha256 of each table, root digest of each model directory).

    Example:

        eval "$(mlctl sample ./tour --shell)"   # sets SAMPLE_DIR, TRAIN_SHA256, TODAY_SHA256
        mlctl --as eli model register digits --version 1 --path ./tour/digits-v1 \\
            --dataset "file://$SAMPLE_DIR/train.csv@sha256:$TRAIN_SHA256"
    """
    from control_plane.samples import build_sample_model, write_sample_tables
    from control_plane.signing import model_digests

    directory = directory.expanduser()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(
            f"{directory} already exists and is not an empty directory",
            hint="pass a new directory, e.g. mlctl sample ./tour (the sample never overwrites files)",
        )
    info(f"training the sample digits classifier (v1, v2) into {directory} …")
    models: dict[str, Any] = {}
    for variant in ("v1", "v2"):
        model = build_sample_model(directory / f"digits-{variant}", variant=variant)
        root_hex, files = model_digests(model.path)
        models[variant] = {
            "path": str(model.path.resolve()),
            "root_digest": f"sha256:{root_hex}",
            "files": len(files),
            "accuracy": model.accuracy,
        }
    reference, current = write_sample_tables(directory)
    tables = {
        "reference": {"path": str(reference.resolve()), "sha256": _sha256(reference)},
        "current": {"path": str(current.resolve()), "sha256": _sha256(current)},
    }
    view = {"directory": str(directory.resolve()), "models": models, "tables": tables}
    if shell:
        lines: dict[str, str] = {
            "SAMPLE_DIR": str(view["directory"]),
            "TRAIN_SHA256": tables["reference"]["sha256"],
            "TODAY_SHA256": tables["current"]["sha256"],
        }
        for key, value in lines.items():
            typer.echo(f"export {key}={shlex.quote(value)}")
        return
    if output is OutputFormat.json:
        emit_json(view)
        return
    for m in models.values():
        console.print(f"model  {m['path']}  root {m['root_digest']}  accuracy {m['accuracy']:.3f}",
                      highlight=False, markup=False)
    for t in tables.values():
        console.print(f"table  {t['path']}  sha256:{t['sha256']}", highlight=False, markup=False)
    console.print(
        f"next: mlctl model register digits --version 1 --path {models['v1']['path']} "
        f"--dataset file://{tables['reference']['path']}@sha256:{tables['reference']['sha256']}",
        highlight=False, markup=False,
    )


COMMANDS = {"sample": sample}
