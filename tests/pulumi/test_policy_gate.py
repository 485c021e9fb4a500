"""The infra policy gate (policies/infra/*.rego) over the Pulumi program's resource list: the clean
program passes; one changed to a non-UAE region or a public bucket is refused, naming the resource."""

from __future__ import annotations

from typing import Any

import pulumi

from control_plane.policy.infra_gate import check_documents
from stacks.pulumi.inventory import render_with_mocks, terraform_documents
from tests.pulumi.conftest import ENV, PROD_AWS


def test_the_program_passes_the_gate(pulumi_documents: dict[str, dict[str, Any]]) -> None:
    report = check_documents(pulumi_documents, blueprint=str(PROD_AWS))
    assert report.passed, report.summary()
    assert report.stacks == [ENV]


def _changed(token: str, suffix: str, **props: Any) -> Any:
    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ == token and args.name.endswith(suffix):
            return pulumi.ResourceTransformationResult({**args.props, **props}, args.opts)
        return None
    return transform


def test_a_program_in_eu_west_1_is_refused() -> None:
    docs = terraform_documents(render_with_mocks(PROD_AWS, transform=_changed("pulumi:providers:aws", "/aws",
                                                                               region="eu-west-1")))
    report = check_documents(docs)
    assert not report.passed
    ids = {(f.id, f.resource) for f in report.unexplained}
    assert ("UAE-RES-001", "provider.aws") in ids, report.summary()
    assert any("eu-west-1" in f.message for f in report.unexplained)


def test_a_program_with_a_public_bucket_is_refused() -> None:
    public = _changed("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "model-bucket/public-access-block",
                      block_public_acls=False, block_public_policy=False, ignore_public_acls=False,
                      restrict_public_buckets=False)
    report = check_documents(terraform_documents(render_with_mocks(PROD_AWS, transform=public)))
    assert not report.passed
    hits = [f for f in report.unexplained if f.id == "UAE-PUB-004"]
    assert {f.resource for f in hits} == {
        f"aws_s3_bucket_public_access_block.{ENV}/registry/model-bucket/public-access-block"}
    assert {"block_public_policy", "restrict_public_buckets"} <= {m for f in hits for m in f.message.split()}
