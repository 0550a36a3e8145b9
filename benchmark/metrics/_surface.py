"""Surface distances (HD, HD95, ASSD) in mm between the 6-connected boundaries of two masks."""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree


def boundary(mask: np.ndarray) -> np.ndarray:
    """Object voxels with at least one face neighbour (6-connectivity) in the background.

    Same set as ``mask ^ scipy.ndimage.binary_erosion(mask)`` (medpy, MONAI). The mask must have a
    background margin of at least one voxel on every side (``crop_case`` guarantees it).
    """
    core = mask[1:-1, 1:-1, 1:-1]
    interior = (
        core
        & mask[:-2, 1:-1, 1:-1]
        & mask[2:, 1:-1, 1:-1]
        & mask[1:-1, :-2, 1:-1]
        & mask[1:-1, 2:, 1:-1]
        & mask[1:-1, 1:-1, :-2]
        & mask[1:-1, 1:-1, 2:]
    )
    edge = mask.copy()
    edge[1:-1, 1:-1, 1:-1] &= ~interior
    return edge


def directed_distances(
    from_mask: np.ndarray, to_mask: np.ndarray, spacing_mm: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each boundary voxel of one mask to the nearest boundary voxel of the other.

    Returns:
        (distances from ``from_mask``'s boundary, distances from ``to_mask``'s boundary).
    """
    scale = np.asarray(spacing_mm, dtype=np.float64)
    points_a = np.argwhere(boundary(from_mask)) * scale
    points_b = np.argwhere(boundary(to_mask)) * scale
    d_ab, _ = cKDTree(points_b).query(points_a, k=1)
    d_ba, _ = cKDTree(points_a).query(points_b, k=1)
    return np.asarray(d_ab, dtype=np.float64), np.asarray(d_ba, dtype=np.float64)


def surface_scores(
    pred: np.ndarray, ref: np.ndarray, spacing_mm: tuple[float, float, float], percentile: float = 95.0
) -> dict[str, float]:
    """HD, HD95 and ASSD in mm; NaN for all three when either mask is empty.

    HD95 is the larger of the two directed ``percentile``-th percentiles (MONAI, MetricsReloaded,
    DeepMind surface-distance, nnU-Net's WMH convention), with numpy's linear interpolation. medpy,
    panoptica and seg-metrics take the percentile of both directions pooled, which is never larger.
    ASSD pools both directions: sum of all distances / (boundary voxels of P + boundary voxels of G).
    """
    if not pred.any() or not ref.any():
        return {"hd_mm": math.nan, "hd95_mm": math.nan, "assd_mm": math.nan}
    d_pg, d_gp = directed_distances(pred, ref, spacing_mm)
    return {
        "hd_mm": float(max(d_pg.max(), d_gp.max())),
        "hd95_mm": float(max(np.percentile(d_pg, percentile), np.percentile(d_gp, percentile))),
        "assd_mm": float((d_pg.sum() + d_gp.sum()) / (d_pg.size + d_gp.size)),
    }
