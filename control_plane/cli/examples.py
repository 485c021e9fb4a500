"""One example per command, shown at the end of its ``--help``.

A command whose docstring already has an ``Example:`` line keeps its own; the others get theirs
from here (the CLI root applies them when it builds the command tree). New commands: write
``Example:  mlctl ...`` in the docstring, or add a line here. ``tests/test_cli_hygiene.py`` fails
for any command without one.
"""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "approve": "mlctl --as amira approve digits:2 --env uae-local",
    "logout": "mlctl logout",
    "whoami": "mlctl whoami -o json",
    "pipeline list": "mlctl pipeline list --pipeline digits -o json",
    "pipeline status": "mlctl pipeline status <run-id>",
    "local down": "mlctl --as pat local down",
    "local status": "mlctl local status -o json",
    "infra synth": "mlctl infra synth --blueprint blueprints/uae-prod-aws.yaml",
    "infra bootstrap": "mlctl --as pat infra bootstrap --blueprint blueprints/uae-local.yaml",
    "infra plan": "mlctl infra plan --blueprint blueprints/uae-local.yaml",
    "infra apply": "mlctl --as pat infra apply --blueprint blueprints/uae-local.yaml",
    "infra drift": "mlctl infra drift --blueprint blueprints/uae-local.yaml   # exit 5 on drift",
    "infra destroy": "mlctl --as pat infra destroy --blueprint blueprints/uae-local.yaml",
    "infra check": "mlctl infra check --blueprint blueprints/uae-local.yaml",
    "blueprint validate": "mlctl blueprint validate blueprints/uae-local.yaml blueprints/uae-prod-aws.yaml",
    "model register": ("mlctl --as eli model register digits --version 1 --path tour/digits-v1 "
                       "--code-commit 3f2c1e9 --dataset s3://uae-data/train.csv@sha256:<64 hex>"),
    "model sign": "mlctl --as eli model sign digits:1 --signer kms --blueprint blueprints/uae-prod-aws.yaml",
    "model verify": "mlctl model verify digits:1 --path /srv/models/digits",
    "model optimize": "mlctl --as eli model optimize digits:2 --target onnx",
    "model validate": "mlctl --as eli model validate digits:2 --env uae-local",
    "audit verify": "mlctl --as ali audit verify",
    "release start": "mlctl --as eli release digits:2 --env uae-local --strategy canary --steps 10,50",
    "release resume": "mlctl --as eli release resume digits",
    "release promote": "mlctl --as eli release promote digits",
    "release abort": "mlctl --as eli release abort digits",
    "release rollback": "mlctl --as eli release rollback digits",
    "kserve render": ("mlctl kserve render --model digits --version 2 --digest sha256:<64 hex> "
                      "--release-id rel-1 --storage-uri s3://uae-models/digits/2 -o json"),
    "kserve validate": "mlctl kserve validate rendered/*.yaml",
    "gpu preflight": "mlctl gpu preflight --blueprint blueprints/uae-prod-aws.yaml",
    "monitor drift": "mlctl monitor drift digits --reference tour/train.csv --since 1h --fail-on-drift",
    "monitor serve-metrics": "mlctl monitor serve-metrics --port 9464",
    "monitor events": "mlctl monitor events --type 'release.*'",
    "monitor replay": "mlctl monitor replay",
    "pii scan": "mlctl pii scan data/customers.csv",
}


def has_example(text: str | None) -> bool:
    return bool(text) and "Example" in (text or "")


def apply(root: object) -> None:
    """Give each command of the typer ``root`` (and its groups) its example as the help epilog."""
    import typer

    def visit(app: typer.Typer, prefix: str) -> None:
        for cmd in app.registered_commands:
            name = cmd.name or (cmd.callback.__name__.replace("_", "-").rstrip("-") if cmd.callback else "")
            path = f"{prefix}{name}"
            doc = cmd.help or (cmd.callback.__doc__ if cmd.callback else None)
            if not has_example(doc) and not has_example(cmd.epilog) and path in EXAMPLES:
                cmd.epilog = f"Example:  {EXAMPLES[path]}"
        for group in app.registered_groups:
            if group.typer_instance is not None:
                visit(group.typer_instance, f"{prefix}{group.name} ")

    assert isinstance(root, typer.Typer)
    visit(root, "")
