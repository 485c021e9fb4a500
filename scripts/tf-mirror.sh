#!/usr/bin/env bash
# Print the directory that holds a terraform provider filesystem mirror (the parent of
# registry.terraform.io), if this machine has one. Used to fill MLCTL_TF_PROVIDER_MIRROR.
set -u
if [ -n "${MLCTL_TF_PROVIDER_MIRROR:-}" ]; then echo "$MLCTL_TF_PROVIDER_MIRROR"; exit 0; fi
found=$(find / -maxdepth 4 -type d -name registry.terraform.io -not -path '*/proc/*' 2>/dev/null | head -n1)
[ -n "$found" ] && dirname "$found"
exit 0
