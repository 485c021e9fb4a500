"""The Azure side of the environment model: UAE regions only, NC/ND GPU sizes, the azure block."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from blueprints import load_blueprint
from blueprints.schema import Cloud
from control_plane.errors import BlueprintError

REPO = Path(__file__).resolve().parents[2]
AZURE = REPO / "blueprints/uae-prod-azure.yaml"
MULTI = REPO / "blueprints/uae-multicloud.yaml"


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def azure_data() -> dict:
    return yaml.safe_load(AZURE.read_text())


def test_shipped_blueprints_load():
    env = load_blueprint(AZURE).environments[0]
    assert env.cloud is Cloud.azure and env.region == "uaenorth" and env.azure is not None
    multi = load_blueprint(MULTI)
    assert [(e.cloud, e.region) for e in multi.environments] == [
        (Cloud.aws, "me-central-1"),
        (Cloud.azure, "uaenorth"),
    ]


def test_uae_central_is_allowed(tmp_path):
    data = azure_data()
    data["region"] = "uaecentral"
    assert load_blueprint(write(tmp_path, data)).environments[0].region == "uaecentral"


@pytest.mark.parametrize("region", ["qatarcentral", "westeurope", "UAE North", "me-central-1"])
def test_non_uae_azure_region_is_refused_at_load(tmp_path, region):
    data = azure_data()
    data["region"] = region
    path = write(tmp_path, data)
    with pytest.raises(BlueprintError) as err:
        load_blueprint(path)
    msg = err.value.message
    assert str(path) in msg
    assert "region" in msg and f"'{region}' is outside the UAE" in msg
    assert "uaenorth, uaecentral" in msg


def test_non_uae_region_in_multicloud_file_names_the_environment(tmp_path):
    data = yaml.safe_load(MULTI.read_text())
    data["environments"][1]["region"] = "qatarcentral"
    with pytest.raises(BlueprintError) as err:
        load_blueprint(write(tmp_path, data))
    assert "environments.1" in err.value.message and "qatarcentral" in err.value.message


def test_cli_refuses_non_uae_region_without_traceback(tmp_path):
    data = azure_data()
    data["region"] = "westeurope"
    path = write(tmp_path, data)
    code = (
        "import sys; from blueprints import load_blueprint; from control_plane.errors import MlctlError\n"
        f"try:\n    load_blueprint({str(path)!r})\n"
        "except MlctlError as e:\n    print('error:', e.message); print('fix:', e.hint); sys.exit(e.exit_code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 2
    assert "westeurope" in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("size", "ok"),
    [
        ("Standard_NC8as_T4_v3", True),
        ("Standard_NC24ads_A100_v4", True),
        ("Standard_ND96isr_H100_v5", True),
        ("Standard_NV36ads_A10_v5", False),  # NV: visualisation, not in the NC/ND list
        ("Standard_D8s_v5", False),
        ("g5.xlarge", False),
    ],
)
def test_gpu_sizes_are_limited_to_the_nc_nd_catalog(tmp_path, size, ok):
    data = azure_data()
    data["cluster"]["gpu_pools"][0]["instance_type"] = size
    path = write(tmp_path, data)
    if ok:
        load_blueprint(path)
    else:
        with pytest.raises(BlueprintError) as err:
            load_blueprint(path)
        assert "is not a GPU type offered" in err.value.message and "Standard_NC" in err.value.message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("azure"), "cloud 'azure' needs an 'azure' block"),
        (lambda d: d["azure"].update(storage_account="St-Models"), "azure.storage_account"),
        (lambda d: d["azure"].update(storage_account="ab"), "azure.storage_account"),
        (lambda d: d["azure"].update(key_vault="kv--double"), "cannot contain '--'"),
        (lambda d: d["azure"].update(container_registry="acr-with-dash"), "azure.container_registry"),
        (lambda d: d["azure"].update(subscription_id="not-a-uuid"), "azure.subscription_id"),
        (lambda d: d["azure"]["aks"].update(admin_group_object_ids=[]), "azure.aks.admin_group_object_ids"),
        (lambda d: d["cluster"]["gpu_pools"][0].update(name="gpu-inference"), "AKS pool names are 1-12"),
        (lambda d: d["state"].update(bucket="tf.state"), "blob container name on Azure"),
        (lambda d: d.update(account_id="123456789012"), "account_id is an AWS account"),
        (lambda d: d["azure"].update(unknown_knob=True), "azure.unknown_knob"),
    ],
)
def test_bad_azure_settings_name_the_field_and_fix(tmp_path, mutate, expected):
    data = azure_data()
    mutate(data)
    with pytest.raises(BlueprintError) as err:
        load_blueprint(write(tmp_path, data))
    assert expected in err.value.message
    assert err.value.hint


def test_azure_block_on_an_aws_environment_is_refused(tmp_path):
    data = yaml.safe_load((REPO / "blueprints/uae-prod-aws.yaml").read_text())
    data["azure"] = azure_data()["azure"]
    with pytest.raises(BlueprintError) as err:
        load_blueprint(write(tmp_path, data))
    assert "applies to cloud 'azure' only" in err.value.message
