"""Every function-level import in control_plane/ is explained (docs/architecture.md, "Imports that
stay inside functions"): a stated ``# lazy: <reason>``, a costly third-party package, a CLI command
body importing its service, or the standard library. Static: it reads the source, imports nothing."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "lazy-imports.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lazy_imports_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through it
    spec.loader.exec_module(module)
    return module


def test_every_function_level_import_is_explained() -> None:
    script = _script()
    unexplained = [str(item) for item in script.scan() if item.category in script.UNEXPLAINED]
    assert not unexplained, (
        "function-level imports with no stated reason (hoist each to the module top, or end its line "
        "with `# lazy: <reason>`; a third-party package that is slow to import goes in COSTLY):\n"
        + "\n".join(unexplained))


def test_categories(tmp_path: Path) -> None:
    """The classifier itself: a stated reason wins, first-party vs CLI, costly vs stdlib vs the rest."""
    script = _script()
    pkg = tmp_path / "control_plane"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "svc.py").write_text(textwrap.dedent("""
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from control_plane import typed_only
        import json
        def f():
            from control_plane import audit  # lazy: audit imports this module while initialising
            from control_plane.registry import (  # lazy: wrapped, reason on the first line
                a, b)
            from control_plane.release import (
                c,  # lazy: wrapped by ruff, reason on a later line
            )
            from control_plane import store
            import kfp
            import shutil
            import PyKCS11
            import some_new_package
            s = "# lazy: a string is no comment"; from control_plane import x
    """))
    (pkg / "cli" / "cmd.py").write_text("def command():\n    from control_plane.services import models\n")
    found = {(item.path.name, item.line): item for item in script.scan(pkg)}
    got = {key: (item.module, item.category, item.reason) for key, item in found.items()}
    assert got == {
        ("svc.py", 7): ("control_plane", "stated", "audit imports this module while initialising"),
        ("svc.py", 8): ("control_plane.registry", "stated", "wrapped, reason on the first line"),
        ("svc.py", 10): ("control_plane.release", "stated", "wrapped by ruff, reason on a later line"),
        ("svc.py", 13): ("control_plane", "internal", ""),
        ("svc.py", 14): ("kfp", "cost", script.COSTLY["kfp"]),
        ("svc.py", 15): ("shutil", "stdlib", ""),
        ("svc.py", 16): ("PyKCS11", "cost", script.COSTLY["PyKCS11"]),
        ("svc.py", 17): ("some_new_package", "third-party", ""),
        ("svc.py", 18): ("control_plane", "internal", ""),
        ("cmd.py", 2): ("control_plane.services", "cli", ""),
    }
