"""Unit tests of the sample's data transformation, run inside the pipeline's data-test step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from control_plane.samples.pipeline.transforms import prepare
from control_plane.settings import current as settings


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    # The data-test step runs this module in a child process and names the data set in
    # MLCTL_PIPELINE_DATA (docs/pipelines.md); the settings object reads it, as every MLCTL_* variable.
    data = settings().pipeline_data
    if data is None:
        pytest.fail("MLCTL_PIPELINE_DATA is not set: run these tests through the pipeline's data-test step "
                    "(or set it to a CSV of the data set)")
    return pd.read_csv(data)


def test_prepare_keeps_every_row_and_the_pixel_order(frame: pd.DataFrame) -> None:
    x, y = prepare(frame)
    assert x.shape == (len(frame), 64) and y.shape == (len(frame),)
    assert np.allclose(x[:, 5], frame["px_5"].clip(0, 1))


def test_prepare_yields_model_ready_types(frame: pd.DataFrame) -> None:
    x, y = prepare(frame)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_every_digit_is_represented(frame: pd.DataFrame) -> None:
    _, y = prepare(frame)
    assert set(np.unique(y)) == set(range(10))
