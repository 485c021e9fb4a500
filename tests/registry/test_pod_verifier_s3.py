"""The in-pod verifier (``python -m control_plane.signing.verify_pod``, the InferenceService's
storage-initializer) run as a process against the AWS emulator's S3: a version is registered to the
bucket and signed (which publishes ``model.sig`` beside it), the release gate passes, and *then*
the bucket is tampered with. The verifier downloads what a pod would and refuses it, naming the
file, on stderr and in the termination message KServe reports; an untouched bucket passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from control_plane import registry
from control_plane.artifacts import S3ArtifactStore
from control_plane.signing import LocalSigner
from tests.registry.conftest import make_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def s3_env(aws_emulator: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A per-test bucket and artifacts key on the emulator (as `mlctl infra apply` would create), and
    a blueprint file naming them (what mlctl reads to reach the bucket again when signing)."""
    import yaml

    from blueprints.loader import load_environment
    from control_plane.settings import DEFAULT_BLUEPRINT

    env = load_environment(DEFAULT_BLUEPRINT)
    env = env.model_copy(update={
        "name": f"t{uuid.uuid4().hex[:8]}",
        "registries": env.registries.model_copy(update={"model_bucket": f"models-{uuid.uuid4().hex[:12]}"}),
    })
    kw = {"region_name": "me-central-1", "endpoint_url": aws_emulator}
    boto3.client("s3", **kw).create_bucket(
        Bucket=env.registries.model_bucket, CreateBucketConfiguration={"LocationConstraint": "me-central-1"})
    kms = boto3.client("kms", **kw)
    key_id = kms.create_key(Description="artifacts")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/{env.name}-artifacts", TargetKeyId=key_id)
    blueprint = tmp_path / "blueprint.yaml"
    blueprint.write_text(yaml.safe_dump(env.model_dump(mode="json", exclude_none=True)))
    monkeypatch.setenv("MLCTL_BLUEPRINT", str(blueprint))
    return env


@pytest.fixture()
def s3(aws_emulator: str) -> Any:
    return boto3.client("s3", region_name="me-central-1", endpoint_url=aws_emulator)


@pytest.fixture()
def released(s3_env: Any, roles: Path, act_as: Callable[[str], None], tmp_path: Path) -> registry.ModelVersion:
    """fraud:1 registered to S3, signed, and past the release gate's verification."""
    act_as("eli")
    store = S3ArtifactStore(s3_env)
    registry.register("fraud", "1", make_model(tmp_path / "src" / "fraud"), store=store, code_commit="abcdef1")
    mv = registry.sign("fraud", "1")
    registry.verify("fraud", "1")  # the gate: downloads from S3, checks digests and the signature
    return mv


def trusted_keys_mount(root: Path, *pems: bytes) -> Path:
    """A directory laid out like a mounted ConfigMap (``..data`` link, hidden timestamped dir)."""
    data = root / "..2026_12_01_09_00_00.123"
    data.mkdir(parents=True)
    for i, pem in enumerate(pems):
        (data / f"key-{i}.pem").write_bytes(pem)
        (root / f"key-{i}.pem").symlink_to(f"..data/key-{i}.pem")
    (root / "..data").symlink_to(data.name)
    return root


def run_verifier(aws_emulator: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from control_plane.emulator.aws import DUMMY_CREDENTIALS

    env = {
        "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), "HOME": str(tmp_path),
        "AWS_REGION": "me-central-1", "AWS_ENDPOINT_URL": aws_emulator, **DUMMY_CREDENTIALS,
    }
    return subprocess.run(
        [sys.executable, "-m", "control_plane.signing.verify_pod", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


def pod_args(mv: registry.ModelVersion, pod: Path, keys: Path, *extra: str) -> list[str]:
    return ["--storage-uri", mv.artifact_uri, "--model-dir", str(pod / "models"), "--trusted-keys", str(keys),
            "--expected-digest", mv.root_digest, "--termination-log", str(pod / "termination-log"), *extra]


def test_signing_publishes_model_sig_beside_the_model_encrypted(released: registry.ModelVersion, s3: Any,
                                                                s3_env: Any) -> None:
    bucket, prefix = released.artifact_uri[len("s3://"):].split("/", 1)
    head = s3.head_object(Bucket=bucket, Key=f"{prefix}/model.sig")
    assert head["ServerSideEncryption"] == "aws:kms"
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}/model.sig")["Body"].read()
    assert body == registry.signature_material("fraud", "1")[0]


def test_untampered_bucket_passes_and_lands_exactly_the_registered_bytes(
    released: registry.ModelVersion, aws_emulator: str, tmp_path: Path
) -> None:
    keys = trusted_keys_mount(tmp_path / "keys", LocalSigner().public_key_pem())
    pod = tmp_path / "pod"
    proc = run_verifier(aws_emulator, tmp_path, *pod_args(released, pod, keys))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["verified"] is True and result["root_digest"] == released.root_digest
    assert result["files"] == len(released.files) and result["key_id"] == LocalSigner().key_id
    landed = sorted(p.relative_to(pod / "models").as_posix() for p in (pod / "models").rglob("*") if p.is_file())
    assert landed == sorted(released.files)  # model.sig is read, never written into the model volume
    assert not (pod / "termination-log").exists()


@pytest.mark.parametrize("tamper", ["change", "add", "delete"])
def test_a_bucket_tampered_after_the_gate_is_refused_naming_the_file(
    released: registry.ModelVersion, aws_emulator: str, s3: Any, tmp_path: Path, tamper: str
) -> None:
    bucket, prefix = released.artifact_uri[len("s3://"):].split("/", 1)
    if tamper == "change":
        name = "weights/part-1.bin"
        body = bytearray(s3.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read())
        body[100] ^= 0x01  # one flipped bit
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=bytes(body))
        says = f"'{name}' was changed"
    elif tamper == "add":
        name = "weights/backdoor.py"
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=b"import os\n")
        says = f"'{name}' is an extra file"
    else:
        name = "config.json"
        s3.delete_object(Bucket=bucket, Key=f"{prefix}/{name}")
        says = f"'{name}' is missing"

    keys = trusted_keys_mount(tmp_path / "keys", LocalSigner().public_key_pem())
    pod = tmp_path / "pod"
    proc = run_verifier(aws_emulator, tmp_path, *pod_args(released, pod, keys))
    assert proc.returncode == 8, proc.stdout + proc.stderr  # VerificationFailed
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr
    termination = (pod / "termination-log").read_text()
    assert termination.startswith("model verification failed:") and says in termination
    assert proc.stdout == ""


def test_a_validly_signed_other_version_copied_over_is_refused(
    released: registry.ModelVersion, aws_emulator: str, s3: Any, s3_env: Any, tmp_path: Path
) -> None:
    """Rollback by bucket: v2's objects and model.sig copied over v1's prefix verify as *a* signed
    model, but not as the released one; the pinned digest refuses it."""
    registry.register("fraud", "2", make_model(tmp_path / "src2" / "fraud", seed="b"), store=S3ArtifactStore(s3_env),
                      code_commit="abcdef1")
    v2 = registry.sign("fraud", "2")
    bucket, prefix1 = released.artifact_uri[len("s3://"):].split("/", 1)
    prefix2 = v2.artifact_uri.split("/", 3)[3]
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix1 + "/")["Contents"]:
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix2 + "/")["Contents"]:
        rel = obj["Key"][len(prefix2) + 1:]
        s3.copy_object(Bucket=bucket, Key=f"{prefix1}/{rel}", CopySource={"Bucket": bucket, "Key": obj["Key"]})

    keys = trusted_keys_mount(tmp_path / "keys", LocalSigner().public_key_pem())
    proc = run_verifier(aws_emulator, tmp_path, *pod_args(released, tmp_path / "pod", keys))
    assert proc.returncode == 8
    assert "another signed model" in proc.stderr and released.root_digest[:23] in proc.stderr


def test_an_untrusted_key_or_a_missing_signature_is_refused(
    released: registry.ModelVersion, aws_emulator: str, s3: Any, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    keys = trusted_keys_mount(tmp_path / "keys", other)
    proc = run_verifier(aws_emulator, tmp_path, *pod_args(released, tmp_path / "pod", keys))
    assert proc.returncode == 8 and "does not trust" in proc.stderr

    empty = tmp_path / "no-keys"
    empty.mkdir()
    proc = run_verifier(aws_emulator, tmp_path, *pod_args(released, tmp_path / "pod2", empty))
    assert proc.returncode == 8 and "no trusted public key" in proc.stderr

    bucket, prefix = released.artifact_uri[len("s3://"):].split("/", 1)
    s3.delete_object(Bucket=bucket, Key=f"{prefix}/model.sig")
    good = trusted_keys_mount(tmp_path / "keys2", LocalSigner().public_key_pem())
    proc = run_verifier(aws_emulator, tmp_path, *pod_args(released, tmp_path / "pod3", good))
    assert proc.returncode == 8 and "model.sig is missing" in proc.stderr

    # Signing again with the same key is a no-op that re-publishes the signature.
    registry.sign("fraud", "1")
    proc = run_verifier(aws_emulator, tmp_path, *pod_args(released, tmp_path / "pod4", good))
    assert proc.returncode == 0, proc.stderr


def test_a_restarted_init_container_starts_from_an_empty_volume(
    released: registry.ModelVersion, aws_emulator: str, tmp_path: Path
) -> None:
    pod = tmp_path / "pod"
    (pod / "models" / "leftover").mkdir(parents=True)
    (pod / "models" / "leftover" / "half.bin").write_bytes(b"x" * 10)
    keys = trusted_keys_mount(tmp_path / "keys", LocalSigner().public_key_pem())
    proc = run_verifier(aws_emulator, tmp_path, *pod_args(released, pod, keys))
    assert proc.returncode == 0, proc.stderr
    assert not (pod / "models" / "leftover").exists()


@pytest.fixture(scope="module")
def k8s_api() -> Any:
    from tests.k8s_emulator import KubernetesApi, crd_file, crds_dir, have_crds

    crds = ("serving.kserve.io_inferenceservices.yaml", "gateway.networking.k8s.io_httproutes.yaml")
    if not have_crds(*crds):
        pytest.skip(f"KServe / Gateway API CRDs not found in {crds_dir()} (set KSERVE_CRDS_DIR)")
    with KubernetesApi(crds=[crd_file(c) for c in crds]) as api:
        yield api


def test_the_pod_spec_applied_to_the_cluster_refuses_a_bucket_tampered_after_the_gate(
    released: registry.ModelVersion, s3_env: Any, s3: Any, aws_emulator: str, k8s_api: Any, tmp_path: Path
) -> None:
    """End to end on the emulators: the release's InferenceService goes to the Kubernetes API
    emulator (real CRD, server-side validation); its storage-initializer's own command and arguments,
    read back from the API, are run against the S3 emulator (mount paths mapped to directories here):
    they pass before the bucket is touched and refuse it, naming the file, after."""
    from control_plane.drivers.base import Deployment, Resources
    from control_plane.kserve import verification
    from control_plane.kserve.driver import KubernetesDriver
    from control_plane.kserve.model import ServingOptions

    namespace = f"t-{uuid.uuid4().hex[:8]}"
    kubeconfig = k8s_api.write_kubeconfig(tmp_path / "kubeconfig", namespace=namespace)
    driver = KubernetesDriver(s3_env, options=ServingOptions(namespace=namespace, gpus=0), kubeconfig=kubeconfig)
    driver.apply("fraud", "green", Deployment(
        service="fraud", model_name="fraud", model_version="1", digest=released.root_digest, release_id="rel-1",
        storage_uri=released.artifact_uri, resources=Resources(cpu="1", memory="2Gi", gpus=0),
        environment=s3_env.name,
    ))
    isvc = k8s_api.object("serving.kserve.io/v1beta1/inferenceservices", namespace, "fraud-green")
    [init] = isvc["spec"]["predictor"]["initContainers"]
    assert init["name"] == "storage-initializer"
    assert init["command"][:3] == ["python", "-m", "control_plane.signing.verify_pod"]

    keys = trusted_keys_mount(tmp_path / "keys", LocalSigner().public_key_pem())

    def pod_start(n: int) -> tuple[subprocess.CompletedProcess[str], Path]:
        pod = tmp_path / f"pod-{n}"
        mapping = {verification.MODEL_MOUNT: str(pod / "models"), verification.KEYS_MOUNT: str(keys)}
        args = [mapping.get(a, a) for a in init["args"]]
        return run_verifier(aws_emulator, tmp_path, *args, "--termination-log", str(pod / "termination-log")), pod

    proc, _ = pod_start(1)
    assert proc.returncode == 0, proc.stderr

    bucket, prefix = released.artifact_uri[len("s3://"):].split("/", 1)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/weights/part-2.bin", Body=b"tampered after the gate")
    proc, pod = pod_start(2)  # a restart or a scale-up, after the gate passed
    assert proc.returncode == 8
    assert "'weights/part-2.bin' was changed" in proc.stderr
    assert "'weights/part-2.bin' was changed" in (pod / "termination-log").read_text()


def test_a_broken_trust_store_stops_the_pod_naming_the_entry(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from control_plane.signing import verify_pod

    keys = trusted_keys_mount(tmp_path / "keys", LocalSigner().public_key_pem(), b"not a key\n")
    model = make_model(tmp_path / "m")
    code = verify_pod.run(["--model-dir", str(model), "--trusted-keys", str(keys),
                           "--termination-log", str(tmp_path / "tl")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 8
    assert "key-1.pem" in err and "not a valid PEM" in err
    assert (tmp_path / "tl").read_text().startswith("model verification failed: trusted key")
