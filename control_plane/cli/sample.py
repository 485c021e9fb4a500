"""``mlctl sample DIR``: the README tour's inputs, written locally with nothing downloaded.

Two versions of a real ONNX digits classifier (scikit-learn's bundled 8x8 digits, trained now),
a reference table (``train.csv``, the training split) and a current table (``today.csv``, held-out
rows made brighter: it drifts on purpose), and the digests the tour's commands need.
The verb is ``services.operations.sample``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._show import show
from control_plane.output import OutputFormat, OutputOption, info
from control_plane.services import Context, operations


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
    view = operations.sample(Context(), directory, note=info)
    if shell:
        for line in view.shell_lines():
            typer.echo(line)
        return
    show(view, output)


COMMANDS = {"sample": sample}
