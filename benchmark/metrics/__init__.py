"""The msbench metric suite: numpy and scipy over boolean masks with explicit spacing in mm, a few voxel loops in numba.

Axis order is the NIfTI voxel order (i, j, k) as nibabel returns it; the axial slice axis is the last.
One entry point scores a case (:func:`evaluate_case`); :func:`summarize` and
:func:`isbi_challenge_score` work on the table of case records.

Conventions (each tested against a peer or a hand-computed case under ``tests/metrics``):

- Boundary = object voxels with a face neighbour in the background (``mask ^ binary_erosion(mask)``,
  as medpy and MONAI); the outside of the volume is background.
- HD95 = max of the two directed 95th percentiles (linear interpolation), as MONAI, MetricsReloaded
  and DeepMind's surface-distance; medpy, panoptica and seg-metrics pool both directions, which gives
  equal or lower values. HD and ASSD (pooled: all distances / all boundary voxels) equal medpy 0.5's.
- Lesions: ISBI 2015 family with 18-connectivity by default, detection by any overlap, LFPR over
  predicted lesions. Anima/MSSEG family as ``animaSegPerfAnalyzer`` (6-connectivity, lesions > 3 mm3,
  alpha/beta/gamma), except that SensL with no reference lesion is NaN where Anima writes 0.
- nDSC (Shifts 2.0): 2TP / (k FP + 2TP + FN), k = (1 - r)|G| / (r (N - |G|)), r =
  ``MetricParams.ndsc_reference_load`` (0.001), N = voxels of the domain (``domain`` brain mask, else the
  whole volume; the record's ``domain_voxels`` and ``domain_is_mask`` say which).
- Like-for-like units: ``dice_lesion_slices`` (Dice over the axial slices where G has a voxel) and
  ``slice_bal_*`` (slice classification on a balanced slice set, as an expectation).
- Empty masks: one policy, ``empty-worst-1`` (see ``specs``), part of ``SUITE_VERSION``. An empty
  prediction on a scan with lesions gets the worst value of every score it leaves undefined (PPV 0,
  LFPR 1, F1 0, distances the field-of-view diagonal), so abstaining never pays; both-empty scans are
  NaN and counted apart; scores that reward an empty prediction by definition carry
  ``MetricSpec.not_for_ranking``.
"""

from __future__ import annotations

import importlib
from typing import Any

from msbench.datasets.masks import to_bool_mask

from ._aggregate import SUMMARY_COLUMNS, check_suite_version, pooled_dice, summarize
from ._challenge import ChallengeScore, isbi_challenge_score, volume_correlation
from .specs import (
    CSV_COLUMNS,
    METRIC_SPECS,
    SUITE_VERSION,
    MetricParams,
    MetricSpec,
    provenance_columns,
    rankable_metrics,
)

__all__ = [
    "CSV_COLUMNS",
    "METRIC_SPECS",
    "SUITE_VERSION",
    "SUMMARY_COLUMNS",
    "ChallengeScore",
    "LesionRow",
    "MetricParams",
    "MetricSpec",
    "check_suite_version",
    "evaluate_case",
    "evaluate_case_with_lesions",
    "isbi_challenge_score",
    "pooled_dice",
    "provenance_columns",
    "rankable_metrics",
    "summarize",
    "to_bool_mask",
    "volume_correlation",
]

# Scoring a case compiles numba kernels: imported on first use, so that the specs and the tables (the leaderboard,
# the gate, the cards) import with numpy and pandas alone.
_LAZY = {"LesionRow": "._case", "evaluate_case": "._case", "evaluate_case_with_lesions": "._case"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
