"""The settings object: flags over environment over defaults, rebuilt when a variable changes,
clear errors for bad values, no ``os.environ`` writes; the one cached blueprint loader; and a guard
that keeps every ``MLCTL_*`` read inside ``control_plane/settings.py``."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from control_plane import environments, settings
from control_plane.errors import MlctlError
from control_plane.settings import DEFAULT_BLUEPRINT, configure, current, overridden
from tests.cli_runner import run_mlctl

REPO = Path(__file__).resolve().parents[1]


def test_flag_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLCTL_BLUEPRINT", raising=False)
    assert current().actor is None and current().default_blueprint == DEFAULT_BLUEPRINT
    assert current().audit_head_every == 1000 and current().audit_anchor == "auto"

    monkeypatch.setenv("MLCTL_ACTOR", "dana")
    monkeypatch.setenv("MLCTL_BLUEPRINT", str(tmp_path / "env.yaml"))
    assert current().actor == "dana" and current().default_blueprint == tmp_path / "env.yaml"

    with overridden(actor="eli", blueprint=tmp_path / "flag.yaml") as s:
        assert s.actor == "eli" and current().actor == "eli"
        assert current().default_blueprint == tmp_path / "flag.yaml"
        assert settings.actor() == "eli"
    assert current().actor == "dana"  # the block's flags are gone again


def test_configure_none_means_not_given_and_unknown_names_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_ACTOR", "dana")
    with overridden():
        assert configure(actor=None).actor == "dana"
        assert configure(actor="pat").actor == "pat"
        with pytest.raises(TypeError, match="not a setting: colour"):
            configure(colour="red")


def test_rebuilt_when_a_variable_changes_and_cached_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_AUDIT_HEAD_EVERY", "10")
    first = current()
    assert first is current()  # nothing changed: the same object, not a rebuild
    assert first.audit_head_every == 10 and settings.audit_head_every() == 10
    monkeypatch.setenv("MLCTL_AUDIT_HEAD_EVERY", "20")
    assert current() is not first and current().audit_head_every == 20
    monkeypatch.setenv("KSERVE_CRDS_DIR", "/srv/crds")  # watched too, though not MLCTL_-named
    assert current().kserve_crds_dir == Path("/srv/crds")


def test_values_are_typed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a, b = tmp_path / "a.pem", tmp_path / "b.pem"
    monkeypatch.setenv("MLCTL_AUDIT_TRUSTED_KEYS", f"{a}{os.pathsep}{b}{os.pathsep}")
    monkeypatch.setenv("MLCTL_GATEWAY_PORT", "8443")
    monkeypatch.setenv("MLCTL_RELEASE_HOLD_AT", "green_applied, DONE+:2.5")
    monkeypatch.setenv("MLCTL_ROLES_FILE", "~/roles.yaml")
    monkeypatch.setenv("MLCTL_AUDIT_SIGNER", "")  # empty is unset
    s = current()
    assert s.audit_trusted_keys == (a, b) and settings.audit_trusted_keys() == [a, b]
    assert s.gateway_port == 8443
    assert s.release_hold_at == settings.HoldAt(frozenset({"GREEN_APPLIED", "DONE+"}), 2.5)
    assert s.roles_file == Path("~/roles.yaml").expanduser()
    assert s.audit_signer == "local"


@pytest.mark.parametrize(
    ("var", "raw", "says"),
    [
        ("MLCTL_AUDIT_HEAD_EVERY", "0", "is not a whole number >= 1"),
        ("MLCTL_AUDIT_HEAD_SECONDS", "soon", "is not a whole number >= 0"),
        ("MLCTL_AUDIT_ANCHOR", "s4", "is not one of auto, s3, off"),
        ("MLCTL_AUDIT_SIGNER", "yubikey", "is not one of local, kms, pkcs11"),
        ("MLCTL_ARTIFACT_STORE", "gcs", "is not one of local, s3"),
        ("MLCTL_GATEWAY_PORT", "70000", "is not a TCP port (1-65535)"),
        ("MLCTL_RELEASE_HOLD_AT", "GREEN_APPLIED:later", "is not STATE[,STATE...]:SECONDS"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_fix(monkeypatch: pytest.MonkeyPatch, var: str, raw: str,
                                                   says: str) -> None:
    monkeypatch.setenv(var, raw)
    with pytest.raises(MlctlError) as err:
        current()
    assert err.value.message == f"{var}={raw!r} {says}"
    assert err.value.hint and "unset it" in err.value.hint
    monkeypatch.delenv(var)
    current()  # fixed: builds again


def test_a_bad_value_is_a_clean_cli_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_AUDIT_ANCHOR", "sometimes")
    result = run_mlctl("model", "list", in_process=True)
    err = result.stderr
    assert result.returncode == 1 and "MLCTL_AUDIT_ANCHOR='sometimes' is not one of auto, s3, off" in err and "fix:" in err


def test_configure_and_the_cli_flag_write_no_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    before = dict(os.environ)
    with overridden(actor="eli", blueprint=DEFAULT_BLUEPRINT, home=Path("/nowhere")):
        assert dict(os.environ) == before
    code = run_mlctl("--as", "eli", "--no-color", "model", "list", in_process=True).returncode
    assert code == 0
    assert dict(os.environ) == before  # neither --as nor --no-color leaked into the process environment


def test_secrets_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MLCTL_PKCS11_PIN", "MLCTL_KFP_TOKEN", "MLCTL_CLIENT_SECRET", "MLCTL_DB_URL"):
        monkeypatch.setenv(var, f"s3cret-{var}")
    text = repr(current())
    assert "s3cret" not in text
    assert current().pkcs11_pin == "s3cret-MLCTL_PKCS11_PIN"


def test_every_mlctl_variable_the_package_names_is_a_setting() -> None:
    """A variable documented anywhere in the package but missing from Settings would be read nowhere."""
    named = set()
    for path in (REPO / "control_plane").rglob("*.py"):
        named |= set(re.findall(r"\bMLCTL_[A-Z0-9]+(?:_[A-Z0-9]+)*\b", path.read_text(encoding="utf-8")))
    named.discard("MLCTL_PKCS11")  # the family's prefix in prose ("MLCTL_PKCS11_* settings")
    assert named - set(settings.variables().values()) == set()


# Reads of our variables anywhere but the settings module (a write, ``os.environ["MLCTL_X"] = ...``,
# is what the CLI's flags must not do either: see the last test).
_READ = re.compile(
    r"""os\.environ\.get\(\s*["']MLCTL_|os\.getenv\(\s*["']MLCTL_|environ\[\s*["']MLCTL_[A-Z0-9_]+["']\s*\](?!\s*=[^=])"""
    r"""|["']MLCTL_[A-Z0-9_]+["']\s+(?:not\s+)?in\s+os\.environ|environ\.setdefault\(\s*["']MLCTL_"""
)


def _offenders(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in sorted((REPO / "control_plane").rglob("*.py")):
        if path == REPO / "control_plane" / "settings.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    return found


def test_mlctl_variables_are_read_in_the_settings_module_alone() -> None:
    assert _offenders(_READ) == [], "read the setting from control_plane.settings.current() instead"


def test_the_guard_catches_each_spelling_of_a_read() -> None:
    for line in ('x = os.environ.get("MLCTL_HOME")', "x = os.getenv('MLCTL_ACTOR')", 'x = os.environ["MLCTL_DB_URL"]',
                 'if "MLCTL_HOME" not in os.environ:', 'os.environ.setdefault("MLCTL_ACTOR", "pat")'):
        assert _READ.search(line), line
    assert not _READ.search('os.environ["MLCTL_ACTOR"] = "amira"')  # a write: counted below, not here


_FLAG_WRITE = re.compile(r"""os\.environ\[\s*["'](?:MLCTL_[A-Z_]+|NO_COLOR)["']\s*\]\s*=[^=]""")


def test_no_module_passes_a_setting_through_os_environ() -> None:
    """``--as``, ``--blueprint``, ``--no-color`` reach the code below through ``configure``; the only
    ``MLCTL_*`` writes are ``settings.exported_to_children`` (for child processes, restored after)."""
    assert _offenders(_FLAG_WRITE) == []


# --- the one blueprint loader ---------------------------------------------------------------------


@pytest.fixture()
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every parse of a blueprint file (the YAML read and model validation), in order."""
    from blueprints import loader

    seen: list[Path] = []
    real = loader.load_blueprint

    def counting(path: str | Path):  # type: ignore[no-untyped-def]
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(loader, "load_blueprint", counting)
    environments.cache_clear()
    return seen


def test_the_loader_caches_per_file_and_rereads_an_edited_one(parses: list[Path], tmp_path: Path) -> None:
    bp = tmp_path / "edited.yaml"
    shutil.copy(DEFAULT_BLUEPRINT, bp)
    first = environments.load(bp)
    assert environments.load(bp) is first and environments.resolve(str(bp)) is first
    assert len(parses) == 1  # three asks, one parse

    text = bp.read_text()
    assert "tier: dev" in text
    bp.write_text(text.replace("tier: dev", "tier: prod"))  # same directory entry, new content
    edited = environments.load(bp)
    assert edited.tier == "prod" and first.tier == "dev"
    assert len(parses) == 2
    os.utime(bp, (0, 0))  # a touch alone (no new content) is not a new blueprint
    assert environments.load(bp) is edited and len(parses) == 2


def test_default_environment_follows_the_settings(parses: list[Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLCTL_BLUEPRINT", raising=False)
    assert environments.default_environment().name == "uae-local"
    other = tmp_path / "other.yaml"
    other.write_text(DEFAULT_BLUEPRINT.read_text().replace("name: uae-local", "name: uae-other", 1))
    monkeypatch.setenv("MLCTL_BLUEPRINT", str(other))
    assert environments.default_environment().name == "uae-other"
    with overridden(blueprint=DEFAULT_BLUEPRINT):
        assert environments.default_environment().name == "uae-local"
    # the signer's, the artifact store's and the CLI's default environment are this one
    from control_plane.artifacts import _environment as artifacts_env
    from control_plane.signing.signers import _default_environment as signer_env

    assert artifacts_env() is environments.default_environment() is signer_env()
    assert len(parses) == 2  # one per file


def test_the_loader_keeps_the_loaders_errors(parses: list[Path], tmp_path: Path) -> None:
    from control_plane.errors import BlueprintError

    with pytest.raises(BlueprintError, match="no such blueprint file"):
        environments.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(BlueprintError, match="malformed YAML"):
        environments.load(bad)
    with pytest.raises(BlueprintError, match="malformed YAML"):
        environments.load(bad)  # a failure is not cached: the file is read again
    assert len(parses) == 3
