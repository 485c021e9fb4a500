"""Fuzzed YAML through ``blueprints.load_blueprint``: anything that is not a valid blueprint raises
``BlueprintError`` naming the file (and, for schema problems, the field) with a fix; nothing else."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blueprints import load_blueprint
from control_plane.errors import BlueprintError
from tests.blueprints.conftest import BASE

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_DIR = Path(tempfile.mkdtemp(prefix="bp-fuzz-"))


def _load(text: str) -> Any:
    path = _DIR / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_blueprint(path)
    except BlueprintError as exc:
        assert exc.message.startswith(str(path)), exc.message
        assert exc.hint, "every blueprint error carries a fix"
        assert exc.exit_code == 2
        return exc


YAML_BITS = st.sampled_from(
    [
        ": ",
        "- ",
        "\n",
        "  ",
        "\t",
        "[",
        "]",
        "{",
        "}",
        ",",
        "'",
        '"',
        "&a ",
        "*a",
        "!!python/object/apply:os.system ",
        "!!binary ",
        "? ",
        "|\n",
        ">\n",
        "#",
        "%YAML 1.2\n",
        "---\n",
        "...\n",
        "name",
        "region",
        "me-central-1",
        "eu-west-1",
        "10.40.0.0/16",
        "0x1F",
        "1e9",
        "~",
        "null",
        "yes",
        "\u00e9",
        "\x00",
        "\ufeff",
    ]
)


@FUZZ
@given(st.lists(YAML_BITS | st.text(max_size=5), max_size=40).map("".join))
def test_arbitrary_yaml_text_gives_blueprint_error_or_blueprint(text: str) -> None:
    result = _load(text)
    assert isinstance(result, BlueprintError) or result.environments


LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
VALUES = st.recursive(
    LEAVES,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(BASE)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES, st.booleans()), min_size=1, max_size=4))
def test_mutated_default_blueprint_fails_with_a_field(
    mutations: list[tuple[tuple[Any, ...], Any, bool]],
) -> None:
    doc = copy.deepcopy(BASE)
    for path, value, delete in mutations:
        parent: Any = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if delete:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    result = _load(yaml.safe_dump(doc, allow_unicode=True))
    if isinstance(result, BlueprintError) and "problem(s) in the blueprint" in result.message:
        # each problem line starts with the field it is about
        problems = result.message.split("\n")[1:]
        assert problems and all(":" in p for p in problems), result.message


def test_python_tags_are_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    result = _load(f"!!python/object/apply:os.system ['touch {marker}']\n")
    assert isinstance(result, BlueprintError)
    assert not marker.exists()


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    assert isinstance(_load("a: " + "[" * 5000 + "]" * 5000 + "\n"), BlueprintError)
