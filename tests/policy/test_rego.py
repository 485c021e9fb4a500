"""control_plane.policy.rego: the shared regopy wrapper returns exact plain values and clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.policy.rego import RegoPolicy, RegoPolicyError, evaluate, policy_files

ECHO = {"echo.rego": "package echo\nimport rego.v1\nvalue := input\nconfig := data.config\n"}
_echo = RegoPolicy(modules=ECHO)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**62), max_value=2**62)
    | st.floats(allow_nan=False, allow_infinity=False, width=64).filter(
        lambda f: f == 0 or 1e-300 < abs(f) < 1e300
    )
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _same(got: object, want: object) -> bool:
    """Numbers compare by value within 1e-13 (Rego has one number type, 0.0 comes back as 0, and
    rego-cpp prints floats with 15-16 significant digits); everything else exactly."""
    if isinstance(want, bool) or want is None or isinstance(want, str):
        return type(got) is type(want) and got == want
    if isinstance(want, int | float):
        return (
            isinstance(got, int | float)
            and not isinstance(got, bool)
            and math.isclose(got, want, rel_tol=1e-13)
        )
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same, got, want))
    assert isinstance(want, dict)
    return isinstance(got, dict) and got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_values_round_trip_exactly(value: object) -> None:
    # regopy's own set_input truncates floats to 6 decimals and breaks on quotes; ours must not
    got = _echo.query("data.echo.value", {"v": value})
    assert _same(got, {"v": value}), got


def test_data_keeps_small_floats_and_escapes() -> None:
    policy = RegoPolicy(modules=ECHO, data={"config": {"threshold": 1e-9, "quote": 'a"b\\c\n', "big": 1e300}})
    assert policy.query("data.echo.config") == {"threshold": 1e-9, "quote": 'a"b\\c\n', "big": 1e300}


def test_comparison_uses_the_exact_input() -> None:
    policy = RegoPolicy(
        modules={"p.rego": "package p\nimport rego.v1\nbreach if input.error_rate > 0.0000005\n"}
    )
    assert policy.query("data.p.breach", {"error_rate": 0.000001}, default=False) is True
    assert policy.query("data.p.breach", {"error_rate": 0.0000001}, default=False) is False


def test_sets_bindings_and_undefined() -> None:
    policy = RegoPolicy(
        modules={"p.rego": "package p\nimport rego.v1\nnames contains n if { some n in input.l }\n"}
    )
    assert sorted(policy.query("data.p.names", {"l": ["b", "a", "b"]})) == ["a", "b"]
    assert policy.query("x := data.p.names", {"l": ["a"]}) == {"x": ["a"]}
    assert policy.query("data.p.missing", default="undefined!") == "undefined!"


def test_compile_error_names_file_and_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.rego"
    bad.write_text("package bad\nimport rego.v1\n\ndeny contains msg if {\n")
    with pytest.raises(RegoPolicyError) as err:
        evaluate([bad], "data.bad.deny", {})
    assert f"{bad}:4:" in err.value.message
    assert err.value.hint
    out, _ = capfd.readouterr()
    assert out == "", "rego-cpp must not print errors on stdout (it would corrupt --output json)"


def test_conflicting_rule_is_a_clear_error() -> None:
    policy = RegoPolicy(
        modules={"p.rego": "package p\nimport rego.v1\nx := 1 if input.a\nx := 2 if input.a\n"}
    )
    with pytest.raises(RegoPolicyError, match="multiple outputs"):
        policy.query("data.p.x", {"a": True})


def test_bad_inputs_are_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(RegoPolicyError, match="non-finite"):
        _echo.query("data.echo.value", {"x": float("nan")})
    with pytest.raises(RegoPolicyError, match="no JSON form"):
        _echo.query("data.echo.value", {"x": object()})
    with pytest.raises(RegoPolicyError, match="cannot read"):
        RegoPolicy([tmp_path / "missing.rego"])
    with pytest.raises(RegoPolicyError, match="does not exist"):
        policy_files(tmp_path / "nope")
