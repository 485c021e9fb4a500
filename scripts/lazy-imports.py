#!/usr/bin/env python3
"""List the imports inside functions in control_plane/ (docs/architecture.md, "Imports that stay
inside functions"), each with why it is deferred:

- ``stated``: the import line (the first line of a multi-line import; any of its lines where ruff
  wrapped it) ends in ``# lazy: <reason>``;
  the reason is printed (e.g. an import-time cycle, or a KFP component body that runs elsewhere);
- ``cost``: a third-party package in COSTLY below (slow to import or large, needed by few commands);
- ``cli``: a CLI command body importing its own service (each `mlctl` run imports one command's code);
- ``stdlib``: a standard-library module (cheap either way; hoisting it is a style choice);
- ``internal``: a first-party module (control_plane, blueprints) imported late with no stated
  reason: unexplained, hoist it or state why it must stay;
- ``third-party``: a package that is neither standard library nor in COSTLY: unexplained, hoist it
  or add it to COSTLY with its cost.

    python scripts/lazy-imports.py [--summary] [--check] [--measure]

``--check`` exits 1 and lists the unexplained ones (``internal``, ``third-party``);
``--measure`` imports the target of each ``stated`` or ``internal`` import in a fresh interpreter and
prints the COSTLY packages it pulls that the importing module does not already load (a way to check
the stated reasons; it takes a few seconds per import).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import subprocess
import sys
import tokenize
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "control_plane"
# Our own top-level packages (not control_plane's third-party dependencies).
FIRST_PARTY = {"control_plane", "blueprints"}
# Third-party (or first-party but heavy) imports deferred for their cost, with the cost.
COSTLY: dict[str, str] = {
    **dict.fromkeys(("boto3", "botocore"), "AWS SDK, ~0.5 s"),
    "kubernetes": "Kubernetes client, ~0.5 s",
    **dict.fromkeys(("kfp",), "KFP SDK with protobuf, ~2 s"),
    **dict.fromkeys(("pandas", "pyarrow", "numpy", "scipy", "sklearn"), "data stack, ~1 s"),
    **dict.fromkeys(("onnx", "onnxruntime", "skl2onnx"), "ONNX runtime/converters, ~1 s"),
    **dict.fromkeys(("torch", "tensorrt"), "GPU frameworks, seconds and GBs, optional"),
    "azure": "Azure SDK, ~1 s",
    "regopy": "Rego engine (native library)",
    "cloudevents": "CloudEvents SDK",
    **dict.fromkeys(("jsii", "cdktf", "constructs", "modules", "stacks"),
                    "CDKTF provider bindings, 10-20 s"),
    **dict.fromkeys(("pulumi", "pulumi_aws", "pulumi_azure"), "Pulumi SDK and providers, seconds"),
    **dict.fromkeys(("kserve", "grpc", "tritonclient"), "model-serving clients (grpc), ~1 s"),
    **dict.fromkeys(("model_signing", "sigstore"), "model-signing with sigstore, ~1 s"),
    **dict.fromkeys(("pkcs11", "PyKCS11", "asn1crypto"), "HSM signing only (loads a native PKCS#11 module)"),
    **dict.fromkeys(("alembic", "sqlalchemy", "psycopg", "psycopg2"), "database layer"),
    **dict.fromkeys(("uvicorn", "fastapi", "httpx"), "HTTP server/client stack"),
    "yaml": "YAML parser", "jwt": "PyJWT", "cryptography": "cryptography (OpenSSL bindings)",
    "prometheus_client": "Prometheus client", "pynvml": "NVIDIA management library (GPU hosts only)",
    "moto": "AWS emulator, seconds (tests and the local emulator only)",
    **dict.fromkeys(("typer", "click"), "CLI framework: only the front end loads it (click is optional beside typer's own copy)"),
}
STATED = re.compile(r"#\s*lazy:\s*(?P<reason>\S.*?)\s*$")
UNEXPLAINED = ("internal", "third-party")


@dataclass(frozen=True)
class LazyImport:
    path: Path
    line: int
    module: str
    category: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.path.relative_to(REPO)}:{self.line}: {self.module}  [{self.category}]"
        return f"{where} {self.reason}" if self.reason else where


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _comments(source: str) -> dict[int, str]:
    """Line number -> the comment on that line (tokenize: a '#' inside a string is no comment)."""
    found: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string
    return found


def lazy_imports(path: Path) -> list[tuple[int, int, str]]:
    """(first line, last line, module) of each import inside a function body; TYPE_CHECKING blocks
    don't count."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            end = getattr(child, "end_lineno", None) or getattr(child, "lineno", 0)
            if in_function and isinstance(child, ast.Import):
                found.extend((child.lineno, end, a.name) for a in child.names)
            elif in_function and isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.lineno, end, child.module))
            visit(child, inside)

    visit(tree, False)
    return found


def category(path: Path, module: str, comment: str | None) -> tuple[str, str]:
    stated = STATED.search(comment or "")
    if stated:
        return "stated", stated["reason"]
    top = module.split(".")[0]
    if top in FIRST_PARTY:
        return ("cli", "") if path.parent.name == "cli" else ("internal", "")
    if top in COSTLY:
        return "cost", COSTLY[top]
    if top in sys.stdlib_module_names:
        return "stdlib", ""
    return "third-party", ""


def scan(root: Path = ROOT) -> list[LazyImport]:
    found: list[LazyImport] = []
    for path in sorted(root.rglob("*.py")):
        comments = _comments(path.read_text(encoding="utf-8"))
        for line, end, module in lazy_imports(path):
            # The reason sits on the first line; where a formatter wrapped the import, on any of its lines.
            stated = [comments[n] for n in range(line, end + 1) if n in comments and STATED.search(comments[n])]
            why, text = category(path, module, stated[0] if stated else None)
            found.append(LazyImport(path, line, module, why, text))
    return found


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


_PROBE = """
import importlib, json, sys
def tops():
    return {m.split(".")[0] for m in sys.modules}
importlib.import_module(sys.argv[1])
before = tops()
importlib.import_module(sys.argv[2])
print(json.dumps(sorted(tops() - before)))
"""


def measure(found: list[LazyImport]) -> None:
    """For each stated/internal import: which COSTLY packages importing its target adds to the
    importing module (each pair in a fresh interpreter, so nothing is loaded beforehand)."""
    for item in found:
        if item.category not in ("stated", "internal") or item.module.split(".")[0] not in FIRST_PARTY:
            continue
        probe = subprocess.run([sys.executable, "-c", _PROBE, _dotted(item.path), item.module],
                               cwd=REPO, capture_output=True, text=True, check=False)
        if probe.returncode:
            last = (probe.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{item}\n    import fails: {last}")
            continue
        heavy = [top for top in json.loads(probe.stdout) if top in COSTLY]
        print(f"{item}\n    adds: {', '.join(heavy) if heavy else 'no costly package'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--summary", action="store_true", help="counts only")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 and list the unexplained ones (internal, third-party)")
    parser.add_argument("--measure", action="store_true",
                        help="import each stated/internal target fresh and print the costly packages it adds")
    args = parser.parse_args()
    found = scan()
    counts = Counter(item.category for item in found)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f"; total {len(found)}"
    if args.measure:
        measure(found)
        return 0
    if args.check:
        bad = [item for item in found if item.category in UNEXPLAINED]
        for item in bad:
            print(item)
        print(f"{len(bad)} unexplained function-level imports ({summary})" if bad else
              f"no unexplained function-level imports ({summary})", file=sys.stderr)
        return 1 if bad else 0
    if not args.summary:
        for item in found:
            print(item)
    print(summary, file=sys.stdout if args.summary else sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
