"""Voxel (overlap) metrics from the four confusion counts, and the normalised Dice."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._nan import precision, ratio
from .specs import MetricParams

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


def normalised_dice(c: Confusion, n_domain: int, reference_load: float) -> float:
    """NDSC of the Shifts 2.0 MS benchmark (Malinin et al. 2022): 2TP / (k FP + 2TP + FN).

    k = (1 - r) |G| / (r (N - |G|)) rescales the false positives to a scan whose lesion load |G| / N
    equals r, so nDSC = Dice when the load is exactly r. Empty G with a non-empty P gives 0 (Shifts sets
    k = 1 there); both empty, or a domain no larger than G, give NaN (Shifts gives 1 for both empty).

    Args:
        c: Confusion counts of the case.
        n_domain: N, voxels of the scored domain (brain mask or whole volume).
        reference_load: r, in (0, 1).
    """
    n_ref = c.tp + c.fn
    if n_ref == 0:
        return 0.0 if c.fp > 0 else math.nan
    if n_domain <= n_ref:
        return math.nan
    k = (1.0 - reference_load) * n_ref / (reference_load * (n_domain - n_ref))
    return 2.0 * c.tp / (k * c.fp + 2.0 * c.tp + c.fn)


def voxel_scores(
    c: Confusion,
    voxel_volume_mm3: float,
    n_domain: int | None = None,
    reference_load: float = MetricParams.ndsc_reference_load,
) -> dict[str, float | int]:
    """Every voxel metric of the suite from the confusion counts, under the empty-mask policy.

    Args:
        c: Confusion counts.
        voxel_volume_mm3: Volume of one voxel.
        n_domain: Voxels of the scored domain for nDSC (default: the whole volume, TP+FP+FN+TN).
        reference_load: nDSC's r.
    """
    n_pred, n_ref = c.tp + c.fp, c.tp + c.fn
    signed = ratio(n_pred - n_ref, n_ref)
    n_all = c.tp + c.fp + c.fn + c.tn
    return {
        "tp": c.tp,
        "fp": c.fp,
        "fn": c.fn,
        "tn": c.tn,
        "dice": ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
        "jaccard": ratio(c.tp, c.tp + c.fp + c.fn),
        "ndsc": normalised_dice(c, n_all if n_domain is None else n_domain, reference_load),
        "ppv": precision(c.tp, n_pred, n_ref > 0),
        "sensitivity": ratio(c.tp, c.tp + c.fn),
        "specificity": ratio(c.tn, c.tn + c.fp),
        "npv": ratio(c.tn, c.tn + c.fn),
        "accuracy": ratio(c.tp + c.tn, n_all),
        "extra_fraction": ratio(c.fp, c.tn + c.fn),
        "vol_pred_ml": n_pred * voxel_volume_mm3 / _MM3_PER_ML,
        "vol_ref_ml": n_ref * voxel_volume_mm3 / _MM3_PER_ML,
        "vol_diff": abs(signed),
        "rel_vol_error_pct": 100.0 * signed,
    }
