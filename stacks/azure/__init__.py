"""The Azure stacks of one environment, one per layer, in apply order:
network -> security -> registry -> cluster.

On Azure the network comes first: the Key Vault is reachable only through a private endpoint in
the endpoints subnet, so the vault (security layer) needs the subnet and its DNS zone to exist.
The network layer also holds the resource group and the Log Analytics workspace every later
layer sends diagnostics to. Later layers read earlier ones through cdktf cross-stack references
(outputs + ``terraform_remote_state`` in the same azurerm backend). Stack names are prefixed with
the environment name, so a multi-cloud blueprint holds several environments in one app.
"""

from __future__ import annotations

from stacks.azure.build import LAYERS, build_azure_environment

__all__ = ["LAYERS", "build_azure_environment"]
