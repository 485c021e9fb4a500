"""Reading blueprint files: YAML in, a validated ``Blueprint`` out, or one ``BlueprintError``
that names the file, each bad field, and how to fix it (never a traceback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from blueprints.schema import Blueprint, Environment, MultiCloudFile
from control_plane.errors import BlueprintError

_TYPE_HINTS = {
    "missing": "add this field",
    "extra_forbidden": "remove it, or check its spelling against blueprints/schema.py",
    "int_parsing": "use a whole number",
    "int_type": "use a whole number",
    "string_type": "use a quoted string",
    "list_type": "use a YAML list (- item)",
    "dict_type": "use a YAML mapping (key: value)",
    "model_type": "use a YAML mapping (key: value)",
    "enum": "use one of the listed values",
    "literal_error": "use one of the listed values",
    "string_pattern_mismatch": "match the pattern shown",
    "ip_v4_network": "use CIDR notation, e.g. 10.40.0.0/16",
    "greater_than_equal": "raise the value",
    "less_than_equal": "lower the value",
    "too_short": "add at least one entry",
}


def _part(p: str | int) -> str:
    """A path element as the user can find it: odd keys (empty, spaces, newlines) are quoted."""
    text = str(p)
    return text if text and text.isprintable() and " " not in text else repr(text)


def _describe(model: type[BaseModel], err: Any, prefix: tuple[str | int, ...] = ()) -> str:
    loc = ".".join(_part(p) for p in (*prefix, *err["loc"]))
    msg = str(err["msg"]).removeprefix("Value error, ")
    hint = _TYPE_HINTS.get(err["type"])
    if err["loc"] and err["loc"][-1] == "tier" and err["type"] in ("missing", "enum"):
        from blueprints.schema import TIER_HINT

        hint = TIER_HINT
    field = loc or "(top level)"
    return f"{field}: {msg}" + (f" (fix: {hint})" if hint and err["type"] != "value_error" else "")


def _in_environment(data: dict[Any, Any], err: Any) -> str:
    """``environment 'uae-mc-aws': `` for an error inside one environment of a multi-cloud file."""
    loc = err["loc"]
    envs = data.get("environments")
    if len(loc) >= 2 and loc[0] == "environments" and isinstance(loc[1], int) and isinstance(envs, list):
        entry = envs[loc[1]] if loc[1] < len(envs) else None
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            return f"environment {_part(entry['name'])}: "
    return ""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: with plain YAML the last one silently wins, so a
    pasted block could override a security setting without anyone noticing."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BlueprintError(
            f"{path}: no such blueprint file",
            hint="pass --blueprint with a path to a YAML file, e.g. blueprints/uae-local.yaml",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BlueprintError(
            f"{path}: cannot read the file ({exc})", hint="check the path and encoding"
        ) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        hint = "fix the YAML syntax there (indentation, a missing ':' or an unclosed quote)"
        if "duplicate key" in str(problem):
            hint = "keep one of the two keys: YAML would otherwise silently use the last one"
        raise BlueprintError(f"{path}: malformed YAML{where}: {problem}", hint=hint) from None
    except (ValueError, RecursionError) as exc:  # e.g. absurd nesting or bad scalars in fuzzed input
        raise BlueprintError(f"{path}: unreadable YAML: {exc}", hint="fix the YAML syntax") from None
    return data


def load_blueprint(path: str | Path) -> Blueprint:
    """Load and validate a blueprint file (a single environment or a multi-cloud list)."""
    path = Path(path)
    data = _parse_yaml(path)
    if not isinstance(data, dict) or not data:
        raise BlueprintError(
            f"{path}: expected a YAML mapping with an environment (name, cloud, region, network, ...)",
            hint="start from blueprints/uae-local.yaml",
        )
    model: type[BaseModel] = MultiCloudFile if "environments" in data else Environment
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        problems = [_in_environment(data, e) + _describe(model, e) for e in exc.errors()]
        raise BlueprintError(
            f"{path}: {len(problems)} problem(s) in the blueprint:\n    " + "\n    ".join(problems),
            hint="edit the fields named above; the model and its rules are in blueprints/schema.py",
        ) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise BlueprintError(
            f"{path}: invalid blueprint: {exc}", hint="compare with blueprints/uae-local.yaml"
        ) from None
    if isinstance(parsed, MultiCloudFile):
        return Blueprint(name=parsed.name, source=str(path), environments=list(parsed.environments))
    assert isinstance(parsed, Environment)
    return Blueprint(name=parsed.name, source=str(path), environments=[parsed])


def load_environment(path: str | Path, name: str | None = None) -> Environment:
    """The one environment a command acts on (``name`` picks one from a multi-cloud file)."""
    return pick_environment(load_blueprint(path), path, name)


def pick_environment(bp: Blueprint, path: str | Path, name: str | None = None) -> Environment:
    """``name``'s environment in ``bp`` (read from ``path``), or its only one; BlueprintError naming
    the choices otherwise. Shared by ``load_environment`` and the control plane's cached loader."""
    if name is None and len(bp.environments) > 1:
        names = ", ".join(e.name for e in bp.environments)
        raise BlueprintError(
            f"{path} holds several environments ({names})", hint="pass --env NAME to pick one"
        )
    try:
        return bp.environment(name)
    except KeyError:
        names = ", ".join(e.name for e in bp.environments)
        raise BlueprintError(f"{path}: no environment named '{name}'", hint=f"use one of: {names}") from None
