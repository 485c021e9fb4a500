"""`mlctl` loads a command group's module only when that group runs, shows its help or completes
(control_plane/cli/__init__.py, docs/cli.md), and says exactly what it said when every group was
imported up front. Not timed: bench/cli_startup.py measures the start-up.

Each check runs in a fresh interpreter (what `import control_plane.cli` loads is per process):
one as `mlctl` starts (lazy), one that imports every group and walks the whole tree first and lists
the real commands instead of COMMAND_GROUPS' summaries (eager); both must print the same text.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from control_plane import cli
from tests.cli_runner import COLUMNS, REPO

# Packages none of `mlctl --help`, `mlctl`, `mlctl --version` and `mlctl <TAB>` may load.
HEAVY = ("pandas", "kubernetes", "sqlalchemy", "kfp", "pulumi", "cdktf")

NAMES = [name for _, name, _ in cli.COMMAND_GROUPS]
# Besides each top-level name's help: a few subcommands' (built through their lazily loaded group).
DEEPER = [["release", "status", "--help"], ["audit", "verify", "--help"], ["model", "register", "--help"]]

_SCRIPT = """
import contextlib, importlib, io, json, os, sys
sys.argv[0] = "mlctl"  # the completion variable is named after the program: _MLCTL_COMPLETE
import control_plane.cli as cli

HEAVY, NAMES, DEEPER, EAGER = {heavy!r}, {names!r}, {deeper!r}, {eager!r}


def run(args, **env):
    out, err, code = io.StringIO(), io.StringIO(), 0
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for key in env:
            del os.environ[key]
    return [code, out.getvalue(), err.getvalue()]


def complete(shell, line):
    return run([], _MLCTL_COMPLETE="complete_" + shell, _TYPER_COMPLETE_ARGS=line,
               _TYPER_COMPLETE_WORD_TO_COMPLETE=line.split(" ")[-1], _TYPER_COMPLETE_FISH_ACTION="get-args")


if EAGER:  # every group imported and built first; the root then lists the real commands
    import typer.main
    for module, _, _ in cli.COMMAND_GROUPS:
        importlib.import_module("control_plane.cli." + module)
    root = typer.main.get_command(cli.app)
    assert len(dict(root.commands.items())) == len(NAMES)
    cli._SUMMARY.clear()

seen = {{}}
seen["mlctl --help"] = run(["--help"])
seen["mlctl -h"] = run(["-h"])
seen["mlctl"] = run([])
seen["mlctl --version"] = run(["--version"])
seen["mlctl nope"] = run(["nope"])
seen["mlctl aduit (a typo)"] = run(["aduit"])
for shell in ("zsh", "fish"):
    for line in ("mlctl ", "mlctl re"):
        seen[f"complete {{shell}} {{line!r}}"] = complete(shell, line)
seen["complete bash 'mlctl '"] = run([], _MLCTL_COMPLETE="complete_bash", COMP_WORDS="mlctl ", COMP_CWORD="1")
loaded = sorted(m for m in HEAVY if m in sys.modules)
seen["complete zsh 'mlctl release st'"] = complete("zsh", "mlctl release st")  # loads the release group
for name in NAMES:
    seen[f"mlctl {{name}} --help"] = run([name, "--help"])
for args in DEEPER:
    seen["mlctl " + " ".join(args)] = run(args)
print(json.dumps({{"loaded": loaded, "seen": seen}}))
"""


def _run(home: Path, *, eager: bool) -> dict[str, Any]:
    code = _SCRIPT.format(heavy=HEAVY, names=NAMES, deeper=DEEPER, eager=eager)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**_clean_env(), "COLUMNS": COLUMNS, "MLCTL_HOME": str(home)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(proc.stdout.splitlines()[-1]))


def _clean_env() -> dict[str, str]:
    # no server, colour or completion settings of the caller's shell leak into what is compared
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("MLCTL_SERVER", "_MLCTL", "_TYPER", "COMP_")) and k != "NO_COLOR"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlctl-home")  # one for both: a help may show a default under it


@pytest.fixture(scope="module")
def lazy(home: Path) -> dict[str, Any]:
    return _run(home, eager=False)


@pytest.fixture(scope="module")
def eager(home: Path) -> dict[str, Any]:
    return _run(home, eager=True)


def test_listing_the_commands_loads_no_group(lazy: dict[str, Any], eager: dict[str, Any]) -> None:
    """`mlctl --help`, `mlctl`, `--version`, a typo and `mlctl <TAB>` import none of the heavy packages;
    the same checks in the eager process find them (the check can see what a group pulls in)."""
    assert lazy["loaded"] == [], f"listing the commands imported {lazy['loaded']}"
    assert eager["loaded"], "the eager process should have loaded the groups' heavy packages"


def test_every_help_and_completion_is_what_the_fully_imported_tree_prints(
        lazy: dict[str, Any], eager: dict[str, Any]) -> None:
    assert lazy["seen"].keys() == eager["seen"].keys()
    for what, (code, out, err) in eager["seen"].items():
        assert lazy["seen"][what] == [code, out, err], f"`{what}` differs when its group is loaded lazily"
    code, out, _ = lazy["seen"]["mlctl --help"]
    assert code == 0 and all(f" {name} " in out for name in NAMES)
    assert lazy["seen"]["mlctl nope"][0] == 2 and "Did you mean 'audit'" in lazy["seen"]["mlctl aduit (a typo)"][2]
    assert all(f'"{name}"' in lazy["seen"]["complete zsh 'mlctl '"][1] for name in NAMES)
    assert "release\t" in lazy["seen"]["complete fish 'mlctl re'"][1]
    assert '"status"' in lazy["seen"]["complete zsh 'mlctl release st'"][1]
    for name in NAMES:
        assert lazy["seen"][f"mlctl {name} --help"][0] == 0


def test_command_groups_names_every_command_of_its_modules() -> None:
    """Each module in COMMAND_GROUPS: its ``COMMANDS`` are listed under it, and a module with an
    ``app`` has exactly one more name, its group; no name is listed twice."""
    assert len(NAMES) == len(set(NAMES))
    for module_name in dict.fromkeys(m for m, _, _ in cli.COMMAND_GROUPS):
        module = importlib.import_module(f"control_plane.cli.{module_name}")
        listed = {name for m, name, _ in cli.COMMAND_GROUPS if m == module_name}
        commands = set(getattr(module, "COMMANDS", {}))
        assert commands <= listed, f"control_plane.cli.{module_name} defines {commands - listed}, not in COMMAND_GROUPS"
        groups = listed - commands
        has_app = isinstance(getattr(module, "app", None), typer.Typer)
        assert len(groups) == (1 if has_app else 0), (module_name, groups)


def test_the_client_every_command_module_imports_loads_no_domain_package() -> None:
    """``control_plane.client`` (``remote()``, imported by each command module at its top) keeps the
    service layer, the registry and the heavy packages for the verbs that build their views."""
    code = ("import sys, control_plane.client\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in "
            "('control_plane.services', 'control_plane.registry', 'control_plane.audit', 'control_plane.identity')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=_clean_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"import control_plane.client loaded {proc.stdout.strip()}"
