"""Lesion statistics shared by the generator's summary and the realism report (pure numpy on masks)."""

from __future__ import annotations

import cc3d
import numpy as np


def lesion_sizes(mask: np.ndarray) -> np.ndarray:
    """Voxel counts of the 26-connected lesions of a boolean mask (int64, unordered)."""
    labels, n = cc3d.connected_components(np.asarray(mask, dtype=bool), connectivity=26, return_N=True)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    return np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.int64)


def oracle_threshold_dice(image: np.ndarray, truth: np.ndarray, within: np.ndarray, n_bins: int = 1024) -> float:
    """Best Dice that any single global threshold ``image >= t`` reaches against ``truth`` (an oracle).

    Thresholds are scanned over ``n_bins`` quantile bins of the intensities inside ``within``; truth
    voxels outside ``within`` count as missed.

    Args:
        image: Intensity volume.
        truth: Boolean truth mask.
        within: Boolean mask of the voxels a threshold may select (the brain).
        n_bins: Number of candidate thresholds.

    Returns:
        The best Dice, or NaN when ``truth`` is empty.
    """
    truth = np.asarray(truth, dtype=bool)
    n_truth = int(truth.sum())
    if n_truth == 0:
        return float("nan")
    values = image[within]
    is_lesion = truth[within]
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)))
    bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 1)
    lesion_per_bin = np.bincount(bins, weights=is_lesion, minlength=len(edges))
    all_per_bin = np.bincount(bins, minlength=len(edges))
    # Selecting every bin from k upwards: cumulative sums from the top.
    tp = np.cumsum(lesion_per_bin[::-1])[::-1]
    selected = np.cumsum(all_per_bin[::-1])[::-1]
    return float(np.max(2.0 * tp / (selected + n_truth)))
