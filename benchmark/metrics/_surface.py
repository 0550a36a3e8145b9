"""Surface distances (HD, HD95, ASSD) in mm between the 6-connected boundaries of two masks."""

from __future__ import annotations

import math

import numpy as np

from ._crop import CaseArrays
from ._kernels import nearest_in_ball, nearest_on_grid

FAR_CELL_VOX = 4
"""Cube edge, in voxels, of the bucket grid that finds the far boundary voxels' nearest (the fastest of 4, 6, 8)."""


def boundary_indices(mask: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Flat indices of object voxels with a face neighbour (6-connectivity) in the background.

    Same set as ``mask ^ scipy.ndimage.binary_erosion(mask)`` (medpy, MONAI), read only at the
    foreground voxels ``fg``. The mask must have a background margin of at least one voxel on every
    side (``crop_case`` guarantees it), so no neighbour index wraps around.
    """
    flat = mask.ravel()
    interior = np.ones(fg.size, dtype=bool)
    for step in (1, mask.shape[2], mask.shape[1] * mask.shape[2]):
        interior &= flat[fg - step]
        interior &= flat[fg + step]
    return fg[~interior]


def directed_distances(
    case: CaseArrays, search_vox: int = 3, boundaries: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each boundary voxel of P to the nearest boundary voxel of G, and back.

    Exact. Most boundary voxels of a lesion mask lie within a few voxels of the other boundary, so
    candidates are first looked up in a ball of ``search_vox`` voxels, nearest offset first; only the
    voxels with nothing in the ball go to a bucket-grid search over the other boundary
    (:func:`nearest_on_grid`). The crop's background margin must be at least ``search_vox`` voxels
    (``crop_case`` with ``margin >= search_vox``).

    Args:
        case: The cropped case.
        search_vox: Radius of the local search in finest voxels.
        boundaries: Boundary voxels of P and G (:func:`boundary_indices`) when already at hand.

    Returns:
        (distances from P's boundary, distances from G's boundary).
    """
    shape, spacing = case.pred.shape, case.spacing_mm
    if boundaries is None:
        boundaries = (boundary_indices(case.pred, case.pred_fg), boundary_indices(case.ref, case.ref_fg))
    edge_p, edge_g = boundaries
    offsets, distances = _ball_offsets(shape, spacing, search_vox)
    d_pg = _nearest(edge_p, edge_g, offsets, distances, shape, spacing)
    d_gp = _nearest(edge_g, edge_p, offsets, distances, shape, spacing)
    return d_pg, d_gp


def _ball_offsets(
    shape: tuple[int, ...], spacing_mm: tuple[float, float, float], search_vox: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flat-index offsets of every voxel within ``search_vox`` finest voxels, sorted by distance in mm."""
    radius_mm = search_vox * min(spacing_mm)
    reach = [int(math.floor(radius_mm / s + 1e-9)) for s in spacing_mm]
    grid = np.stack(np.meshgrid(*(np.arange(-r, r + 1) for r in reach), indexing="ij"), axis=-1).reshape(-1, 3)
    distances = np.sqrt(((grid * np.asarray(spacing_mm)) ** 2).sum(axis=1))
    inside = distances <= radius_mm + 1e-9
    grid, distances = grid[inside], distances[inside]
    order = np.argsort(distances, kind="stable")
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    return grid[order] @ strides, distances[order]


def _nearest(
    points: np.ndarray,
    target_points: np.ndarray,
    offsets: np.ndarray,
    offset_mm: np.ndarray,
    shape: tuple[int, ...],
    spacing_mm: tuple[float, float, float],
) -> np.ndarray:
    """Distance in mm from each flat index in ``points`` to the nearest flat index in ``target_points``."""
    target = np.zeros(int(np.prod(shape)), dtype=bool)
    target[target_points] = True
    result = nearest_in_ball(points, target, offsets, offset_mm)
    pending = np.flatnonzero(np.isinf(result))
    if pending.size:
        grid = (np.asarray(shape, dtype=np.int64), np.asarray(spacing_mm, dtype=np.float64))
        result[pending] = nearest_on_grid(points[pending], target_points, *grid, FAR_CELL_VOX)
    return result


def percentile_linear(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear method), bit for bit, from one partial sort of two elements.

    numpy sorts a copy around every index it might need and pays a general-purpose setup; the
    arithmetic here is numpy's own (virtual index ``(n - 1) q / 100``, and its two-sided lerp).
    """
    n = values.size
    virtual = (n - 1) * (q / 100)
    below = math.floor(virtual)
    if below >= n - 1:
        return float(values.max())
    part = np.partition(values, (below, below + 1))
    low, high = float(part[below]), float(part[below + 1])
    gamma = virtual - below
    diff = high - low
    return high - diff * (1 - gamma) if gamma >= 0.5 else low + diff * gamma


def worst_distance_mm(full_shape: tuple[int, ...], spacing_mm: tuple[float, float, float]) -> float:
    """Diagonal of the field of view in mm: longer than any distance between two voxels of the volume."""
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(full_shape, spacing_mm, strict=True))))


def surface_scores(
    case: CaseArrays,
    percentile: float = 95.0,
    search_vox: int = 3,
    boundaries: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, float]:
    """HD, HD95 and ASSD in mm; the worst value when exactly one mask is empty, NaN when both are.

    HD95 is the larger of the two directed ``percentile``-th percentiles (MONAI, MetricsReloaded,
    DeepMind surface-distance, nnU-Net's WMH convention), with numpy's linear interpolation. medpy,
    panoptica and seg-metrics take the percentile of both directions pooled, which is never larger.
    ASSD pools both directions: sum of all distances / (boundary voxels of P + boundary voxels of G).
    The worst value is :func:`worst_distance_mm` (MetricsReloaded leaves this case to aggregation, which
    sets it to a fixed maximum), so an empty prediction never scores better than a real one.
    """
    pred_empty, ref_empty = case.pred_fg.size == 0, case.ref_fg.size == 0
    if pred_empty and ref_empty:
        return {"hd_mm": math.nan, "hd95_mm": math.nan, "assd_mm": math.nan}
    if pred_empty or ref_empty:
        worst = worst_distance_mm(case.full_shape, case.spacing_mm)
        return {"hd_mm": worst, "hd95_mm": worst, "assd_mm": worst}
    d_pg, d_gp = directed_distances(case, search_vox, boundaries)
    return {
        "hd_mm": float(max(d_pg.max(), d_gp.max())),
        "hd95_mm": max(percentile_linear(d_pg, percentile), percentile_linear(d_gp, percentile)),
        "assd_mm": float((d_pg.sum() + d_gp.sum()) / (d_pg.size + d_gp.size)),
    }
