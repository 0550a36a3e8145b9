"""Each shared constant is written once and the other modules name it (issue #24, "each constant once")."""

from __future__ import annotations

import inspect

from msbench.benchmark import evaluate, options, run_report
from msbench.benchmark.metrics import MetricParams, _voxel
from msbench.datasets import _layout, case, lesjak, nifti
from msbench.methods.adapter import FitContext


def test_nifti_suffixes_and_the_affine_tolerance_live_in_datasets_nifti() -> None:
    assert evaluate.NIFTI_SUFFIXES is nifti.NIFTI_SUFFIXES
    assert evaluate.AFFINE_ATOL_MM is _layout.AFFINE_ATOL_MM is lesjak.AFFINE_ATOL_MM is nifti.AFFINE_ATOL_MM
    assert not hasattr(evaluate, "AFFINE_TOLERANCE_MM")


def test_metric_defaults_come_from_metric_params() -> None:
    defaults = inspect.signature(evaluate.evaluate_to_csv).parameters
    assert defaults["connectivity"].default == MetricParams.connectivity
    assert defaults["ndsc_reference_load"].default == MetricParams.ndsc_reference_load
    assert (
        inspect.signature(_voxel.voxel_scores).parameters["reference_load"].default == MetricParams.ndsc_reference_load
    )
    assert _voxel.MetricParams is MetricParams


def test_default_modalities_and_reference_are_the_datasets_ones() -> None:
    fields = FitContext.__dataclass_fields__
    assert fields["modalities"].default is case.DEFAULT_MODALITIES
    assert fields["reference"].default is case.DEFAULT_REFERENCE
    assert inspect.signature(case.Case.load_images).parameters["modalities"].default is case.DEFAULT_MODALITIES
    assert inspect.signature(case.Case.load_mask).parameters["reference"].default is case.DEFAULT_REFERENCE


def test_the_baseline_method_is_named_once() -> None:
    assert run_report.BASELINE is options.BASELINE
