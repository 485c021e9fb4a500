"""The model registry: versions with lineage, immutable bytes in an artifact store, provenance and
signatures. The public API other parts call::

    mv = register(name, version, path, datasets=[...], features=[...], code_commit=None, config=None,
                  params=None, metrics=None, parent=None, classification="internal",
                  derived_from=None, lineage_extra=None, store=None)      # -> ModelVersion
    mv = get_version(name, version)                                      # NotFound with a hint
    mvs = list_versions(name=None)
    path = materialize(name, version, dest)                              # exact registered bytes
    mv = sign(name, version, signer_kind="local")                        # bundle + provenance envelope
    result = verify(name, version, path=None)                            # raises VerificationFailed
"""

from control_plane.registry.lineage import parse_ref
from control_plane.registry.service import (
    get_ref,
    get_version,
    list_versions,
    materialize,
    materialized,
    register,
)
from control_plane.registry.signing import VerifyResult, sign, signature_material, verify
from control_plane.registry.view import ModelVersion, SignatureInfo

__all__ = [
    "ModelVersion", "SignatureInfo", "VerifyResult", "get_ref", "get_version", "list_versions", "materialize",
    "materialized", "parse_ref", "register", "sign", "signature_material", "verify",
]
