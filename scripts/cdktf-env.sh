# shellcheck shell=bash
# Source this from the repository root before `npx cdktf ...`: the CDKTF CLI's offline-safe
# environment. Every variable here stops a call to the internet or a noisy banner:
#   CHECKPOINT_DISABLE / DISABLE_VERSION_CHECK  no HashiCorp checkpoint, no npm version check
#   CDKTF_DISABLE_PLUGIN_CACHE_ENV              cdktf leaves the plugin cache to our CLI config
#   JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION  jsii's Node banner on every synth
#   TF_CLI_CONFIG_FILE                          the terraform CLI config mlctl writes: providers
#                                               from MLCTL_TF_PROVIDER_MIRROR when there is one
# Usage:  source scripts/cdktf-env.sh && BLUEPRINT=blueprints/uae-local.yaml npx cdktf synth
export CHECKPOINT_DISABLE=1
export DISABLE_VERSION_CHECK=true
export CDKTF_DISABLE_PLUGIN_CACHE_ENV=true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20,22
if [ -z "${MLCTL_TF_PROVIDER_MIRROR:-}" ]; then
  MLCTL_TF_PROVIDER_MIRROR=$(scripts/tf-mirror.sh)
fi
export MLCTL_TF_PROVIDER_MIRROR
# One writer of the terraform CLI config: the same file `mlctl infra ...` uses.
TF_CLI_CONFIG_FILE=$(.venv/bin/python -c 'from control_plane.infra.terraform import cli_config; print(cli_config())')
export TF_CLI_CONFIG_FILE
