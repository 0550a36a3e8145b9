"""Mask helpers of msbench, numpy only: the one 0/1 check and the one plain overlap Dice.

They live with the data (the lowest layer) so that reading a mask needs no metric code and so that methods (which may
not import the harness or the metric suite) and datasets reach them; the metric suite re-exports the check.
"""

from __future__ import annotations

import numpy as np


def to_bool_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Return ``mask`` as a boolean array, checking that it holds only 0 and 1.

    Args:
        mask: Boolean, integer or floating array.
        name: What to call it in an error (an argument name or a file path).

    Raises:
        ValueError: NaN, or a value other than 0 and 1.
        TypeError: Neither boolean nor numeric.
    """
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind not in "uif":
        raise TypeError(f"{name} has dtype {mask.dtype}: expected a boolean or 0/1 numeric mask.")
    if mask.dtype.kind == "f" and np.isnan(mask).any():
        raise ValueError(f"{name} contains NaN: expected a binary 0/1 mask (threshold probabilities first).")
    # min/max are two cheap reductions; only floats need a per-voxel test for values inside (0, 1).
    out_of_range = mask.size > 0 and (mask.min() < 0 or mask.max() > 1)
    fractional = mask.dtype.kind == "f" and bool(((mask > 0) & (mask < 1)).any())
    if out_of_range or fractional:
        values = np.unique(mask)
        raise ValueError(
            f"{name} has values {values[:6].tolist()}{' ...' if values.size > 6 else ''}: expected a binary "
            "0/1 mask (threshold a probability map, or select one label of a label map)."
        )
    if mask.dtype.itemsize == 1 and mask.dtype.kind in "ui":
        return mask.view(bool)  # 0/1 bytes are valid booleans: no copy
    return mask != 0


def dice_score(pred: np.ndarray, ref: np.ndarray, extra_ref: int = 0) -> float:
    """Dice of two masks, 2|P & G| / (|P| + |G|); ``extra_ref`` reference voxels outside the arrays count as misses.

    The one plain overlap Dice for code that may not import the metric suite: the methods' validation (model
    selection, ``methods.engine``, nnU-Net 2D) and the phantom's statistics. Its value equals the suite's ``dice``
    (``benchmark.metrics``, computed there from the confusion counts it keeps for every other score), NaN when both
    are empty included: the scan has nothing to find and nothing was found, so it says nothing about the model.

    Args:
        pred: Predicted mask (boolean, or any array whose non-zero voxels are foreground).
        ref: Reference mask of the same shape.
        extra_ref: Reference voxels outside ``ref`` (for example outside a brain crop).
    """
    # No copy for boolean input (the usual case); other dtypes are read as "non-zero is foreground".
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    tp = int(np.logical_and(pred, ref).sum())
    denom = int(pred.sum()) + int(ref.sum()) + int(extra_ref)
    return float("nan") if denom == 0 else 2.0 * tp / denom
