"""Slice-level classification of axial slices (the last array axis), as in the nnU-Net 2D MS paper."""

from __future__ import annotations

import math

import numpy as np

from ._crop import CaseArrays
from ._kernels import Nodes
from ._nan import precision, ratio


def slice_scores(
    case: CaseArrays, coverage: float, connectivity_2d: int = 8, domain_on_slice: np.ndarray | None = None
) -> dict[str, float | int]:
    """Classify every axial slice, score it on all slices and on a balanced slice set; lesion-slice Dice.

    A slice is positive when G has a voxel on it; it is a true positive when at least one 2D reference
    component on it is covered by P for at least ``coverage`` of its pixels, else a false negative. A
    negative slice is a true negative when P has no voxel on it, else a false positive. Slices of the
    full volume outside the crop hold neither mask: true negatives.

    Balanced set (Darestani et al.): all positive slices plus as many negatives drawn at random. The
    scores are computed deterministically as the expectation over that draw: each negative slice
    counts ``P / N_neg`` times (accuracy and sensitivity are exact expectations; PPV and NPV are ratios
    of the expected counts). Negatives are the slices without a G voxel that intersect the domain
    (``domain_on_slice``) when one is given, else every slice without a G voxel.

    ``dice_lesion_slices`` is the Dice pooled over the positive slices only (Rondinella et al.).

    Args:
        case: The cropped case (last axis axial).
        coverage: Minimum covered fraction of a 2D reference component.
        connectivity_2d: In-plane connectivity of the reference components (4 or 8).
        domain_on_slice: Per axial slice of the full volume, whether the domain has a voxel on it.
    """
    if connectivity_2d not in (4, 8):
        raise ValueError(f"connectivity_2d={connectivity_2d!r}: expected 4 or 8.")
    n_slices, n_k = case.full_shape[2], case.pred.shape[2]
    ref_on_slice, pred_on_slice = _on_full_slices(case, n_slices)
    found = _on_full(_found_slices(case, coverage, connectivity_2d), case.origin[2], n_slices)
    tp = int(np.count_nonzero(ref_on_slice & found))
    n_pos = int(np.count_nonzero(ref_on_slice))
    fn = n_pos - tp
    fp = int(np.count_nonzero(~ref_on_slice & pred_on_slice))
    tn = n_slices - tp - fn - fp
    ref_has = n_pos > 0
    record: dict[str, float | int] = {
        "slice_tp": tp,
        "slice_fp": fp,
        "slice_fn": fn,
        "slice_tn": tn,
        "slice_accuracy": ratio(tp + tn, n_slices),
        "slice_sensitivity": ratio(tp, tp + fn),
        "slice_ppv": precision(tp, tp + fp, ref_has),
        "slice_npv": ratio(tn, tn + fn),
    }
    negatives = ~ref_on_slice if domain_on_slice is None else ~ref_on_slice & domain_on_slice
    n_neg = int(np.count_nonzero(negatives))
    fp_neg = int(np.count_nonzero(negatives & pred_on_slice))
    record.update(_balanced(tp, fn, fp_neg, n_neg))
    # Dice on the positive slices: every TP and FN lies there; only the FP need the slice test.
    is_tp = case.ref.ravel()[case.pred_fg]
    fp_k = case.pred_fg[~is_tp] % n_k
    fp_on_pos = int(np.count_nonzero(_crop_view(ref_on_slice, case.origin[2], n_k)[fp_k]))
    n_tp = int(np.count_nonzero(is_tp))
    n_fn = case.ref_fg.size - n_tp
    record["dice_lesion_slices"] = ratio(2 * n_tp, 2 * n_tp + fp_on_pos + n_fn) if ref_has else math.nan
    return record


def _balanced(tp: int, fn: int, fp_neg: int, n_neg: int) -> dict[str, float | int]:
    """Expected slice scores on all positives plus P negatives drawn uniformly from ``n_neg``."""
    n_pos = tp + fn
    nan = math.nan
    if n_pos == 0:
        return {"slice_n_negative_scored": n_neg, "slice_bal_accuracy": nan, "slice_bal_sensitivity": nan,
                "slice_bal_ppv": nan, "slice_bal_npv": nan}  # fmt: skip
    weight = n_pos / n_neg if n_neg else 0.0
    exp_fp, exp_tn = weight * fp_neg, weight * (n_neg - fp_neg)
    return {
        "slice_n_negative_scored": n_neg,
        "slice_bal_accuracy": (tp + exp_tn) / (2 * n_pos) if n_neg else nan,
        "slice_bal_sensitivity": tp / n_pos,
        "slice_bal_ppv": precision(tp, tp + exp_fp, True),
        "slice_bal_npv": ratio(exp_tn, exp_tn + fn) if n_neg else nan,
    }


def _on_full_slices(case: CaseArrays, n_slices: int) -> tuple[np.ndarray, np.ndarray]:
    """Per axial slice of the full volume: does G / P have a voxel on it."""
    n_k, k0 = case.pred.shape[2], case.origin[2]
    ref_k = np.zeros(n_k, dtype=bool)
    pred_k = np.zeros(n_k, dtype=bool)
    ref_k[case.ref_fg % n_k] = True
    pred_k[case.pred_fg % n_k] = True
    return _on_full(ref_k, k0, n_slices), _on_full(pred_k, k0, n_slices)


def _on_full(per_crop_slice: np.ndarray, k0: int, n_slices: int) -> np.ndarray:
    """Place a per-crop-slice flag on the full volume's slices (the crop's margin may lie outside)."""
    full = np.zeros(n_slices, dtype=bool)
    k = np.arange(per_crop_slice.size) + k0
    inside = (k >= 0) & (k < n_slices)
    full[k[inside]] = per_crop_slice[inside]
    return full


def _crop_view(per_full_slice: np.ndarray, k0: int, n_k: int) -> np.ndarray:
    """The crop's slices of a per-full-slice flag (False on margin slices outside the volume)."""
    k = np.arange(n_k) + k0
    inside = (k >= 0) & (k < per_full_slice.size)
    out = np.zeros(n_k, dtype=bool)
    out[inside] = per_full_slice[k[inside]]
    return out


def _found_slices(case: CaseArrays, coverage: float, connectivity_2d: int) -> np.ndarray:
    """Per axial slice of the crop: does some 2D reference component reach the coverage threshold?"""
    found = np.zeros(case.ref.shape[2], dtype=bool)
    fg = case.ref_fg
    if fg.size == 0:
        return found
    labels, n, slice_index = _slice_components(case.ref.shape, case.ref_nodes, connectivity_2d)
    sizes = np.bincount(labels, minlength=n + 1)
    covered = np.bincount(labels[case.pred.ravel()[fg]], minlength=n + 1)
    reached = covered >= coverage * sizes
    reached[0] = False
    slice_of_label = np.zeros(n + 1, dtype=np.int64)
    slice_of_label[labels] = slice_index
    found[slice_of_label[reached]] = True
    return found


def _slice_components(shape: tuple[int, ...], nodes: Nodes, connectivity_2d: int) -> tuple[np.ndarray, int, np.ndarray]:
    """2D components of the mask on each axial slice, labelled across slices, read at its voxels ``fg``.

    The in-plane steps (along i and j; diagonal ones for 8-connectivity) never cross a slice, so one
    labelling of the foreground (read through the mask's ``nodes``) keeps every slice's components apart.

    Returns:
        (label per voxel of ``fg``, number of labels, axial slice index per voxel of ``fg``).
    """
    _, n_j, n_k = shape
    steps = np.array([n_j * n_k, n_k] + ([n_j * n_k + n_k, n_j * n_k - n_k] if connectivity_2d == 8 else []))
    labels, n = nodes.label(steps)
    return labels, int(n), nodes.fg % n_k
