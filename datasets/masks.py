"""The one 0/1 check of msbench, numpy only: what a mask file, a prediction and a scorer's input must hold.

It lives with the data (the lowest layer) so that reading a mask needs no metric code; the metric suite re-exports it.
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
