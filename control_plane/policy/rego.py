"""Rego (the OPA policy language) evaluated in-process with ``regopy`` (rego-cpp).

The one seam to ``regopy``: infra guardrails, RBAC and release approvals all call ``evaluate`` or
``RegoPolicy`` and get plain Python values back. Nothing else in the project imports ``regopy``.

Why this is more than a three-line wrapper (regopy 1.5.2 quirks, each covered by a test):

- ``Interpreter.set_input(dict)`` truncates floats to 6 decimals (1e-9 arrives as 0) and stores
  strings unescaped, so a ``"`` in an input string makes ``Output`` crash on its own JSON. We pass
  input and data as JSON *text* instead, which keeps both exact.
- ``add_data_json`` refuses exponent floats without a fraction (``1e-09``); we always write one.
- rego-cpp prints compile errors on *stdout* by default, which would corrupt ``--output json``;
  we set its log level to NONE and raise the errors ourselves, with file and line.

Numbers: Rego has one number type (0.0 comes back as 0) and rego-cpp prints floats with 15-16
significant digits, so compare thresholds inside the policy, not on returned floats.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from control_plane.errors import MlctlError

__all__ = ["RegoPolicy", "RegoPolicyError", "evaluate", "policy_files"]


class RegoPolicyError(MlctlError):
    """A policy file cannot be read or compiled, or a query fails at evaluation time.

    This is a defect in the policy (or in how it is called), never a denial: denials are values
    the policy returns.
    """

    exit_code = 10


def policy_files(directory: Path, pattern: str = "*.rego") -> list[Path]:
    """The Rego files of a policy directory, sorted so evaluation is reproducible."""
    if not directory.is_dir():
        raise RegoPolicyError(
            f"policy directory {directory} does not exist",
            hint="reinstall the project, or point the command at the repository's policies/ folder",
        )
    return sorted(p for p in directory.rglob(pattern) if p.is_file())


def _json_text(value: Any, what: str) -> str:
    """JSON text rego-cpp parses exactly (see the module docstring)."""
    parts: list[str] = []

    def enc(v: Any) -> None:
        if v is None or isinstance(v, bool):
            parts.append(json.dumps(v))
        elif isinstance(v, int):
            parts.append(str(int(v)))
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise RegoPolicyError(
                    f"{what} holds a non-finite number ({v})", hint="pass finite numbers to policies"
                )
            text = repr(v)
            if "e" in text and "." not in text.split("e")[0]:
                mantissa, exponent = text.split("e")
                text = f"{mantissa}.0e{exponent}"
            parts.append(text)
        elif isinstance(v, str):
            parts.append(json.dumps(str(v)))
        elif isinstance(v, Mapping):
            parts.append("{")
            for i, (k, item) in enumerate(v.items()):
                if not isinstance(k, str):
                    raise RegoPolicyError(
                        f"{what} has a non-string key {k!r}", hint="policy documents need string keys"
                    )
                if i:
                    parts.append(",")
                parts.append(json.dumps(k) + ":")
                enc(item)
            parts.append("}")
        elif isinstance(v, list | tuple | set | frozenset):
            items = sorted(v, key=repr) if isinstance(v, set | frozenset) else v
            parts.append("[")
            for i, item in enumerate(items):
                if i:
                    parts.append(",")
                enc(item)
            parts.append("]")
        else:
            raise RegoPolicyError(
                f"{what} holds a {type(v).__name__}, which has no JSON form",
                hint="convert it first (e.g. pydantic's model_dump(mode='json'), str() for paths)",
            )

    enc(value)
    return "".join(parts)


_ERROR_HEAD = re.compile(r"\(error (\d+):")
_ERROR_MSG = re.compile(r"\(errormsg (\d+):")


def _netstring(text: str, match: re.Match[str]) -> tuple[str, int]:
    size = int(match.group(1))
    start = match.end()
    return text[start : start + size], start + size


def _format_errors(raw: str, sources: Mapping[str, str]) -> str:
    """rego-cpp's s-expression error list as 'file:line:col: message' lines."""
    lines: list[str] = []
    for head in _ERROR_HEAD.finditer(raw):
        name, pos = _netstring(raw, head)
        where = name
        loc = re.match(r"\|(\d+)\|(\d+)", raw[pos:])
        if loc and name in sources:
            offset = int(loc.group(1))
            before = sources[name][:offset]
            where = f"{name}:{before.count(chr(10)) + 1}:{offset - before.rfind(chr(10))}"
        msg_match = _ERROR_MSG.search(raw, pos)
        message = _netstring(raw, msg_match)[0] if msg_match else "error"
        lines.append(f"{where}: {message}")
    return "; ".join(dict.fromkeys(lines)) or raw.strip()


_RAW_QUOTE = re.compile(r'(?<!\\)"')


def _decode_string(raw: str) -> str:
    """A string node's text: JSON-escaped (input, literals), quoted (concat) or raw (sprintf)."""
    candidates = [raw] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else []
    candidates += [f'"{raw}"', '"' + _RAW_QUOTE.sub(r'\\"', raw) + '"']
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, str):
            return value
    return raw


def _node_value(node: Any) -> Any:
    from regopy.rego_shared import NodeKind, rego_node_get, rego_node_size, rego_node_type, rego_node_value

    kind = rego_node_type(node)
    children = [rego_node_get(node, i) for i in range(rego_node_size(node))]
    if kind in (NodeKind.Term, NodeKind.Scalar):
        return _node_value(children[0])
    if kind == NodeKind.String:
        return _decode_string(rego_node_value(node))
    if kind in (NodeKind.Int, NodeKind.Float):
        number = json.loads(rego_node_value(node))
        return int(number) if kind == NodeKind.Int else float(number)
    if kind == NodeKind.Boolean:
        return rego_node_value(node) == "true"
    if kind == NodeKind.Null:
        return None
    if kind in (NodeKind.Array, NodeKind.Set):
        return [_node_value(c) for c in children]
    if kind == NodeKind.Object:
        out: dict[str, Any] = {}
        for item in children:
            key = _node_value(rego_node_get(item, 0))
            out[key if isinstance(key, str) else json.dumps(key)] = _node_value(rego_node_get(item, 1))
        return out
    raise RegoPolicyError(
        f"query returned a value of kind {kind.name}, which has no JSON form",
        hint="return sets, objects, arrays and scalars from policies",
    )


def _results_from_nodes(impl: Any) -> list[dict[str, Any]]:
    """The same shape as rego-cpp's JSON output, built from its node tree."""
    from regopy.rego_shared import NodeKind, rego_node_get, rego_node_size, rego_node_type, rego_output_node

    def kids(node: Any) -> list[Any]:
        return [rego_node_get(node, i) for i in range(rego_node_size(node))]

    results: list[dict[str, Any]] = []
    for result in kids(rego_output_node(impl)):
        entry: dict[str, Any] = {"expressions": [], "bindings": {}}
        for part in kids(result):
            if rego_node_type(part) == NodeKind.Terms:
                entry["expressions"] = [_node_value(t) for t in kids(part)]
            elif rego_node_type(part) == NodeKind.Bindings:
                for binding in kids(part):
                    var, value = kids(binding)
                    entry["bindings"][_node_value_var(var)] = _node_value(value)
        results.append(entry)
    return results


def _node_value_var(node: Any) -> str:
    from regopy.rego_shared import rego_node_value

    return str(rego_node_value(node))


class RegoPolicy:
    """A compiled set of Rego modules (plus optional base data) that answers many queries.

    Build it once per process for hot paths (RBAC checks); ``evaluate`` is the one-shot form.
    Queries are serialized with a lock: a rego-cpp interpreter is not thread-safe.
    """

    def __init__(
        self,
        policy_files: Sequence[Path] = (),
        *,
        modules: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        import regopy
        from regopy.rego_shared import LogLevel

        self._lock = threading.Lock()
        self._rego = regopy.Interpreter()
        self._rego.log_level = LogLevel.NONE
        self._sources: dict[str, str] = {}
        for path in policy_files:
            try:
                self._sources[str(path)] = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RegoPolicyError(
                    f"cannot read policy file {path}: {exc}", hint="check that the file exists and is UTF-8"
                ) from None
        self._sources.update(modules or {})
        if not self._sources:
            raise RegoPolicyError("no policy modules given", hint="pass at least one .rego file")
        for name, source in self._sources.items():
            try:
                self._rego.add_module(name, source)
            except regopy.RegoError as exc:
                raise RegoPolicyError(
                    f"policy does not compile: {_format_errors(str(exc), self._sources)}",
                    hint="fix the Rego at the position named (rego.v1 syntax: `deny contains x if {...}`)",
                ) from None
        if data:
            try:
                self._rego.add_data_json(_json_text(dict(data), "policy data"))
            except regopy.RegoError as exc:
                raise RegoPolicyError(
                    f"policy data rejected: {_format_errors(str(exc), self._sources)}",
                    hint="pass a JSON object of plain values as data",
                ) from None
        self.files = [Path(p) for p in policy_files]

    def query(self, query: str, input: Mapping[str, Any] | None = None, *, default: Any = None) -> Any:
        """Evaluate ``query`` (e.g. ``data.infra.deny``) against ``input``.

        Returns the value of the query's expression (a set comes back as a list), ``default``
        when it is undefined, a dict of the bindings when the query binds variables
        (``x := data.p.r``), and a list of such answers when the query has several results.
        """
        from regopy.rego_shared import (
            rego_free_output,
            rego_output_ok,
            rego_output_string,
            rego_query,
        )

        input_text = _json_text(dict(input or {}), "policy input")
        with self._lock:
            try:
                self._rego.set_input_term(input_text)
                impl = rego_query(self._rego._impl, query)
            except Exception as exc:  # regopy raises RegoError for compile errors surfaced at query time
                raise RegoPolicyError(
                    f"query {query!r} failed: {_format_errors(str(exc), self._sources)}",
                    hint="fix the policy or the query at the position named",
                ) from None
            try:
                text = rego_output_string(impl)
                if not rego_output_ok(impl):
                    raise RegoPolicyError(
                        f"query {query!r} failed: {self._runtime_error(impl) or text}",
                        hint="a rule produced conflicting values or a built-in failed; fix the policy",
                    )
                if text.strip() == "undefined":
                    return default
                try:
                    answer = json.loads(text)
                except json.JSONDecodeError:
                    # rego-cpp leaves quotes unescaped in some built-ins' strings (sprintf of a
                    # regex.find_n match, for one); read the value tree node by node instead.
                    answer = _results_from_nodes(impl)
            finally:
                rego_free_output(impl)
        results = answer if isinstance(answer, list) else [answer]
        values = [self._value(r, default) for r in results]
        return values[0] if len(values) == 1 else values

    @staticmethod
    def _value(result: Mapping[str, Any], default: Any) -> Any:
        bindings = result.get("bindings") or {}
        if bindings:
            return dict(bindings)
        expressions = result.get("expressions", [])
        if not expressions:
            return default
        return expressions[0] if len(expressions) == 1 else list(expressions)

    def _runtime_error(self, impl: Any) -> str:
        from regopy.rego_shared import (
            NodeKind,
            rego_node_get,
            rego_node_size,
            rego_node_type,
            rego_node_value,
            rego_output_node,
        )

        messages: list[str] = []

        def walk(node: Any) -> None:
            kind = rego_node_type(node)
            if kind == NodeKind.ErrorMessage:
                messages.append(str(rego_node_value(node)).strip())
                return
            for i in range(rego_node_size(node)):
                walk(rego_node_get(node, i))

        walk(rego_output_node(impl))
        return "; ".join(m for m in messages if m)


def evaluate(
    policy_files: Sequence[Path] | Iterable[Path],
    query: str,
    input: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    *,
    default: Any = None,
) -> Any:
    """One-shot: load ``policy_files`` (and ``data``), evaluate ``query`` on ``input``.

    >>> evaluate([Path("policies/rbac.rego")], "data.rbac.allow", {"role": "viewer"}, default=False)
    """
    return RegoPolicy(list(policy_files), data=data).query(query, input, default=default)
