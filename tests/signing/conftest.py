"""Fixtures for the signing tests: a small model directory of several files and a dev signer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from control_plane.signing import LocalSigner


def make_model(root: Path, seed: int = 0) -> Path:
    """A model directory shaped like a real one: weights, config, tokenizer files in a sub-directory."""
    rng = __import__("random").Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "weights.bin").write_bytes(rng.randbytes(256 * 1024))
    (root / "config.json").write_text(f'{{"layers": 4, "hidden": 64, "seed": {seed}}}\n')
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.txt").write_text("\n".join(f"tok{i}" for i in range(200 + seed)))
    (root / "tokenizer" / "merges.txt").write_bytes(rng.randbytes(4096))
    return root


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    return make_model(tmp_path / "sentiment-model")


@pytest.fixture()
def signer(mlctl_home: Path) -> LocalSigner:
    return LocalSigner()


@pytest.fixture()
def other_signer(tmp_path: Path) -> LocalSigner:
    key_dir = tmp_path / "other-keys"
    key_dir.mkdir(mode=0o700)
    return LocalSigner(key_dir / "other.pem")


def softhsm_module() -> str | None:
    for cand in (
        os.environ.get("SOFTHSM2_MODULE"),
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    ):
        if cand and Path(cand).exists():
            return cand
    return None
