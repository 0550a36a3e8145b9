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


def confusion_counts(pred: np.ndarray, ref: np.ndarray, n_total: int | None = None) -> Confusion:
    """Count TP, FP, FN, TN of two boolean arrays of the same shape.

    Args:
        pred: Predicted mask (bool).
        ref: Reference mask (bool).
        n_total: Voxel count of the full volume when ``pred``/``ref`` are a crop holding every
            foreground voxel; TN is then ``n_total - TP - FP - FN``. Defaults to ``pred.size``.
    """
    n_pred = int(np.count_nonzero(pred))
    n_ref = int(np.count_nonzero(ref))
    tp = int(np.count_nonzero(np.logical_and(pred, ref)))
    fp, fn = n_pred - tp, n_ref - tp
    total = pred.size if n_total is None else n_total
    return Confusion(tp=tp, fp=fp, fn=fn, tn=total - tp - fp - fn)


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
