"""``mlctl``: the release engineer's and platform engineer's command line.

Each command group lives in its own module (``control_plane/cli/<group>.py``) exposing ``app``;
a module's top-level commands are its ``COMMANDS``. ``COMMAND_GROUPS`` names them all, and a module
is imported only when one of its names runs, shows its help or completes (docs/cli.md).
``main`` turns every ``MlctlError`` into a two-line message (problem, fix) and its exit code:
users never see a traceback for a mistake they can fix.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Annotated, Any

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from control_plane import __version__
from control_plane.cli import examples as _examples
from control_plane.errors import EXIT_CODES, MlctlError, UsageError
from control_plane.output import disable_color, emit_error_json, err_console
from control_plane.settings import current as current_settings


def _no_bool_metavar() -> None:
    """typer 0.29 shows ``<bool>`` beside on/off flags, which invites ``--fail-on-drift true``
    (an error): a flag takes no value, so its help shows none."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)  # type: ignore[arg-type]

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_no_bool_metavar()

# Every top-level name of `mlctl`, in the order `mlctl --help` lists it: (module under
# control_plane.cli, name, the first paragraph of its help). A name is the module's command group
# (its ``app``) or one of its ``COMMANDS``. `mlctl --help` lists these texts without importing any
# module; the module is imported when its name runs, shows its help or completes
# (tests/test_cli_startup.py checks the texts are the modules' own and that every name is here).
# Keep the groups in the order a release flows. A new group or command: one line here.
COMMAND_GROUPS: list[tuple[str, str, str]] = [
    ("identity", "login", "Log in with your identity provider and cache the tokens (0600)."),
    ("identity", "whoami", "Show who you act as: the verified identity and its mapped roles, or the asserted one."),
    ("identity", "logout",
     "Forget the cached tokens. (JWT access tokens cannot be revoked; they expire within minutes.)"),
    ("approve", "approve",
     "Approve a model version for an environment (you need the approver or security-officer role;\n"
     "never for a model you registered). The environment's declared tier decides the rule: dev none,\n"
     "staging one approver, prod two distinct approvers (+ a security officer for confidential/pii).\n"
     "Staging and prod accept only a verified identity (mlctl login), never --as."),
    ("sample", "sample",
     "Write the tour's sample: digits-v1/ and digits-v2/ (ONNX models), train.csv and today.csv,\n"
     "and print their digests (sha256 of each table, root digest of each model directory)."),
    ("server", "server", "Serve every mlctl verb over HTTPS with OIDC bearer tokens (roles from the identity file)."),
    ("local", "local",
     "Start and stop the embedded local environment (AWS emulator, gateway and OpenID provider on 127.0.0.1)."),
    ("infra", "infra",
     "Render the blueprint into Terraform (CDKTF) and run its lifecycle: synth, bootstrap, plan, apply, drift, "
     "destroy, check. With MLCTL_SERVER, the server runs them on its own blueprints and follows here."),
    ("blueprint", "blueprint",
     "Environment blueprints: validate the YAML that the infrastructure and the control plane share."),
    ("model", "model", "Model registry: register with lineage, show, list, sign, verify and export."),
    ("audit", "audit", "Verify, prove and export the tamper-evident audit log."),
    ("release", "release",
     "Release a model version (blue-green, canary or shadow) and manage releases in progress."),
    ("kserve", "kserve", "Render and validate KServe InferenceServices and HTTPRoutes."),
    ("gpu", "gpu", "GPU checks: drivers, devices, compute capability, MIG, ECC, precision."),
    ("monitor", "monitor", "Drift detection with remediation, Prometheus metrics and lifecycle events."),
    ("pii", "pii", "Find UAE personal identifiers in sample inputs and feature data."),
    ("pipeline", "pipeline",
     "Continuous training: data tests → GPU training (parallel grid) → evaluation → register + sign."),
]

_MODULE_OF = {name: module for module, name, _ in COMMAND_GROUPS}
_SUMMARY = {name: summary for _, name, summary in COMMAND_GROUPS}


def _build_command(name: str) -> TyperCommand | TyperGroup:
    """The click command of a top-level name, built by typer exactly as ``add_typer``/``command`` on
    the root would: imports the name's module (its domain packages with it)."""
    module = importlib.import_module(f"control_plane.cli.{_MODULE_OF[name]}")
    holder = typer.Typer()  # a bare root: mlctl gives its subcommands only typer's defaults, as this one
    commands = getattr(module, "COMMANDS", {})
    if name in commands:
        holder.command(name)(commands[name])
    else:
        group: typer.Typer = module.app
        if isinstance(REMOTE_COMMANDS.get(name), frozenset) or isinstance(WORKSTATION_COMMANDS.get(name), frozenset):
            group.callback()(_check_subcommand)  # only some of its subcommands are served / local
        holder.add_typer(group, name=name)
    _examples.apply(holder)
    built = typer.main.get_group(holder).commands[name]
    assert isinstance(built, TyperCommand | TyperGroup)
    return built


class _Commands(MutableMapping[str, Any]):
    """The root's commands by name. Listing the names imports nothing; looking one up builds its
    command (``_build_command``) the first time, so click resolves, completes and walks it as ever."""

    def __init__(self, eager: Mapping[str, Any]) -> None:
        self._built: dict[str, Any] = dict(eager)
        self._names = list(dict.fromkeys([*_MODULE_OF, *eager]))

    def built(self, name: str) -> Any:
        return self._built.get(name)

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._built:
            self._built[name] = _build_command(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command
        if name not in self._names:
            self._names.append(name)

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names.remove(name)
        self._built.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


class _LazyGroup(TyperGroup):
    """The root group: `mlctl --help` and `mlctl <TAB>` list each name with its summary from
    ``COMMAND_GROUPS`` (a stand-in command, never run); everything else gets the real command."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._lazy = _Commands(self.commands)
        self.commands = self._lazy
        self._listing = False

    @contextmanager
    def _summaries(self) -> Iterator[None]:
        listing, self._listing = self._listing, True
        try:
            yield
        finally:
            self._listing = listing

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self._lazy)  # typer's reads each command too (`commands.items()`)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if self._listing and cmd_name in _SUMMARY and self._lazy.built(cmd_name) is None:
            return TyperCommand(cmd_name, help=_SUMMARY[cmd_name])
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with self._summaries():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: Any, incomplete: str) -> Any:
        with self._summaries():
            return super().shell_complete(ctx, incomplete)


app = typer.Typer(
    name="mlctl",
    help=(
        "Sovereign MLOps control plane for UAE regions: infrastructure blueprints, model registry, "
        "signing, approvals, KServe releases, drift monitoring and a tamper-evident audit trail.\n\n"
        "State lives under $MLCTL_HOME (default: your user data directory). "
        "Every command takes --output json for automation (errors then come as JSON on stderr).\n\n"
        "Example:  mlctl sample ./tour && mlctl model list"
    ),
    epilog="Exit codes:\n\n" + "\n\n".join(f"{c} {n}: {m}" for c, n, m in EXIT_CODES),
    cls=_LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlctl {__version__}")
        raise typer.Exit()


# The one table of what runs where when MLCTL_SERVER / --server is set (docs/server.md): a group's
# subcommands, or None for all of it. REMOTE_COMMANDS go through `mlctl server`; WORKSTATION_COMMANDS
# only read files here and print (no store, no audit entry), so they run on this machine either way;
# every other command refuses rather than silently act on this machine's store.
REMOTE_COMMANDS: dict[str, frozenset[str] | None] = {
    "approve": None, "release": None, "whoami": None, "login": None, "logout": None, "server": None,
    "model": frozenset({"list", "show", "register", "sign", "verify", "export", "validate", "optimize"}),
    "audit": frozenset({"verify", "prove", "consistency", "checkpoint", "list", "export"}),
    "monitor": frozenset({"events", "drift", "replay", "serve-metrics"}), "pii": frozenset({"scan"}), "local": None,
    "pipeline": frozenset({"run", "watch", "status", "list"}),
    "infra": None,  # every verb; the server's own blueprints (named, never a file sent), background operations
}
WORKSTATION_COMMANDS: dict[str, frozenset[str] | None] = {
    "blueprint": frozenset({"validate"}), "kserve": frozenset({"render", "validate"}), "gpu": None,
    "sample": None, "pipeline": frozenset({"compile"}),
}


def _listed(table: dict[str, frozenset[str] | None]) -> str:
    return ", ".join(name if subs is None else f"{name} ({', '.join(sorted(subs))})"
                     for name, subs in sorted(table.items()))


def _refuse_under_server(command: str, server: str) -> None:
    raise UsageError(f"`mlctl {command}` does not run through the API server yet ({server})",
                     hint=f"unset MLCTL_SERVER to run it here. Through the server: {_listed(REMOTE_COMMANDS)}; "
                     f"on this machine either way: {_listed(WORKSTATION_COMMANDS)}")


def _check_subcommand(ctx: typer.Context) -> None:
    """A group's callback where only some subcommands are served (or local by nature): the rest refuse."""
    server, group, sub = current_settings().server, ctx.info_name or "", ctx.invoked_subcommand
    if not server or sub is None:
        return
    if any(sub in (table.get(group) or ()) for table in (REMOTE_COMMANDS, WORKSTATION_COMMANDS)):
        return
    _refuse_under_server(f"{group} {sub}", server)


@app.callback()
def _root(
    ctx: typer.Context,
    as_actor: Annotated[
        str | None,
        typer.Option("--as", help="Act as this identity (dev tier only; like MLCTL_ACTOR); recorded in the audit trail."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour or styles (also when NO_COLOR is set).")
    ] = False,
    server: Annotated[
        str | None, typer.Option("--server", help="Act through this mlctl server (like MLCTL_SERVER), e.g. https://127.0.0.1:8443.")
    ] = None,
) -> None:
    from control_plane.errors import UsageError
    from control_plane.settings import configure, private_files

    private_files()  # every file mlctl (and what it starts) writes: 0600, directories 0700
    if no_color:
        disable_color()
    settings = configure(actor=as_actor, server=server)  # flags go into the settings object, never os.environ
    group = ctx.invoked_subcommand
    if settings.server and group is not None and group not in REMOTE_COMMANDS and group not in WORKSTATION_COMMANDS:
        _refuse_under_server(group, settings.server)  # per-subcommand entries: _check_subcommand
    if settings.server and as_actor and ctx.invoked_subcommand != "server":
        raise UsageError("--as cannot be used with a server: the server acts on your verified token",
                         hint="mlctl login, then run the command without --as")
    from control_plane.monitor import retrain_hook

    retrain_hook.subscribe()  # composition root: a registration in this process checks the retrain triggers



def _wants_json(argv: list[str]) -> bool:
    """Whether the command line asked for ``--output json`` (errors then come as JSON too)."""
    for i, arg in enumerate(argv):
        if arg in ("--output=json", "-ojson"):
            return True
        if arg in ("--output", "-o") and i + 1 < len(argv) and argv[i + 1] == "json":
            return True
    return False


def _usage_error(exc: Exception, as_json: bool) -> None:
    code = int(getattr(exc, "exit_code", 2))
    if as_json:
        emit_error_json(message=exc.format_message(), hint="see --help",  # type: ignore[attr-defined]
                        exit_code=code, kind="UsageError")
    else:
        exc.show()  # type: ignore[attr-defined]
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Exit codes: control_plane.errors.EXIT_CODES."""
    from control_plane import settings

    try:
        _main(argv)
    finally:
        settings.reset()  # the flags were this command's: a caller in the same process starts clean


def _main(argv: list[str] | None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(args)
    try:
        # click returns the exit code of typer.Exit instead of raising it when not standalone
        rv = app(args=args, standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except MlctlError as exc:
        if as_json:
            emit_error_json(message=exc.message, hint=exc.hint, exit_code=exc.exit_code,
                            kind=getattr(exc, "kind", "") or type(exc).__name__)  # a server's error: its class
            sys.exit(exc.exit_code)
        # escape: messages quote user input and patterns ("[a-z]...") that rich would read as markup
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err_console.print(f"  [bold]fix:[/] {escape(exc.hint)}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # usage errors arrive here in non-standalone mode
        # typer 0.29 vendors click as typer._click; plain click may also raise through callbacks.
        from typer._click import exceptions as tclick

        click_errors: tuple[type[BaseException], ...] = (tclick.ClickException,)
        try:
            import click

            click_errors += (click.ClickException,)
        except ImportError:
            pass
        if isinstance(exc, tclick.NoArgsIsHelpError):
            sys.exit(0)  # the help is already on the screen
        if isinstance(exc, click_errors):
            _usage_error(exc, as_json)
        raise
    sys.exit(0)
