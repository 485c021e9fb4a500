"""The one seam between our code and CDKTF.

CDKTF was archived upstream on 2025-12-10 (final release 0.21.0). Everything that names the
``cdktf`` package or the prebuilt provider bindings goes through this module, so moving to the
community fork (CDK Terrain) or rendering with Pulumi changes this file, not the constructs.

The AWS provider bindings take 10-20 s to import in full; import the namespaced sub-modules you
need (``aws("s3_bucket")``) and only once per process (Python caches modules).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

# jsii prints a banner about the Node.js version on every import; it is noise in our output.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,22")

from cdktf import (
    App,
    AzurermBackend,
    Fn,
    S3Backend,
    TerraformOutput,
    TerraformStack,
    Token,
)
from constructs import Construct

__all__ = [
    "App",
    "AzurermBackend",
    "Construct",
    "Fn",
    "S3Backend",
    "TerraformOutput",
    "TerraformStack",
    "Token",
    "aws",
    "azurerm",
]

AWS_PROVIDER_VERSION = "5.100.0"  # what cdktf-cdktf-provider-aws==20.1.0 binds; mirrored offline


def aws(submodule: str) -> ModuleType:
    """A namespaced sub-module of the AWS provider bindings, e.g. ``aws("s3_bucket").S3Bucket``."""
    return importlib.import_module(f"cdktf_cdktf_provider_aws.{submodule}")


AZURERM_PROVIDER_VERSION = "4.55.0"  # what cdktf-cdktf-provider-azurerm==14.23.1 binds; NOT mirrored here


def azurerm(submodule: str) -> ModuleType:
    """A sub-module of the azurerm provider bindings, e.g. ``azurerm("storage_account").StorageAccount``."""
    return importlib.import_module(f"cdktf_cdktf_provider_azurerm.{submodule}")
