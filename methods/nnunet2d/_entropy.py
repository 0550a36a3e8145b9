"""The paper's entropy check: the Shannon entropy of each axial mask slice, and the slices kept for training."""

from __future__ import annotations

import numpy as np


def slice_entropy_bits(mask: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits) of the label distribution of every axial slice of a binary mask.

    With ``p`` the lesion fraction of a slice, ``H = -p log2 p - (1 - p) log2 (1 - p)`` (Darestani et al., Eq. 1,
    summed over the two labels); an empty or full slice has entropy 0.

    Args:
        mask: Boolean (I, J, K) mask; the axial slice axis is the last one.

    Returns:
        Float64 array of length K.
    """
    if mask.ndim != 3:
        raise ValueError(f"expected a 3D (I, J, K) mask, got shape {mask.shape}.")
    pixels = mask.shape[0] * mask.shape[1]
    p = np.count_nonzero(mask, axis=(0, 1)) / max(pixels, 1)
    entropy = np.zeros(p.shape, dtype=np.float64)
    mixed = (p > 0) & (p < 1)
    q = p[mixed]
    entropy[mixed] = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    return entropy


def kept_slices(mask: np.ndarray, threshold: float) -> list[int]:
    """Axial indices of the slices whose mask entropy reaches ``threshold`` (the paper drops those below 0.01)."""
    if threshold < 0:
        raise ValueError(f"entropy_threshold must be >= 0 bits, got {threshold}.")
    return [int(k) for k in np.flatnonzero(slice_entropy_bits(mask) >= threshold)]
