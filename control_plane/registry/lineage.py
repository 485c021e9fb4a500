"""Parsing and validating lineage pins (datasets, features, code, config, params, metrics).

Every bad pin fails with the flag, what is wrong and an example of what is right.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from control_plane.errors import MlctlError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
CLASSIFICATIONS = ("public", "internal", "confidential", "pii")

# Dataset digests: a content digest, or a data-versioning commit.
_DIGEST_FORMS: dict[str, tuple[re.Pattern[str], str, str]] = {
    "sha256": (re.compile(r"^[0-9a-f]{64}$"), "sha256", "sha256:<64 hex> content digest"),
    "md5": (re.compile(r"^[0-9a-f]{32}$"), "md5", "md5:<32 hex> (a DVC .dvc file's md5)"),
    "dvc": (re.compile(r"^([0-9a-f]{40}|[0-9a-f]{32})$"), "dvcCommit",
            "dvc:<40 hex git commit of the DVC repo> or dvc:<32 hex DVC md5>"),
    "lakefs": (re.compile(r"^[0-9a-f]{64}$"), "lakefsCommit", "lakefs:<64 hex lakeFS commit id>"),
}
DATASET_EXAMPLE = "s3://bucket/train.parquet@sha256:<64 hex>, or dvc://repo/data@dvc:<40 hex commit>"


class LineageError(MlctlError):
    exit_code = 2


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise LineageError(f"model name {name!r} is not valid",
                           hint="use letters, digits, '.', '_' or '-' (max 128), starting with a letter or digit")
    return name


def check_version(version: str) -> str:
    if not VERSION_RE.match(version or ""):
        raise LineageError(f"version {version!r} is not valid",
                           hint="use letters, digits, '.', '_', '+' or '-' (max 64), e.g. 3 or 1.2.0")
    return version


def parse_ref(ref: str, flag: str = "NAME:V") -> tuple[str, str]:
    name, sep, version = (ref or "").rpartition(":")
    if not sep or not name or not version:
        raise LineageError(f"{flag}: {ref!r} is not NAME:VERSION", hint="write it as e.g. fraud-detector:3")
    return check_name(name), check_version(version)


def parse_dataset(spec: str) -> dict[str, Any]:
    uri, sep, digest = spec.rpartition("@")
    if not sep or not uri or not digest:
        raise LineageError(f"--dataset {spec!r}: expected URI@DIGEST", hint=f"e.g. {DATASET_EXAMPLE}")
    algo, sep, value = digest.partition(":")
    form = _DIGEST_FORMS.get(algo.lower())
    if not sep or form is None:
        raise LineageError(
            f"--dataset {spec!r}: digest {digest!r} has no known algorithm",
            hint="use one of: " + "; ".join(f[2] for f in _DIGEST_FORMS.values()),
        )
    pattern, key, example = form
    if not pattern.match(value.lower()):
        raise LineageError(f"--dataset {spec!r}: {algo} digest {value!r} is malformed", hint=f"use {example}")
    return {"uri": uri, "digest": {key: value.lower()}, "ref": f"{uri}@{algo.lower()}:{value.lower()}"}


def parse_features(spec: str) -> dict[str, str]:
    name, sep, version = spec.rpartition("@")
    if not sep or not name or not version or not NAME_RE.match(name) or not VERSION_RE.match(version):
        raise LineageError(f"--features {spec!r}: expected NAME@VERSION", hint="e.g. customer-features@12")
    return {"name": name, "version": version}


def code_commit(explicit: str | None, where: Path) -> dict[str, Any]:
    """The code pin: --code-commit if given, else the enclosing git repository's HEAD, else unknown."""
    if explicit:
        if not re.match(r"^[0-9a-f]{7,64}$", explicit.lower()):
            raise LineageError(f"--code-commit {explicit!r} is not a commit id",
                               hint="pass a git commit SHA (7 to 64 hex characters)")
        return {"commit": explicit.lower(), "source": "flag"}

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    if not sha:
        return {"commit": "unknown", "source": "none",
                "note": f"no git repository encloses {where}; pass --code-commit to pin the code"}
    pin: dict[str, Any] = {"commit": sha, "source": "git"}
    remote = git("config", "--get", "remote.origin.url")
    if remote:
        pin["repository"] = remote
    status = git("status", "--porcelain", "--untracked-files=no")
    if status:
        pin["dirty"] = True  # uncommitted changes: the commit alone does not reproduce the code
    return pin


def read_json_object(path: Path, flag: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LineageError(f"{flag} {path}: no such file", hint="pass the path of a JSON file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LineageError(f"{flag} {path}: not valid JSON ({exc})", hint="fix the file; it must hold a JSON object") from None
    if not isinstance(data, dict):
        raise LineageError(f"{flag} {path}: expected a JSON object, got {type(data).__name__}",
                           hint='wrap the values in an object, e.g. {"lr": 0.01}')
    return data


def read_config(path: Path) -> tuple[bytes, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LineageError(f"--config {path}: no such file", hint="pass the training configuration file") from None
    except OSError as exc:
        raise LineageError(f"--config {path}: cannot read it ({exc})", hint="check the path and permissions") from None
    return data, hashlib.sha256(data).hexdigest()
