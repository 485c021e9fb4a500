"""Shared fixtures: an isolated $MLCTL_HOME per test, the real AWS emulator (moto server) and a
throwaway PostgreSQL cluster, each started once per session and only when a test asks for it, and
each blueprint synthesized once per session (``synthesizer`` and the ``*_synth`` fixtures)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.synthesis import Synthesis, Synthesizer

REPO = Path(__file__).resolve().parents[1]
TEST_VERIFIER_IMAGE = "123456789012.dkr.ecr.me-central-1.amazonaws.com/mlctl-tools@sha256:" + "ab" * 32
pytest_plugins = ["tests.oidc_fixtures"]  # the real OpenID provider (oidc_provider, oidc)
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,22")


@pytest.fixture(autouse=True)
def mlctl_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own $MLCTL_HOME, so no test sees another's state."""
    home = tmp_path_factory.mktemp("mlctl-home")
    monkeypatch.setenv("MLCTL_HOME", str(home))
    monkeypatch.delenv("MLCTL_DB_URL", raising=False)
    monkeypatch.delenv("MLCTL_ACTOR", raising=False)
    # Rendered InferenceServices need the in-pod verifier's image, pinned (docs/kubernetes.md).
    monkeypatch.setenv("MLCTL_VERIFIER_IMAGE", TEST_VERIFIER_IMAGE)
    from control_plane import settings
    from control_plane.store import db

    settings.reset()  # no test inherits another's front-end flags (--as, --blueprint)
    db.reset_engines()
    return home


@contextmanager
def moto_server() -> Iterator[str]:
    """A real moto server on a loopback port of its own, stopped on exit.

    It binds port 0 and we read the port it got from its log: a port picked here and bound later
    could be taken in between (the suite runs in several processes), and connecting to it would
    then reach another process's emulator without noticing."""
    import re

    from control_plane.emulator import processes

    exe = Path(os.sys.executable).parent / "moto_server"  # type: ignore[attr-defined]
    log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", "0"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, port = time.monotonic() + 30, None
        while port is None:
            found = re.search(r"Running on http://127\.0\.0\.1:(\d+)", Path(log.name).read_text(errors="replace"))
            if found:
                port = int(found.group(1))
            elif proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto (test) did not start: see {log.name}")
            else:
                time.sleep(0.1)
        processes.wait_for_port("127.0.0.1", port, timeout=30, name="moto (test)")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The session's moto server (one per test process): what tests create there stays for the
    session, so a test that needs an account with nothing of ours in it starts its own."""
    with moto_server() as url:
        yield url


def point_at_emulator(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point mlctl and boto3 at an emulator, with moto's dummy credentials."""
    from control_plane.emulator.aws import DUMMY_CREDENTIALS

    monkeypatch.setenv("MLCTL_EMULATOR_ENDPOINT", endpoint)
    for key, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "me-central-1")
    return endpoint


@pytest.fixture()
def aws_emulator(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point mlctl and boto3 at the session's emulator, with moto's dummy credentials."""
    return point_at_emulator(moto_endpoint, monkeypatch)


def _pg_bindir() -> Path | None:
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        if (Path(out) / "initdb").exists():
            return Path(out)
    except (OSError, subprocess.CalledProcessError):
        pass
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "initdb").exists():
            return cand
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster in a temp dir (run as the postgres user when we are root)."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    from control_plane.emulator import processes

    base = Path(tempfile.mkdtemp(prefix="mlctl-pg-"))
    data = base / "data"
    port = processes.free_port()
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "mlctl", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "pg.log"), "-w", "-o",
         f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ok = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
            )
            if ok.returncode == 0:
                break
            time.sleep(0.2)
        yield f"postgresql+psycopg://mlctl@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def pg_database(postgres_url: str) -> str:
    """A fresh database in the session cluster for one test."""
    import uuid

    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, mlctl_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a store test on SQLite and on a real PostgreSQL; sets MLCTL_DB_URL accordingly."""
    if request.param == "sqlite":
        url = f"sqlite:///{mlctl_home / 'mlctl.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    monkeypatch.setenv("MLCTL_DB_URL", url)
    return url


# ---- Synthesized blueprints: each one once per session, shared by every package (tests/synthesis.py)
@pytest.fixture(scope="session")
def synthesizer(tmp_path_factory: pytest.TempPathFactory) -> Synthesizer:
    """``synthesizer("uae-prod-aws")``: the session's synthesis of blueprints/<name>.yaml."""
    from tests.synthesis import Synthesizer

    return Synthesizer(tmp_path_factory)


@pytest.fixture(scope="session")
def local_synth(moto_endpoint: str, synthesizer: Synthesizer) -> Synthesis:
    """uae-local against the session's moto server, so its stacks can really be applied."""
    return synthesizer("uae-local", emulator_endpoint=moto_endpoint)


@pytest.fixture(scope="session")
def prod_synth(synthesizer: Synthesizer) -> Synthesis:
    return synthesizer("uae-prod-aws")


@pytest.fixture(scope="session")
def azure_synth(synthesizer: Synthesizer) -> Synthesis:
    return synthesizer("uae-prod-azure")


@pytest.fixture(scope="session")
def multicloud_synth(synthesizer: Synthesizer) -> Synthesis:
    return synthesizer("uae-multicloud")
