"""Slice-level classification of axial slices (the last array axis), as in the nnU-Net 2D MS paper."""

from __future__ import annotations

import cc3d
import numpy as np

from ._nan import ratio


def slice_scores(
    pred: np.ndarray, ref: np.ndarray, n_slices: int, coverage: float, connectivity_2d: int = 8
) -> dict[str, float | int]:
    """Classify every axial slice and score the classification.

    A slice is positive when ``ref`` has a voxel on it; it is a true positive when at least one 2D
    reference component on it is covered by ``pred`` for at least ``coverage`` of its pixels, else a
    false negative. A negative slice is a true negative when ``pred`` has no voxel on it, else a false
    positive. Slices of the full volume outside the crop hold neither mask: true negatives.

    Args:
        pred: Predicted mask (possibly cropped; the last axis is axial).
        ref: Reference mask, same shape.
        n_slices: Number of axial slices of the full volume.
        coverage: Minimum covered fraction of a 2D reference component.
        connectivity_2d: In-plane connectivity of the reference components (4 or 8).
    """
    if connectivity_2d not in (4, 8):
        raise ValueError(f"connectivity_2d={connectivity_2d!r}: expected 4 or 8.")
    ref_on_slice = ref.any(axis=(0, 1))
    pred_on_slice = pred.any(axis=(0, 1))
    found = _found_slices(pred, ref, coverage, connectivity_2d)
    tp = int(np.count_nonzero(ref_on_slice & found))
    fn = int(np.count_nonzero(ref_on_slice)) - tp
    fp = int(np.count_nonzero(~ref_on_slice & pred_on_slice))
    tn = n_slices - tp - fn - fp
    return {
        "slice_tp": tp,
        "slice_fp": fp,
        "slice_fn": fn,
        "slice_tn": tn,
        "slice_accuracy": ratio(tp + tn, n_slices),
        "slice_sensitivity": ratio(tp, tp + fn),
        "slice_ppv": ratio(tp, tp + fp),
        "slice_npv": ratio(tn, tn + fn),
    }


def _found_slices(pred: np.ndarray, ref: np.ndarray, coverage: float, connectivity_2d: int) -> np.ndarray:
    """Per axial slice: does some 2D reference component reach the coverage threshold?"""
    n_k = ref.shape[2]
    found = np.zeros(n_k, dtype=bool)
    ref = np.ascontiguousarray(ref)
    fg = np.flatnonzero(ref)
    if fg.size == 0:
        return found
    # A background slice between consecutive axial slices turns one 3D labelling into per-slice 2D
    # labelling (26-connectivity -> 8 in plane, 6 -> 4) with labels unique across slices.
    spaced = np.zeros((*ref.shape[:2], 2 * n_k - 1), dtype=bool)
    spaced[:, :, ::2] = ref
    labels, n = cc3d.connected_components(spaced, connectivity=26 if connectivity_2d == 8 else 6, return_N=True)
    slice_index = fg % n_k
    fg_labels = labels.ravel()[(fg // n_k) * (2 * n_k - 1) + 2 * slice_index]
    sizes = np.bincount(fg_labels, minlength=n + 1)
    covered = np.bincount(fg_labels[np.ascontiguousarray(pred).ravel()[fg]], minlength=n + 1)
    reached = covered >= coverage * sizes
    reached[0] = False
    slice_of_label = np.zeros(n + 1, dtype=np.int64)
    slice_of_label[fg_labels] = slice_index
    found[slice_of_label[reached]] = True
    return found
