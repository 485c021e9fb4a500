"""Where events go: ``$MLCTL_HOME/events.yaml`` (or ``$MLCTL_EVENTS_FILE``).

```yaml
sinks:
  - name: ops-webhook
    kind: webhook            # plain JSON body: the event as a JSON object
    url: https://hooks.example.ae/mlops
    headers_from_env:        # header values come from the environment, never from this file
      Authorization: MLOPS_HOOK_TOKEN
  - name: broker
    kind: cloudevents        # CloudEvents HTTP binding, structured mode (application/cloudevents+json)
    url: http://broker.knative-eventing.svc/default
    required: true           # a release fails if this sink cannot take the event
    types: ["release.*"]     # optional filter on the type (without the ae.sovereign-mlops. prefix)
    timeout_s: 2
    max_attempts: 3
    budget_s: 5
```
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from control_plane.errors import MlctlError
from control_plane.settings import current as settings
from control_plane.settings import mlctl_home

KINDS = ("webhook", "cloudevents")
_PREFIX = "ae.sovereign-mlops."


@dataclass(frozen=True)
class Sink:
    name: str
    kind: str
    url: str
    required: bool = False
    types: tuple[str, ...] = ()
    headers_from_env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 2.0
    max_attempts: int = 3
    budget_s: float = 5.0  # total time one event may spend on this sink, retries included

    def accepts(self, event_type: str) -> bool:
        if not self.types:
            return True
        short = event_type.removeprefix(_PREFIX)
        return any(
            fnmatch.fnmatchcase(short, pat) or fnmatch.fnmatchcase(event_type, pat) for pat in self.types
        )

    @property
    def redacted_url(self) -> str:
        """The URL without user-info or query (either may carry a token): safe for logs and files."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for header, var in self.headers_from_env.items():
            value = os.environ.get(var)
            if value is None:
                raise MlctlError(
                    f"events sink {self.name!r}: header {header} needs environment variable {var}, "
                    "which is unset",
                    hint=f"export {var}=... (the secret stays out of events.yaml)",
                )
            out[header] = value
        return out


def config_path() -> Path:
    return settings().events_file or mlctl_home() / "events.yaml"


def _field_error(path: Path, where: str, problem: str, fix: str) -> MlctlError:
    return MlctlError(f"{path}: {where}: {problem}", hint=fix, exit_code=2)


def _parse_sink(path: Path, index: int, raw: Any) -> Sink:
    where = f"sinks[{index}]"
    if not isinstance(raw, dict):
        raise _field_error(path, where, "must be a mapping", "give name, kind and url")
    unknown = set(raw) - {
        "name",
        "kind",
        "url",
        "required",
        "types",
        "headers_from_env",
        "timeout_s",
        "max_attempts",
        "budget_s",
    }
    if unknown:
        raise _field_error(
            path, where, f"unknown field(s) {sorted(unknown)}", "remove them (see docs/monitoring.md)"
        )
    kind = raw.get("kind", "webhook")
    if kind not in KINDS:
        raise _field_error(
            path, f"{where}.kind", f"{kind!r} is not one of {list(KINDS)}", "use webhook or cloudevents"
        )
    url = raw.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise _field_error(
            path, f"{where}.url", "must be an http(s) URL", "e.g. https://hooks.example.ae/mlops"
        )
    headers = raw.get("headers_from_env") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _field_error(
            path,
            f"{where}.headers_from_env",
            "must map header names to environment variable names",
            "e.g. {Authorization: MLOPS_HOOK_TOKEN}",
        )
    types = raw.get("types") or []
    if isinstance(types, str):
        types = [types]
    try:
        timeout_s = float(raw.get("timeout_s", 2.0))
        max_attempts = int(raw.get("max_attempts", 3))
        budget_s = float(raw.get("budget_s", 5.0))
    except (TypeError, ValueError) as exc:
        raise _field_error(
            path,
            where,
            f"timeout_s/max_attempts/budget_s must be numbers ({exc})",
            "e.g. timeout_s: 2, max_attempts: 3, budget_s: 5",
        ) from None
    if not (0 < timeout_s <= 30 and 1 <= max_attempts <= 10 and 0 < budget_s <= 60):
        raise _field_error(
            path,
            where,
            "timeout_s must be in (0, 30], max_attempts in [1, 10], budget_s in (0, 60]",
            "keep delivery short: a slow sink must not hold a release",
        )
    return Sink(
        name=str(raw.get("name") or f"sink-{index}"),
        kind=kind,
        url=url,
        required=bool(raw.get("required", False)),
        types=tuple(str(t) for t in types),
        headers_from_env={str(k): v for k, v in headers.items()},
        timeout_s=timeout_s,
        max_attempts=max_attempts,
        budget_s=budget_s,
    )


def load_sinks(path: Path | None = None) -> list[Sink]:
    """The configured sinks; none when the file does not exist (emit is then a local append only)."""
    path = path or config_path()
    if not path.exists():
        return []
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise _field_error(path, "yaml", f"cannot parse ({exc})", "fix the YAML syntax") from None
    if not isinstance(doc, dict):
        raise _field_error(path, "top level", "must be a mapping with a `sinks` list", "sinks: [ ... ]")
    sinks = doc.get("sinks") or []
    if not isinstance(sinks, list):
        raise _field_error(path, "sinks", "must be a list", "sinks: [ {name: ..., kind: webhook, url: ...} ]")
    return [_parse_sink(path, i, raw) for i, raw in enumerate(sinks)]
