"""What both parity tests (AWS: test_parity.py, Azure: test_parity_azure.py) inject and check: a
weakening on the Pulumi side (a resource transformation), the same on the CDKTF side (an edit of
the synthesized documents), and the one difference parity must name for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi

from stacks.pulumi.inventory import Registered, terraform_documents
from stacks.pulumi.parity import Difference, Inventory, pulumi_inventory


def pulumi_inv(registered: list[Registered], env: str) -> Inventory:
    """The inventory of environment ``env`` in what the Pulumi program registered."""
    return pulumi_inventory(terraform_documents(registered)[env], env)


def edit(doc_type: str, path_suffix: str,
         change: Callable[[dict[str, Any]], None]) -> Callable[[list[dict[str, Any]]], None]:
    """A CDKTF-side weakening: ``change`` the config of the ``doc_type`` whose construct path ends so."""
    def apply(docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            for cfg in doc.get("resource", {}).get(doc_type, {}).values():
                if cfg["//"]["metadata"]["path"].endswith(path_suffix):
                    change(cfg)
                    return
        raise AssertionError(f"no {doc_type} {path_suffix} in the synth")
    return apply


def transform(token: str, name_suffix: str, change: Callable[[dict[str, Any]], None]) -> Any:
    """A Pulumi-side weakening: ``change`` the inputs of the ``token`` resource whose name ends so."""
    def apply(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ == token and args.name.endswith(name_suffix):
            props = dict(args.props)
            change(props)
            return pulumi.ResourceTransformationResult(props, args.opts)
        return None
    return apply


def named(diffs: list[Difference], resource: str, setting: str) -> Difference:
    """The difference parity reported for ``resource`` ``setting``; fails the test when it missed it."""
    found = [d for d in diffs if d.resource == resource and d.setting == setting]
    assert found, f"parity missed the weakening of {resource} {setting}; it found: {[str(d) for d in diffs]}"
    assert resource in str(found[0]) and setting in str(found[0])
    return found[0]
