"""``python -m stacks``: what ``cdktf synth`` runs (see cdktf.json)."""

from __future__ import annotations

import sys

from control_plane.errors import MlctlError
from stacks.compose import main

if __name__ == "__main__":
    try:
        main()
    except MlctlError as exc:
        # Same two-line shape as the CLI: problem, then fix; no traceback for a user's mistake.
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
