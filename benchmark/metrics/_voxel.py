"""Voxel (overlap) metrics from the four confusion counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._nan import ratio

_MM3_PER_ML = 1000.0


@dataclass(frozen=True)
class Confusion:
    """Raw confusion counts of one case; every voxel score derives from these."""

    tp: int
    fp: int
    fn: int
    tn: int


def confusion_counts(pred_fg: np.ndarray, ref: np.ndarray, n_total: int) -> Confusion:
    """Count TP, FP, FN, TN from the predicted voxels' flat indices and the reference mask.

    Args:
        pred_fg: Flat indices of the predicted voxels (``np.flatnonzero(pred)``).
        ref: Reference mask (bool) of the same shape as ``pred``.
        n_total: Voxel count of the full volume (``pred``/``ref`` may be a crop holding every
            foreground voxel); TN is ``n_total - TP - FP - FN``.
    """
    n_ref = int(np.count_nonzero(ref))
    tp = int(np.count_nonzero(ref.ravel()[pred_fg]))
    fp, fn = int(pred_fg.size) - tp, n_ref - tp
    return Confusion(tp=tp, fp=fp, fn=fn, tn=n_total - tp - fp - fn)


def voxel_scores(c: Confusion, voxel_volume_mm3: float) -> dict[str, float | int]:
    """Every voxel metric of the suite from the confusion counts (NaN on a zero denominator)."""
    n_pred, n_ref = c.tp + c.fp, c.tp + c.fn
    signed = ratio(n_pred - n_ref, n_ref)
    return {
        "tp": c.tp,
        "fp": c.fp,
        "fn": c.fn,
        "tn": c.tn,
        "dice": ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
        "jaccard": ratio(c.tp, c.tp + c.fp + c.fn),
        "ppv": ratio(c.tp, c.tp + c.fp),
        "sensitivity": ratio(c.tp, c.tp + c.fn),
        "specificity": ratio(c.tn, c.tn + c.fp),
        "npv": ratio(c.tn, c.tn + c.fn),
        "accuracy": ratio(c.tp + c.tn, c.tp + c.fp + c.fn + c.tn),
        "extra_fraction": ratio(c.fp, c.tn + c.fn),
        "vol_pred_ml": n_pred * voxel_volume_mm3 / _MM3_PER_ML,
        "vol_ref_ml": n_ref * voxel_volume_mm3 / _MM3_PER_ML,
        "vol_diff": abs(signed),
        "rel_vol_error_pct": 100.0 * signed,
    }
