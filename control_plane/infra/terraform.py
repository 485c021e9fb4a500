"""Running terraform in a synthesized stack directory, non-interactively and offline-capable.

- Providers come from the filesystem mirror named by ``MLCTL_TF_PROVIDER_MIRROR`` when it is set
  (terraform links the unpacked provider from the mirror, so the 700 MB binary is not copied per
  stack); otherwise from the registry, through a plugin cache shared under ``$MLCTL_HOME``.
- A local (emulator) environment gets moto's dummy credentials; production keeps the caller's
  environment (profile, SSO) untouched.
- Any failure becomes an ``InfraError`` carrying the tail of terraform's output and a fix.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.emulator.aws import DUMMY_CREDENTIALS
from control_plane.errors import InfraError, ToolMissing
from control_plane.settings import current as settings
from control_plane.settings import state_dir

MIRROR_ENV = "MLCTL_TF_PROVIDER_MIRROR"
MIRRORED_PROVIDERS = ("registry.terraform.io/hashicorp/aws",)
_TAIL_LINES = 25


def terraform_binary() -> str:
    found = shutil.which("terraform")
    if not found:
        raise ToolMissing(
            "terraform is not on PATH",
            hint="install terraform >= 1.10 (https://developer.hashicorp.com/terraform/install)",
        )
    return found


def cli_config() -> Path:
    """Write the terraform CLI configuration under $MLCTL_HOME and return its path."""
    mirror = settings().tf_provider_mirror or ""
    lines = ["# written by mlctl; do not edit (regenerated on every run)"]
    if mirror:
        if not Path(mirror, "registry.terraform.io").is_dir():
            raise InfraError(
                f"{MIRROR_ENV}={mirror} holds no registry.terraform.io directory",
                hint="point it at the directory that contains registry.terraform.io/, or unset it to use "
                "the registry (scripts/tf-mirror.sh finds the mirror on this machine)",
            )
        excluded = ", ".join(json.dumps(p) for p in MIRRORED_PROVIDERS)
        lines += [
            "provider_installation {",
            f"  filesystem_mirror {{\n    path    = {json.dumps(mirror)}\n    include = [{excluded}]\n  }}",
            f"  direct {{\n    exclude = [{excluded}]\n  }}",
            "}",
        ]
    else:
        lines.append(f"plugin_cache_dir = {json.dumps(str(state_dir('terraform', 'plugin-cache')))}")
    path = state_dir("terraform") / "cli.tfrc"
    path.write_text("\n".join(lines) + "\n")
    return path


def terraform_env(*, local: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TF_CLI_CONFIG_FILE=str(cli_config()),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",  # no call-home to HashiCorp from regulated networks
    )
    if local:
        env.update(DUMMY_CREDENTIALS)
        env.pop("AWS_PROFILE", None)
    return env


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


class Terraform:
    """terraform in one working directory (one synthesized stack)."""

    def __init__(self, directory: Path, *, local: bool, stack: str | None = None) -> None:
        self.directory = directory
        self.local = local
        self.stack = stack or directory.name
        self._bin = terraform_binary()

    def run(self, *args: str, ok_codes: tuple[int, ...] = (0,), step: str | None = None) -> Result:
        proc = subprocess.run(
            [self._bin, *args],
            cwd=self.directory,
            env=terraform_env(local=self.local),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode not in ok_codes:
            step = step or args[0]
            out = (proc.stdout.strip() + "\n" + proc.stderr.strip()).strip()  # errors last: the tail keeps them
            tail = "\n".join(out.splitlines()[-_TAIL_LINES:])
            raise InfraError(
                f"terraform {step} failed for stack {self.stack} (exit {proc.returncode}):\n{tail}",
                hint=_hint(out, self.local, self.directory),
            )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def init(self, *, backend: bool = True) -> None:
        args = ["init", "-input=false", "-no-color", "-reconfigure"]
        if not backend:
            args.append("-backend=false")
        self.run(*args)

    def validate(self) -> dict[str, Any]:
        res = self.run("validate", "-json", "-no-color", ok_codes=(0, 1))
        data: dict[str, Any] = json.loads(res.stdout)
        return data

    def plan(self, out: str = "mlctl.plan", *, refresh_only: bool = False) -> bool:
        """Plan into ``out``; True when the plan has changes (``-detailed-exitcode`` 2)."""
        args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={out}"]
        if refresh_only:
            args.append("-refresh-only")
        return self.run(*args, ok_codes=(0, 2)).returncode == 2

    def show_plan(self, planfile: str = "mlctl.plan") -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.run("show", "-json", "-no-color", planfile, step="show").stdout)
        return data

    def apply(self, planfile: str | None = None) -> None:
        if planfile:
            self.run("apply", "-input=false", "-no-color", planfile)
        else:
            self.run("apply", "-input=false", "-no-color", "-auto-approve")

    def destroy(self) -> None:
        self.run("destroy", "-input=false", "-no-color", "-auto-approve")

    def state_resources(self) -> list[str]:
        res = self.run("state", "list", ok_codes=(0, 1), step="state list")
        return [line for line in res.stdout.splitlines() if line.strip()]


def _hint(output: str, local: bool, directory: Path) -> str:
    text = output.lower()
    if "nosuchbucket" in text or ("s3 bucket" in text and "does not exist" in text):
        return "create the state backend first: `mlctl infra bootstrap --blueprint FILE`"
    if "error acquiring the state lock" in text:
        return (f"another run holds the lock, or one was killed: if none is running, "
                f"`terraform force-unlock <ID>` in {directory}")
    if "is not attachable" in text and local:
        return ("the emulator has no AWS managed IAM policies: start moto with "
                "MOTO_IAM_LOAD_MANAGED_POLICIES=true in its environment")
    if "connection refused" in text and local:
        return "start the AWS emulator: `mlctl local up` (or set MLCTL_EMULATOR_ENDPOINT)"
    if "failed to query available provider packages" in text or "could not retrieve the list" in text:
        return (
            f"terraform cannot reach the provider; set {MIRROR_ENV} to a filesystem mirror "
            "(scripts/tf-mirror.sh) or allow access to registry.terraform.io"
        )
    if "no valid credential" in text or "expiredtoken" in text:
        return "log in to AWS (aws sso login / AWS_PROFILE) for the blueprint's account"
    return f"read the terraform output above; the stack's files are in {directory}"
