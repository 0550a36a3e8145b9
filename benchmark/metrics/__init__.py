"""The msbench metric suite: pure numpy/scipy over boolean masks with explicit spacing in mm.

Axis order is the NIfTI voxel order (i, j, k) as nibabel returns it; the axial slice axis is the last.
"""

from __future__ import annotations

from ._case import evaluate_case, evaluate_case_with_lesions
from .specs import CSV_COLUMNS, METRIC_SPECS, SUITE_VERSION, MetricParams, MetricSpec

__all__ = [
    "CSV_COLUMNS",
    "METRIC_SPECS",
    "SUITE_VERSION",
    "MetricParams",
    "MetricSpec",
    "evaluate_case",
    "evaluate_case_with_lesions",
]
