"""The msbench metric suite: pure numpy/scipy over boolean masks with explicit spacing in mm.

Axis order is the NIfTI voxel order (i, j, k) as nibabel returns it; the axial slice axis is the last.
One entry point scores a case (:func:`evaluate_case`); :func:`summarize` and
:func:`isbi_challenge_score` work on the table of case records.
"""

from __future__ import annotations

from ._aggregate import SUMMARY_COLUMNS, pooled_dice, summarize
from ._case import LesionRow, evaluate_case, evaluate_case_with_lesions
from ._challenge import ChallengeScore, isbi_challenge_score, volume_correlation
from .specs import CSV_COLUMNS, METRIC_SPECS, SUITE_VERSION, MetricParams, MetricSpec

__all__ = [
    "CSV_COLUMNS",
    "METRIC_SPECS",
    "SUITE_VERSION",
    "SUMMARY_COLUMNS",
    "ChallengeScore",
    "LesionRow",
    "MetricParams",
    "MetricSpec",
    "evaluate_case",
    "evaluate_case_with_lesions",
    "isbi_challenge_score",
    "pooled_dice",
    "summarize",
    "volume_correlation",
]
