"""Sample models trained at set-up/test time from data that a package ships (no download)."""

from control_plane.samples.digits import SampleModel, build_sample_model, write_sample_tables

__all__ = ["SampleModel", "build_sample_model", "write_sample_tables"]
