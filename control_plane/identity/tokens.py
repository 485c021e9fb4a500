"""The token cache of `mlctl login`: ``$MLCTL_HOME/tokens.json``, readable by the user only.

A cache another user can read is refused (not silently fixed): the tokens in it may already have
leaked. Tokens are never printed or logged; ``whoami`` shows the verified claims, not the token.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from control_plane.errors import PolicyViolation
from control_plane.settings import current as settings
from control_plane.settings import mlctl_home

REFRESH_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class CachedTokens:
    issuer: str
    client_id: str
    access_token: str
    expires_at: int
    refresh_token: str = ""
    grant: str = "device_code"  # or client_credentials

    def __repr__(self) -> str:  # never show a token, even in a traceback or a debugger
        return f"CachedTokens(issuer={self.issuer!r}, client_id={self.client_id!r}, grant={self.grant!r})"

    @property
    def expiring(self) -> bool:
        return self.expires_at - REFRESH_MARGIN_SECONDS <= time.time()


def cache_file() -> Path:
    return settings().token_cache or mlctl_home() / "tokens.json"


def load() -> CachedTokens | None:
    path = cache_file()
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if st.st_mode & 0o077:
        raise PolicyViolation(
            f"the token cache {path} is readable by others (mode {st.st_mode & 0o777:o}); its tokens may have leaked",
            hint=f"run `mlctl logout` (removes it), then `mlctl login` again; or chmod 600 {path}",
        )
    if st.st_uid != os.getuid():
        raise PolicyViolation(f"the token cache {path} belongs to another user", hint="mlctl logout; mlctl login")
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return CachedTokens(**data)
    except (ValueError, TypeError):
        raise PolicyViolation(f"the token cache {path} is unreadable", hint="mlctl logout; mlctl login") from None


def save(tokens: CachedTokens) -> Path:
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(tokens), fh)
    os.replace(tmp, path)
    return path


def clear() -> bool:
    path = cache_file()
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
