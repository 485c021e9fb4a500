"""Releases over the API: started by a verified identity, recorded and checked in the request,
driven by the server's background jobs (the request returns 202), watched with GET; a person
without the permission is refused (403) before anything is recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control_plane import audit
from control_plane.release import repository
from control_plane.samples import SampleModel, build_sample_model
from control_plane.services import Context, models
from tests.release.conftest import _stop_all
from tests.server.conftest import Api

FAST = {"strategy": "blue-green", "analysis_window": 1, "scale_down_delay": 60, "pre_analysis_requests": 20,
        "thresholds": {"min_requests": 0}}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleModel:
    return build_sample_model(tmp_path_factory.mktemp("api-samples") / "v1", variant="v1")


@pytest.fixture()
def registered(api: Api, sample: SampleModel, mlctl_home: Path) -> Iterator[str]:
    api.oidc.login("dana")
    models.register(Context(), "digits", "1", sample.path, code_commit="0" * 40)
    api.oidc.login("eli")
    models.sign(Context(), "digits", "1")
    try:
        yield "digits:1"
    finally:
        _stop_all(mlctl_home)


def _wait_for_end(api: Api, token: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = api.call("GET", "/v1/releases/digits", token).json()
        if view["state"] in ("DONE", "ROLLED_BACK", "REFUSED") or view["paused"]:
            return dict(view)
        assert time.monotonic() < deadline, view
        time.sleep(0.5)


def test_an_approver_may_not_release(api: Api, registered: str) -> None:
    r = api.call("POST", "/v1/releases", api.token("amira"), json={"model": registered, "env": "uae-local",
                                                                  "config": FAST})
    assert r.status_code == 403, r.text
    assert "actor 'amira' (roles: approver) lacks permission 'release'" in r.json()["error"]["message"]
    assert repository.latest_release("digits") is None  # refused before anything was recorded
    [denied] = [e for e in audit.entries() if e.action == "release" and e.decision == "deny"]
    assert denied.actor == "amira" and denied.details["identity"]["source"] == "verified"


def test_a_release_runs_in_the_background_and_is_watched(api: Api, registered: str) -> None:
    token = api.token("eli")
    started = time.monotonic()
    r = api.call("POST", "/v1/releases", token, json={"model": registered, "env": "uae-local", "config": FAST})
    assert r.status_code == 202, r.text
    assert r.json()["model"] == "digits:1" and r.json()["state"] not in ("DONE",)
    assert time.monotonic() - started < 30  # the request does not wait for the rollout
    again = api.call("POST", "/v1/releases", token, json={"model": registered, "env": "uae-local", "config": FAST})
    assert again.status_code == 409 and "in progress" in again.text  # one release per service
    done = _wait_for_end(api, token)
    assert done["state"] == "DONE", done
    assert done["runtime"]["serving"] is True and done["live"]["version"] == "1"
    row = repository.latest_release("digits")
    assert row is not None and row.created_by == "eli"
    assert api.call("GET", "/v1/releases", token).json()[0]["state"] == "DONE"


def test_bad_release_requests_name_the_field(api: Api, registered: str) -> None:
    token = api.token("eli")
    r = api.call("POST", "/v1/releases", token, json={"model": registered, "env": "uae-local",
                                                      "config": {"stratgy": "canary"}})
    assert r.status_code == 422 and "stratgy" in r.json()["error"]["message"]
    r = api.call("POST", "/v1/releases", token, json={"env": "uae-local"})
    assert r.status_code == 422 and "body.model" in r.json()["error"]["message"]
    r = api.call("POST", "/v1/releases", token, json={"model": "digits:9", "env": "uae-local"})
    assert r.status_code == 404 and "digits:9" in r.text
    assert repository.latest_release("digits") is None
