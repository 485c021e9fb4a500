"""``mlctl local``: the embedded environment on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from blueprints import load_environment
from control_plane.drivers import gateway
from control_plane.drivers.local import LocalDriver
from control_plane.local import ca, emulator, idp
from control_plane.output import OutputFormat, OutputOption, console, emit_json
from control_plane.settings import DEFAULT_BLUEPRINT

app = typer.Typer(
    help="Start and stop the embedded local environment (AWS emulator, gateway and OpenID provider on 127.0.0.1).",
    no_args_is_help=True,
)

BlueprintOption = Annotated[
    Path, typer.Option("--blueprint", "-b", help="Blueprint whose emulator endpoint to use.")
]


@app.command()
def up(blueprint: BlueprintOption = DEFAULT_BLUEPRINT, output: OutputOption = OutputFormat.table) -> None:
    """Start the AWS emulator (moto server), the TLS gateway (nginx) and the OpenID provider in the
    background; idempotent.

    Creates the local CA on first use ($MLCTL_HOME/ca/ca.pem: clients of the gateway trust it).

    Example:  export MLCTL_HOME=$PWD/.mlctl && mlctl local up
    """
    env = load_environment(blueprint)
    info = emulator.up(env)
    tls = ca.ensure()
    gw = gateway.up()
    oidc = idp.up()
    if output is OutputFormat.json:
        emit_json(
            {
                "emulator": {"endpoint": info.endpoint, "pid": info.pid, "running": True},
                "gateway": {"url": gw.url, "grpc": gw.grpc_target, "pid": gw.pid, "running": True},
                "ca": {"certificate": str(tls.ca_cert), "sha256": ca.fingerprint()},
                "oidc_provider": {"issuer": oidc.issuer, "pid": oidc.pid, "running": True},
            }
        )
    else:
        console.print(
            f"AWS emulator up at [bold]{info.endpoint}[/] (pid {info.pid}); stop it with `mlctl local down`"
        )
        console.print(
            f"gateway (nginx) up at [bold]{gw.url}[/] (pid {gw.pid}); services at /v2/models/<service>, "
            f"gRPC at {gw.grpc_target} (metadata mlctl-service: <service>)"
        )
        console.print(f"local CA: {tls.ca_cert} (trust it in clients: curl --cacert, grpc root_certificates)")
        console.print(f"OpenID provider up at [bold]{oidc.issuer}[/] (pid {oidc.pid}); log in with `mlctl login`")


@app.command()
def down(output: OutputOption = OutputFormat.table) -> None:
    """Stop the AWS emulator (its state is lost: it keeps everything in memory), the local model
    servers and the gateway."""
    was = emulator.down()
    served = LocalDriver().stop_all()
    gw = gateway.down()
    oidc = idp.down()
    if output is OutputFormat.json:
        emit_json(
            {"emulator": {"stopped": was}, "gateway": {"stopped": gw}, "model_servers": {"stopped": served},
             "oidc_provider": {"stopped": oidc}}
        )
    else:
        console.print("AWS emulator stopped" if was else "AWS emulator was not running")
        console.print(f"gateway {'stopped' if gw else 'was not running'}; {served} model server(s) stopped")
        console.print("OpenID provider stopped" if oidc else "OpenID provider was not running")


@app.command()
def status(blueprint: BlueprintOption = DEFAULT_BLUEPRINT, output: OutputOption = OutputFormat.table) -> None:
    """Show whether the local environment is running."""
    info = emulator.status(load_environment(blueprint))
    gw = gateway.status()
    oidc = idp.status()
    if output is OutputFormat.json:
        emit_json(
            {
                "emulator": {"endpoint": info.endpoint, "pid": info.pid, "running": info.running},
                "gateway": {"url": gw.url, "pid": gw.pid, "running": gw.running},
                "oidc_provider": {"issuer": oidc.issuer, "pid": oidc.pid, "running": oidc.running},
                "ca": {"certificate": gw.ca_cert or None, "sha256": ca.fingerprint()},
            }
        )
    else:
        state = f"running (pid {info.pid})" if info.running else "stopped"
        console.print(f"AWS emulator at {info.endpoint}: {state}")
        console.print(f"gateway at {gw.url}: {f'running (pid {gw.pid})' if gw.running else 'stopped'}")
        console.print(f"OpenID provider at {oidc.issuer or '-'}: "
                      f"{f'running (pid {oidc.pid})' if oidc.running else 'stopped'}")
        console.print(f"local CA: {gw.ca_cert or 'not created yet (mlctl local up creates it)'}")


def _attach_traffic() -> None:
    from control_plane.cli.local_traffic import traffic

    app.command("traffic")(traffic)


_attach_traffic()
