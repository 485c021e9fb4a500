"""``mlctl``: the release engineer's and platform engineer's command line.

Each command group lives in its own module (``control_plane/cli/<group>.py``) exposing ``app``.
``main`` turns every ``MlctlError`` into a two-line message (problem, fix) and its exit code:
users never see a traceback for a mistake they can fix.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer
from rich.markup import escape

from control_plane import __version__
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
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# (module under control_plane.cli, command group name). Keep in the order a release flows.
COMMAND_GROUPS: list[tuple[str, str]] = [
    ("local", "local"),
    ("identity", "identity"),
    ("infra", "infra"),
    ("blueprint", "blueprint"),
    ("model", "model"),
    ("approve", "approve"),
    ("audit", "audit"),
    ("release", "release"),
    ("kserve", "kserve"),
    ("gpu", "gpu"),
    ("monitor", "monitor"),
    ("pii", "pii"),
    ("pipeline", "pipeline"),
    ("sample", "sample"),
    ("server", "server"),
]


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
    from control_plane.monitor import retrain

    retrain.subscribe()  # composition root: a registration in this process checks the retrain triggers


for _module, _name in COMMAND_GROUPS:
    _mod = importlib.import_module(f"control_plane.cli.{_module}")
    if isinstance(getattr(_mod, "app", None), typer.Typer):
        if isinstance(REMOTE_COMMANDS.get(_name), frozenset) or isinstance(WORKSTATION_COMMANDS.get(_name), frozenset):
            _mod.app.callback()(_check_subcommand)  # only some of its subcommands are served / local
        app.add_typer(_mod.app, name=_name)
    for _cmd_name, _fn in getattr(_mod, "COMMANDS", {}).items():
        app.command(_cmd_name)(_fn)

from control_plane.cli import examples as _examples  # noqa: E402  (after every group is registered)

_examples.apply(app)


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
