"""Where mlctl keeps its state, how it finds the repository's assets, and every ``MLCTL_*`` setting.

Everything mlctl writes (database, dev signing key, pid files, terraform work dirs) lives under
``$MLCTL_HOME``; without it, under the user's data directory. Nothing is written elsewhere.

This module is the only reader of ``MLCTL_*`` environment variables: each one is a typed field of
``Settings`` (parsed and validated once, when the settings are built), and the rest of the package
asks ``current()``. A variable mlctl sets for a *child* process (``MLCTL_PIPELINE_DATA`` for the
user's transformation tests) is read in the child through ``current()`` too.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from control_plane.errors import MlctlError

PACKAGE_ROOT = Path(__file__).resolve().parent
# The repository (or the installed site-packages dir) holding blueprints/, policies/, stacks/.
PROJECT_ROOT = PACKAGE_ROOT.parent
BLUEPRINTS_DIR = PROJECT_ROOT / "blueprints"
POLICIES_DIR = PROJECT_ROOT / "policies"
DEFAULT_BLUEPRINT = BLUEPRINTS_DIR / "uae-local.yaml"


# Files mlctl writes are the owner's only: the database (registry, approvals, audit), logs, keys,
# exports and served model copies. ``private_files()`` sets the process umask so that every file
# (and every child process's file: model servers, the gateway) is created 0600 / 0700.
PRIVATE_UMASK = 0o077
_warned: set[Path] = set()


def private_files() -> None:
    """New files and directories of this process and its children: 0600 / 0700."""
    os.umask(PRIVATE_UMASK)


# --- parsing one variable: each parser gets (variable name, raw text) and raises MlctlError naming
# the variable and the fix. Empty text means "unset" everywhere (``FOO= mlctl ...`` unsets FOO).


def _text(_name: str, raw: str) -> str:
    return raw


def _path(_name: str, raw: str) -> Path:
    return Path(raw).expanduser()


def _paths(_name: str, raw: str) -> tuple[Path, ...]:
    """An ``os.pathsep``-separated list of files (like PATH)."""
    return tuple(Path(p.strip()).expanduser() for p in raw.split(os.pathsep) if p.strip())


def _whole(minimum: int, default: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise MlctlError(f"{name}={raw!r} is not a whole number >= {minimum}", hint=f"unset it to use {default}")
        return value

    return parse


def _port(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise MlctlError(f"{name}={raw!r} is not a TCP port (1-65535)",
                         hint="unset it to let mlctl pick a free port (kept for later runs)")
    return value


def _choice(choices: tuple[str, ...], default: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        if raw not in choices:
            raise MlctlError(f"{name}={raw!r} is not one of {', '.join(choices)}", hint=f"unset it for {default!r}")
        return raw

    return parse


@dataclass(frozen=True)
class HoldAt:
    """``MLCTL_RELEASE_HOLD_AT=STATE[,STATE...]:SECONDS`` (crash drills): where and how long to hold."""

    states: frozenset[str]
    seconds: float


def _hold_at(name: str, raw: str) -> HoldAt:
    states, _, seconds = raw.partition(":")
    try:
        wait = float(seconds or 30)
    except ValueError:
        wait = -1.0
    names = frozenset(s.strip().upper() for s in states.split(",") if s.strip())
    if wait < 0 or not names:
        raise MlctlError(f"{name}={raw!r} is not STATE[,STATE...]:SECONDS",
                         hint="e.g. GREEN_APPLIED:60 (STATE+ holds after the action); unset it to run straight through")
    return HoldAt(names, wait)


AUDIT_ANCHOR_MODES = ("auto", "s3", "off")
AUDIT_SIGNER_KINDS = ("local", "kms", "pkcs11")  # = control_plane.signing.signers.SIGNER_KINDS
ARTIFACT_STORE_KINDS = ("local", "s3")  # = control_plane.artifacts.STORE_KINDS

# Variables that are not ours by name but configure mlctl all the same (so they are watched too).
_FOREIGN_VARS = ("KSERVE_CRDS_DIR",)


def _env(var: str, parse: Callable[[str, str], Any] = _text) -> dict[str, Any]:
    """A field's source: the variable it is read from and the parser of its text."""
    return {"env": var, "parse": parse}


@dataclass(frozen=True)
class Settings:
    """Every ``MLCTL_*`` setting, resolved: flags (``configure``) over variables over defaults. Add a
    field here (with its variable) rather than reading ``os.environ`` anywhere else."""

    # who acts, on which environment, with which state
    actor: str | None = field(default=None, metadata=_env("MLCTL_ACTOR"))  # --as: an asserted identity (dev tier only)
    blueprint: Path | None = field(default=None, metadata=_env("MLCTL_BLUEPRINT", _path))  # --blueprint: the default environment
    home: Path | None = field(default=None, metadata=_env("MLCTL_HOME", _path))  # the state directory: mlctl_home()
    db_url: str | None = field(default=None, repr=False, metadata=_env("MLCTL_DB_URL"))  # may hold a password
    # identity, roles and keys (files default to $MLCTL_HOME/<name>)
    roles_file: Path | None = field(default=None, metadata=_env("MLCTL_ROLES_FILE", _path))
    identity_file: Path | None = field(default=None, metadata=_env("MLCTL_IDENTITY_FILE", _path))
    token_cache: Path | None = field(default=None, metadata=_env("MLCTL_TOKEN_CACHE", _path))
    client_id: str | None = field(default=None, metadata=_env("MLCTL_CLIENT_ID"))  # `mlctl login --client-credentials`
    client_secret: str | None = field(default=None, repr=False, metadata=_env("MLCTL_CLIENT_SECRET"))
    # set by the server for the steps of a pipeline run it drives (identity.delegation): a secret
    delegation: str | None = field(default=None, repr=False, metadata=_env("MLCTL_DELEGATION"))
    keyring_file: Path | None = field(default=None, metadata=_env("MLCTL_KEYRING_FILE", _path))
    pkcs11_module: str | None = field(default=None, metadata=_env("MLCTL_PKCS11_MODULE"))  # the HSM vendor's .so
    pkcs11_token: str | None = field(default=None, metadata=_env("MLCTL_PKCS11_TOKEN"))
    pkcs11_key: str | None = field(default=None, metadata=_env("MLCTL_PKCS11_KEY"))
    pkcs11_pin: str | None = field(default=None, repr=False, metadata=_env("MLCTL_PKCS11_PIN"))
    # the audit log
    audit_signer: str = field(default="local", metadata=_env("MLCTL_AUDIT_SIGNER", _choice(AUDIT_SIGNER_KINDS, "local")))
    audit_blueprint: Path | None = field(default=None, metadata=_env("MLCTL_AUDIT_BLUEPRINT", _path))
    audit_anchor: str = field(default="auto", metadata=_env("MLCTL_AUDIT_ANCHOR", _choice(AUDIT_ANCHOR_MODES, "auto")))
    audit_head_every: int = field(default=1000, metadata=_env("MLCTL_AUDIT_HEAD_EVERY", _whole(1, 1000)))
    audit_head_seconds: int = field(default=60, metadata=_env("MLCTL_AUDIT_HEAD_SECONDS", _whole(0, 60)))
    audit_trusted_keys: tuple[Path, ...] = field(default=(), metadata=_env("MLCTL_AUDIT_TRUSTED_KEYS", _paths))
    audit_log_id: str | None = field(default=None, metadata=_env("MLCTL_AUDIT_LOG_ID"))
    # `audit verify` of a log with at least this many entries runs one worker process per CPU (0: never)
    audit_verify_parallel_from: int = field(default=200_000,
                                            metadata=_env("MLCTL_AUDIT_VERIFY_PARALLEL_FROM", _whole(0, 200_000)))
    # the API server the CLI calls (docs/server.md); without it, the CLI acts on the local store
    server: str | None = field(default=None, metadata=_env("MLCTL_SERVER"))
    server_ca: Path | None = field(default=None, metadata=_env("MLCTL_SERVER_CA", _path))
    # the largest model upload the server accepts (`model register` through the server), in MiB: 413 over it
    server_max_upload_mb: int = field(default=2048, metadata=_env("MLCTL_SERVER_MAX_UPLOAD_MB", _whole(1, 2048)))
    # events, request logs, artifacts
    events_file: Path | None = field(default=None, metadata=_env("MLCTL_EVENTS_FILE", _path))
    request_log_policy: Path | None = field(default=None, metadata=_env("MLCTL_REQUEST_LOG_POLICY", _path))
    serving_log_dir: Path | None = field(default=None, metadata=_env("MLCTL_SERVING_LOG_DIR", _path))
    artifact_store: str = field(default="local", metadata=_env("MLCTL_ARTIFACT_STORE", _choice(ARTIFACT_STORE_KINDS, "local")))
    # local environment and tools
    emulator_endpoint: str | None = field(default=None, metadata=_env("MLCTL_EMULATOR_ENDPOINT"))
    gateway_port: int | None = field(default=None, metadata=_env("MLCTL_GATEWAY_PORT", _port))
    checkov: str | None = field(default=None, metadata=_env("MLCTL_CHECKOV"))  # checked (an executable?) where it is used
    tf_provider_mirror: str | None = field(default=None, metadata=_env("MLCTL_TF_PROVIDER_MIRROR"))
    azure_arm_endpoint: str | None = field(default=None, metadata=_env("MLCTL_AZURE_ARM_ENDPOINT"))
    release_hold_at: HoldAt | None = field(default=None, metadata=_env("MLCTL_RELEASE_HOLD_AT", _hold_at))  # crash drills only
    # pipelines (a token never comes from a flag: it stays out of shell history and process lists)
    kfp_host: str | None = field(default=None, metadata=_env("MLCTL_KFP_HOST"))
    kfp_token: str | None = field(default=None, repr=False, metadata=_env("MLCTL_KFP_TOKEN"))
    kfp_namespace: str | None = field(default=None, metadata=_env("MLCTL_KFP_NAMESPACE"))
    pipeline_image: str | None = field(default=None, metadata=_env("MLCTL_PIPELINE_IMAGE"))
    # set by the data-test step for the user's transformation tests (a child process; docs/pipelines.md)
    pipeline_data: Path | None = field(default=None, metadata=_env("MLCTL_PIPELINE_DATA", _path))
    # a cluster environment (until the blueprint describes serving; docs/kubernetes.md)
    kubeconfig: str | None = field(default=None, metadata=_env("MLCTL_KUBECONFIG"))  # else $KUBECONFIG / ~/.kube/config / in-cluster
    kube_context: str | None = field(default=None, metadata=_env("MLCTL_KUBE_CONTEXT"))
    kserve_namespace: str | None = field(default=None, metadata=_env("MLCTL_KSERVE_NAMESPACE"))
    kserve_mode: str | None = field(default=None, metadata=_env("MLCTL_KSERVE_MODE"))  # kserve.model.parse_mode reads it
    serving_hostname: str | None = field(default=None, metadata=_env("MLCTL_SERVING_HOSTNAME"))
    gpu_pool: str | None = field(default=None, metadata=_env("MLCTL_GPU_POOL"))
    prometheus_url: str | None = field(default=None, metadata=_env("MLCTL_PROMETHEUS_URL"))
    kserve_crds_dir: Path | None = field(default=None, metadata=_env("KSERVE_CRDS_DIR", _path))
    verifier_image: str | None = field(default=None, metadata=_env("MLCTL_VERIFIER_IMAGE"))
    trusted_keys_configmap: str = field(default="mlctl-trusted-model-keys", metadata=_env("MLCTL_TRUSTED_KEYS_CONFIGMAP"))
    # engine builds (docs/optimize.md): these override $MLCTL_HOME/optimize.yaml
    optimize_file: Path | None = field(default=None, metadata=_env("MLCTL_OPTIMIZE_FILE", _path))
    tools_image: str | None = field(default=None, metadata=_env("MLCTL_TOOLS_IMAGE"))
    tensorrt_image: str | None = field(default=None, metadata=_env("MLCTL_TENSORRT_IMAGE"))
    build_namespace: str | None = field(default=None, metadata=_env("MLCTL_BUILD_NAMESPACE"))
    build_role_arn: str | None = field(default=None, metadata=_env("MLCTL_BUILD_ROLE_ARN"))

    @property
    def default_blueprint(self) -> Path:
        """The environment a command acts on when none is named."""
        return self.blueprint or DEFAULT_BLUEPRINT

    @property
    def audit_environment_blueprint(self) -> Path:
        """The environment whose KMS key signs tree heads and whose audit bucket anchors them."""
        return self.audit_blueprint or self.default_blueprint


def variables() -> dict[str, str]:
    """Setting name -> the environment variable it is read from."""
    return {f.name: f.metadata["env"] for f in fields(Settings)}


_overrides: dict[str, Any] = {}
_cache: tuple[tuple[tuple[str, str], ...], tuple[tuple[str, Any], ...], Settings] | None = None
_cache_lock = threading.Lock()
_seen_environ: dict[Any, Any] | None = None  # a copy of os.environ's data as of the last check


def _watched(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith("MLCTL_") or k in _FOREIGN_VARS))


def from_environ(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings ``env`` gives (unset and empty variables keep the default); MlctlError naming
    the first bad variable and its fix."""
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = env.get(f.metadata["env"], "")
        if f.name == "tf_provider_mirror":
            raw = raw.strip()
        if raw != "":
            values[f.name] = f.metadata["parse"](f.metadata["env"], raw)
    return values


def _raw_environ() -> dict[Any, Any] | None:
    """CPython's dict behind ``os.environ`` (what ``setenv``/``putenv`` through os.environ change)."""
    raw = getattr(os.environ, "_data", None)
    return raw if isinstance(raw, dict) else None


def current() -> Settings:
    """The process's settings: flags given to ``configure``, over ``MLCTL_*`` variables, over defaults.
    Rebuilt only when a watched variable or a flag changes, so callers may call it freely."""
    global _cache, _seen_environ
    flags = tuple(sorted(_overrides.items()))
    raw = _raw_environ()
    with _cache_lock:
        # Fast path: the whole environment compared in C against the copy taken at the last build.
        # Filtering os.environ in Python for the watched variables took ~1 ms a call under load,
        # and an audit append asks for settings ~15 times (half of its time, bench/audit.py).
        if _cache is not None and _cache[1] == flags and raw is not None and raw == _seen_environ:
            return _cache[2]
        snapshot = _watched(os.environ)
        _seen_environ = dict(raw) if raw is not None else None
        if _cache is not None and _cache[0] == snapshot and _cache[1] == flags:
            return _cache[2]
        values = from_environ(dict(snapshot))
        values.update({k: v for k, v in _overrides.items() if v is not None})
        built = Settings(**values)
        _cache = (snapshot, flags, built)
        return built


def configure(**flags: Any) -> Settings:
    """A front end's flags (``None``: not given). Unknown names are a programming error."""
    unknown = set(flags) - {f.name for f in fields(Settings)}
    if unknown:
        raise TypeError(f"not a setting: {', '.join(sorted(unknown))}")
    _overrides.update(flags)
    return current()


def reset() -> None:
    """Forget every front-end flag (the CLI does it after each command: an in-process caller, a
    test, must not inherit the previous command's ``--as``)."""
    _overrides.clear()


@contextmanager
def exported_to_children(**values: Any) -> Iterator[None]:
    """These settings as ``MLCTL_*`` variables of the child processes started in the block, for the
    children mlctl cannot hand a Settings object (KFP's local runner spawns each pipeline step with
    this process's environment). The one place mlctl writes ``os.environ``; restored after."""
    names = variables()
    saved: dict[str, str | None] = {}
    try:
        for field_name, value in values.items():
            if value is None:
                continue
            var = names[field_name]
            saved[var] = os.environ.get(var)
            os.environ[var] = str(value)
        yield
    finally:
        for var, old in saved.items():
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old


@contextmanager
def overridden(**flags: Any) -> Iterator[Settings]:
    """``configure`` for a block (demos and tests), restoring the previous flags after it."""
    saved = dict(_overrides)
    try:
        yield configure(**flags)
    finally:
        _overrides.clear()
        _overrides.update(saved)


# --- readers kept for their callers (each a view of ``current()``) -------------------------------


def mlctl_home() -> Path:
    """The state directory, created private (0700) on first use; a warning if others can read it."""
    home = current().home or Path(platformdirs.user_data_dir("mlctl", appauthor=False))
    try:
        mode = os.stat(home).st_mode  # one system call: every audit append and token lookup comes here
    except (FileNotFoundError, NotADirectoryError):
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        home.chmod(0o700)  # mkdir's mode is filtered by the umask; be explicit
        return home
    if mode & 0o077 and home not in _warned:
        _warned.add(home)
        sys.stderr.write(
            f"warning: $MLCTL_HOME {home} is readable by other users (mode {mode & 0o777:o}); "
            f"it holds the registry, approvals, audit trail and keys: chmod 700 {home}\n"
        )
    return home


def state_dir(*parts: str) -> Path:
    """A sub-directory of ``$MLCTL_HOME`` (created on demand)."""
    path = mlctl_home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def host_secret(path: Path, what: str, *, create: bool = True, error: type[MlctlError] = MlctlError,
                missing_hint: str = "", size: int = 32) -> bytes:
    """A random key only this host's mlctl reads (the audit seal key, the delegation key): created
    0600 on first use when ``create`` (atomically, never replacing one: concurrent first uses agree
    on one key), refused with ``error`` unless it is this user's alone and ``size`` bytes."""
    if create and not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(size))
            os.link(tmp, path)  # atomic and refuses to replace an existing key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"{what} {path} is missing", hint=missing_hint or f"restore {path} from backup") from None
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.geteuid() or mode & 0o077:
        raise error(f"{what} {path} is not private to this user (owner uid {st.st_uid}, mode {mode:o})",
                    hint=f"chmod 600 {path} as the user mlctl runs as")
    key = path.read_bytes()
    if len(key) != size:
        raise error(f"{what} {path} is not {size} bytes", hint=missing_hint or f"restore {path} from backup")
    return key


def local_ca_dir() -> Path:
    """The local certificate authority (``control_plane.emulator.ca``): ``ca.pem`` is the root that
    clients of the gateway (and the API server) trust; ``ca.key`` never leaves it (0600)."""
    return state_dir("ca")


def local_ca_cert() -> Path:
    """The local CA's root certificate (what a client passes as its trust anchor)."""
    return local_ca_dir() / "ca.pem"


def actor() -> str | None:
    """The asserted identity: ``--as`` (a process override), else ``MLCTL_ACTOR``."""
    return current().actor


def verifier_image() -> str | None:
    """``MLCTL_VERIFIER_IMAGE``: the in-pod model verifier, REPOSITORY@sha256:<digest> (docs/kubernetes.md);
    by default the mlctl tools image (``MLCTL_TOOLS_IMAGE``, docs/optimize.md), which holds the same
    package. Unset: no InferenceService is rendered, since nothing would verify the model it serves."""
    s = current()
    return s.verifier_image or s.tools_image or None


def trusted_keys_configmap() -> str:
    """``MLCTL_TRUSTED_KEYS_CONFIGMAP``: the ConfigMap of PEM public keys the in-pod verifier trusts."""
    return current().trusted_keys_configmap


# --- the audit log (control_plane.audit reads these here and nowhere else) ---


def audit_signer_kind() -> str:
    """Who signs tree heads: ``local`` (development key), ``kms`` (the environment's KMS key), ``pkcs11``."""
    return current().audit_signer


def audit_blueprint() -> Path:
    """The environment whose KMS key signs heads and whose audit bucket anchors them."""
    return current().audit_environment_blueprint


def audit_anchor_mode() -> str:
    """``auto``: anchor heads in the audit bucket when the environment is reachable (real cloud, or a
    running emulator), keep them pending otherwise; ``s3``: anchoring is required (a failure is an
    error); ``off``: local copies only (verification says so)."""
    return current().audit_anchor


def audit_head_every() -> int:
    """Issue a signed tree head after this many unsigned entries..."""
    return current().audit_head_every


def audit_head_seconds() -> int:
    """...or once the newest head is this many seconds old (0: at every append)."""
    return current().audit_head_seconds


def audit_trusted_keys() -> list[Path]:
    """PEM public keys (the operator's keyring, ``os.pathsep``-separated) that heads must verify with.
    Empty: the configured signer's own public key (the dev key file, or KMS GetPublicKey)."""
    return list(current().audit_trusted_keys)


def audit_log_id() -> str | None:
    """Names this log in signed heads and in the bucket; default: derived from the database URL."""
    return current().audit_log_id


def audit_verify_parallel_from() -> int:
    """Logs this large are verified by worker processes over disjoint ranges (0: always in-process)."""
    return current().audit_verify_parallel_from
