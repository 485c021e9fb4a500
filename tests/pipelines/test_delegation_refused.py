"""A pipeline step given a delegation credential that fails its checks stops the run at its first
step, naming why, and registers nothing: it never falls back to another identity."""

from __future__ import annotations

import pytest

from control_plane.errors import PipelineFailed
from control_plane.identity import delegation
from control_plane.identity.verifier import VerifiedIdentity
from tests.pipelines.conftest import pin


def test_a_step_with_an_edited_credential_fails_naming_why(datasets, pipeline_file, monkeypatch) -> None:
    from control_plane import registry
    from control_plane.pipelines import list_runs, load_config, run

    pat = VerifiedIdentity(issuer="https://idp.example.ae", subject="pat", kind="person", client_id="mlctl-cli",
                           roles=["platform-admin"])
    credential = delegation.mint(pat, "digits-0123456789ab", ttl_s=600)
    prefix, version, body, mac = credential.split(".")
    # Another run's credential, its MAC rubbed out: what a step's environment must never accept.
    monkeypatch.setenv("MLCTL_DELEGATION", ".".join((prefix, version, body, "A" * len(mac))))
    cfg = load_config(None, path=pipeline_file(grid={"C": [1.0], "max_iter": [300]}))
    with pytest.raises(PipelineFailed) as exc:
        run(cfg, dataset=pin(datasets["v1"]))
    assert exc.value.step == "fetch"
    assert "the delegation credential of this pipeline step is refused: its MAC does not verify" in exc.value.message
    assert "start the run again through the server" in (exc.value.hint or "")
    (view,) = list_runs("digits")
    assert view.status == "failed" and view.failed_step == "fetch" and view.exit_code == 4
    assert registry.list_versions("digits") == []
