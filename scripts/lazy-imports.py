#!/usr/bin/env python3
"""List the imports inside functions in control_plane/ (docs/architecture.md, "Imports that stay
inside functions"), each with why it is deferred:

- ``cost``: a third-party package that is slow to import or large, needed by few commands;
- ``cli``: a CLI command body importing its own service (each `mlctl` run imports one command's code);
- ``internal``: a control_plane module imported late (candidates to hoist: the import contract
  shows no cycle requires it).

    python scripts/lazy-imports.py [--summary]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "control_plane"
# Third-party imports deferred for their cost (seconds, or hundreds of MB, on a cold start).
COSTLY = {
    "boto3", "botocore", "kubernetes", "kfp", "pandas", "pyarrow", "numpy", "scipy", "sklearn", "onnx",
    "onnxruntime", "skl2onnx", "azure", "regopy", "cloudevents", "jsii", "cdktf", "constructs", "modules",
    "stacks", "pulumi", "pulumi_aws", "pulumi_azure", "kserve", "grpc", "tritonclient", "model_signing",
    "sigstore", "pkcs11", "alembic", "uvicorn", "fastapi", "httpx", "yaml", "jwt", "cryptography",
    "prometheus_client", "pynvml", "psycopg", "psycopg2", "sqlalchemy", "tensorrt", "moto", "typer",
}


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def lazy_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if in_function and isinstance(child, ast.Import):
                found.extend((child.lineno, a.name) for a in child.names)
            elif in_function and isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.lineno, child.module))
            visit(child, inside)

    visit(tree, False)
    return found


def reason(path: Path, module: str) -> str:
    top = module.split(".")[0]
    if top != "control_plane":
        return "cost" if top in COSTLY else "stdlib"
    return "cli" if path.parent.name == "cli" else "internal"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", action="store_true", help="counts only")
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    for path in sorted(ROOT.rglob("*.py")):
        for line, module in lazy_imports(path):
            why = reason(path, module)
            counts[why] += 1
            if not args.summary:
                print(f"{path.relative_to(ROOT.parent)}:{line}: {module}  [{why}]")
    print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f"; total {sum(counts.values())}",
          file=sys.stderr if not args.summary else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
