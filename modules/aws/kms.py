"""KMS: one customer-managed key per purpose, with explicit least-privilege key policies.

Key administration is separate from key use. Use is granted to the account root, which delegates
to IAM policies (only principals whose IAM policy allows it can use a key), and, where an AWS
service acts without an IAM identity of ours (CloudWatch Logs, CloudTrail, the EC2 Auto Scaling
service-linked role for encrypted volumes), to that service with conditions pinning it to this
account and region.
"""

from __future__ import annotations

from typing import Any

from blueprints.schema import KeyPurpose, Kms
from modules.aws.common import DEFAULT_REGION, LogSink, account_id, merged_tags
from modules.aws.posture import KEY_DESCRIPTIONS, key_policy, key_settings
from modules.cdk import Construct, aws


def make_key(
    scope: Construct,
    id: str,
    purpose: KeyPurpose,
    *,
    name: str,
    region: str,
    deletion_window_days: int = 30,
    admins: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> Any:
    """One customer-managed key with its policy and alias ``alias/<name>-<purpose>``."""
    key = aws("kms_key").KmsKey(
        scope,
        id,
        description=f"{name}: {KEY_DESCRIPTIONS[purpose]}",
        **key_settings(purpose),  # usage, spec, rotation: modules/aws/posture.py
        deletion_window_in_days=deletion_window_days,
        policy=key_policy(purpose, account=account_id(scope), region=region, admins=admins or []),
        tags=merged_tags(tags, Name=f"{name}-{purpose}", Purpose=str(purpose)),
    )
    aws("kms_alias").KmsAlias(scope, f"{id}-alias", name=f"alias/{name}-{purpose}", target_key_id=key.key_id)
    return key


class KeyRing(Construct):
    """The environment's customer-managed keys, one per purpose, each with an alias
    ``alias/<name>-<purpose>``. Symmetric keys rotate yearly; the signing key is ECC_NIST_P256."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: Kms | None = None,
        kms_key: str | None = None,  # unused: a key ring makes keys; kept for the shared shape
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
        name: str = "mlops",
        region: str = DEFAULT_REGION,
    ) -> None:
        super().__init__(scope, id)
        spec = spec or Kms()
        self.keys: dict[KeyPurpose, Any] = {
            purpose: make_key(
                self,
                f"{purpose}-key",
                purpose,
                name=name,
                region=region,
                deletion_window_days=spec.deletion_window_days,
                admins=list(spec.admin_principals),
                tags=tags,
            )
            for purpose in spec.purposes
        }

    def arn(self, purpose: KeyPurpose) -> str:
        return str(self.keys[purpose].arn)


def own_key(scope: Construct, id: str, purpose: KeyPurpose, *, name: str, region: str,
            tags: dict[str, str] | None) -> str:
    """A dedicated key for a construct used without ``kms_key`` (secure with no arguments)."""
    return str(make_key(scope, id, purpose, name=f"{name}-{id}", region=region, tags=tags).arn)
