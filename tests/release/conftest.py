"""Release-engine fixtures: sample models built once per session, a registry with digits:1 and
digits:2 registered and signed, roles, and a clean-up that stops every process the test started
(model servers, gateway, reapers) through their pid files under the test's $MLCTL_HOME."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from control_plane.samples import SampleModel, build_sample_model

ROLES = """actors:
  dana: [data-scientist]
  eli: [ml-engineer]
  amira: [approver]
  omar: [approver]
  pat: [platform-admin]
  ali: [auditor]
"""


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SampleModel]:
    root = tmp_path_factory.mktemp("samples")
    return {
        v: build_sample_model(root / v, variant=v) for v in ("v1", "v2", "broken", "bad-shape", "permuted")
    }


def _stop_all(home: Path) -> None:
    from control_plane.drivers import gateway
    from control_plane.emulator import processes

    run = home / "run"
    if not run.is_dir():
        return
    names = [p.stem for p in run.glob("*.pid")]
    # Reapers first (they would act on what we tear down), the gateway last but one, servers last.
    for name in sorted(names, key=lambda n: (not n.startswith("reaper"), n == "gateway")):
        if name == gateway.NAME:
            gateway.down()
        else:
            processes.stop(name, timeout=5)


@dataclass
class ReleaseWorld:
    home: Path
    samples: dict[str, SampleModel]

    def register(self, version: str, variant: str, *, sign: bool = True) -> None:
        from control_plane import registry

        src = self.home / "src" / f"{variant}-{version}"
        if not src.exists():
            shutil.copytree(self.samples[variant].path, src)
        registry.register("digits", version, src, code_commit="0" * 40)
        if sign:
            registry.sign("digits", version)


@pytest.fixture()
def world(
    mlctl_home: Path, samples: dict[str, SampleModel], monkeypatch: pytest.MonkeyPatch
) -> Iterator[ReleaseWorld]:
    (mlctl_home / "roles.yaml").write_text(ROLES)
    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    monkeypatch.delenv("MLCTL_RELEASE_HOLD_AT", raising=False)
    w = ReleaseWorld(mlctl_home, samples)
    w.register("1", "v1")
    w.register("2", "v2")
    try:
        yield w
    finally:
        _stop_all(mlctl_home)
