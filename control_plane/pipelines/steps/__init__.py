"""The pipeline's steps as plain functions: what each KFP component runs, and what can be called
in-process (``bench/pipeline.py`` compares the two).

fetch (dataset by pinned digest) → data tests (feature schema, PII guard, transformation unit
tests) → train (one call of the user's entry point per grid point) → select (best by the declared
metric) → evaluate (the validation gate against the baseline) → register + sign.

Each step raises a ``PipelineFailed`` subclass that names the step, the cause and the fix; the
component wrapper (``context.component``) writes that to the run's status directory, so the engine can
tell the user which step stopped the run and why, without parsing logs.

One module per step (``fetch``, ``data_tests``, ``train`` (train and select), ``evaluate``,
``register``), the shared ``context``; every name is importable from here, as the KFP component
bodies in ``definition.py`` do.
"""

from control_plane.pipelines.steps.context import STEPS, StepContext, component
from control_plane.pipelines.steps.data_tests import UNIT_TEST_TIMEOUT_S, feature_set, run_data_tests
from control_plane.pipelines.steps.evaluate import baseline_ref, evaluate_candidate
from control_plane.pipelines.steps.fetch import check_bucket, fetch_dataset, s3_client, s3_location
from control_plane.pipelines.steps.register import BUILD_TYPE, BUILDER_ID, next_version, register_candidate
from control_plane.pipelines.steps.train import copy_model, select_best, train_candidate

_s3_location = s3_location  # the name pipelines/service.py imports

__all__ = [
    "BUILDER_ID", "BUILD_TYPE", "STEPS", "UNIT_TEST_TIMEOUT_S", "StepContext", "baseline_ref", "check_bucket",
    "component", "copy_model", "evaluate_candidate", "feature_set", "fetch_dataset", "next_version",
    "register_candidate", "run_data_tests", "s3_client", "s3_location", "select_best", "train_candidate",
]
