"""`terraform validate` on every synthesized stack of both blueprints, with the real provider."""

from __future__ import annotations

import pytest

from control_plane.infra.terraform import Terraform
from tests.synthesis import Synthesis


@pytest.mark.slow
@pytest.mark.parametrize("which", ["local", "prod"])
def test_every_stack_validates(which: str, request: pytest.FixtureRequest, terraform_ready: None) -> None:
    syn: Synthesis = request.getfixturevalue(f"{which}_synth")
    failures = {}
    for stack in syn.stacks:
        tf = Terraform(stack.directory, local=which == "local", stack=stack.name)
        tf.init(backend=False)
        result = tf.validate()
        if not result["valid"] or result["error_count"]:
            failures[stack.name] = [d["summary"] for d in result["diagnostics"]]
    assert not failures, failures
    assert len(syn.stacks) == 5
