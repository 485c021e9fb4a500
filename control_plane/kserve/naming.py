"""Names and labels that Kubernetes accepts.

Model names, versions and digests come from users and registries; Kubernetes label values allow
at most 63 characters of ``[A-Za-z0-9._-]`` that start and end alphanumeric. Values that do not fit
are made safe *and stay unique* (a short hash of the original is kept), and the exact value always
goes into an annotation next to the label, so nothing is lost.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from control_plane.errors import MlctlError

# The keys of ``drivers.base.Deployment.labels()``, so `kubectl get -l mlctl.io/service=fraud` finds
# what both drivers deploy. Label values are shortened where needed; annotations keep them exact.
PREFIX: Final = "mlctl.io"
LABEL_SERVICE: Final = f"{PREFIX}/service"
LABEL_COLOUR: Final = f"{PREFIX}/colour"
LABEL_MODEL: Final = f"{PREFIX}/model"
LABEL_VERSION: Final = f"{PREFIX}/version"
LABEL_DIGEST: Final = f"{PREFIX}/digest"
LABEL_RELEASE: Final = f"{PREFIX}/release"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "mlctl"
ANNOTATION_DIGEST: Final = f"{PREFIX}/digest"
ANNOTATION_MODEL: Final = f"{PREFIX}/model"
ANNOTATION_VERSION: Final = f"{PREFIX}/version"
ANNOTATION_RELEASE: Final = f"{PREFIX}/release"
# The whole ``drivers.base.Deployment`` as JSON, so ``deployed()`` reads back exactly what was applied.
ANNOTATION_DEPLOYMENT: Final = f"{PREFIX}/deployment"

MAX_LABEL_VALUE: Final = 63
# InferenceService names become Service, Deployment and Knative route names with suffixes such as
# "-predictor" and a namespace in 63-character DNS labels. 38 leaves room for our "-green" and
# KServe's suffixes (conservative on purpose: a name that fails there fails late, in the cluster).
MAX_SERVICE_NAME: Final = 38

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DIGEST = re.compile(r"^(?P<algo>sha256|sha384|sha512):(?P<hex>[0-9a-f]{64,128})$")


def label_value(raw: str) -> str:
    """``raw`` as a valid label value; unchanged when it already is one."""
    if len(raw) <= MAX_LABEL_VALUE and _LABEL_VALUE.match(raw):
        return raw
    tag = hashlib.sha256(raw.encode()).hexdigest()[:8]
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-_.")
    head = cleaned[: MAX_LABEL_VALUE - len(tag) - 1].rstrip("-_.")
    return f"{head}-{tag}" if head else tag


def digest_label(digest: str) -> str:
    """A model digest (``sha256:<hex>``) as a label value: its first 63 hex digits.

    That is what ``drivers.base.Deployment.labels()`` records too; 252 bits are unique in practice,
    and the full digest is in the ``mlctl.io/digest`` annotation, which verification uses.
    """
    m = _DIGEST.match(digest)
    if not m:
        raise MlctlError(
            f"model digest {digest!r} is not of the form sha256:<64 hex digits>",
            hint="pass the digest recorded by `mlctl model register` (mlctl model show NAME:V)",
        )
    return m["hex"][:MAX_LABEL_VALUE]


def check_digest(digest: str) -> str:
    digest_label(digest)
    return digest


def check_service_name(name: str) -> str:
    """A service name is the stem of InferenceService names: a short DNS-1035 label."""
    if len(name) > MAX_SERVICE_NAME or not _DNS_1035.match(name):
        raise MlctlError(
            f"service name {name!r} cannot name a KServe InferenceService",
            hint=(
                f"use at most {MAX_SERVICE_NAME} lowercase letters, digits and '-', starting with a letter "
                "and ending with a letter or digit (e.g. fraud-scoring)"
            ),
        )
    return name


def check_namespace(namespace: str) -> str:
    if len(namespace) > 63 or not _DNS_1123.match(namespace):
        raise MlctlError(
            f"namespace {namespace!r} is not a valid Kubernetes namespace name",
            hint="use at most 63 lowercase letters, digits and '-' (e.g. mlops-serving)",
        )
    return namespace
