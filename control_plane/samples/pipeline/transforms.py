"""The sample's data transformation: a table of pixels and labels -> model inputs.

The trainer calls ``prepare``; ``test_transforms.py`` is its unit-test module, which the pipeline's
data-test step runs on the very data set the run trains on (``MLCTL_PIPELINE_DATA``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from control_plane.samples.pipeline import pixel_columns


def prepare(frame: Any, label: str = "label") -> tuple[np.ndarray, np.ndarray]:
    """(X float32 [n, 64] clipped to [0, 1], y int64 [n]) in the feature set's column order."""
    x = frame[pixel_columns()].to_numpy(dtype=np.float32)
    return np.clip(x, 0.0, 1.0), frame[label].to_numpy().astype(np.int64)
