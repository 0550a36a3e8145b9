"""Truth and rater masks from the continuous lesion map.

The truth is the map at 0.5. Rater 1 outlines generously (a lower threshold, a slightly wavy boundary);
rater 2 is conservative (a higher threshold, a wavier boundary) and misses some small lesions, which puts
their agreement near that of human raters on ISBI 2015 (Dice about 0.7-0.8).
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np

from ._grid import Grid

TRUTH_LEVEL = 0.5


@dataclass(frozen=True)
class Rater:
    """How one simulated rater outlines lesions.

    Attributes:
        level: Threshold on the continuous lesion map.
        boundary_jitter: Amplitude of the smooth field added to the map before thresholding.
        miss_below_mm3: Lesions smaller than this may be missed ...
        miss_probability: ... with this probability each.
    """

    level: float
    boundary_jitter: float
    miss_below_mm3: float
    miss_probability: float


RATERS: tuple[Rater, Rater] = (
    Rater(level=0.36, boundary_jitter=0.12, miss_below_mm3=0.0, miss_probability=0.0),
    Rater(level=0.64, boundary_jitter=0.38, miss_below_mm3=30.0, miss_probability=0.4),
)


def _smooth_field_at(rng: np.random.Generator, points_mm: np.ndarray) -> np.ndarray:
    """A smooth random field in about [-1, 1] (waves of 4-12 mm) evaluated at (N, 3) world points."""
    n = 6
    directions = rng.standard_normal((n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    waves = directions * (2 * np.pi / rng.uniform(4.0, 12.0, size=(n, 1)))
    phases = rng.uniform(0.0, 2 * np.pi, size=n)
    return np.sin(points_mm @ waves.T + phases).sum(axis=1) * np.sqrt(2.0 / n)


def truth_mask(lesion_map: np.ndarray) -> np.ndarray:
    """The phantom's ground truth (bool)."""
    return lesion_map >= TRUTH_LEVEL


def rater_mask(lesion_map: np.ndarray, rater: Rater, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """One rater's mask (bool) of ``lesion_map``.

    Args:
        lesion_map: Continuous lesion map in [0, 1].
        rater: The rater's habits.
        grid: Grid of the map (for mm units).
        rng: The scan's generator for this rater.
    """
    candidates = np.argwhere(lesion_map > rater.level - rater.boundary_jitter)
    points_mm = np.asarray(grid.origin_mm) + grid.resolution_mm * candidates
    jitter = rater.boundary_jitter * _smooth_field_at(rng, points_mm)
    values = lesion_map[tuple(candidates.T)] + jitter
    mask = np.zeros(lesion_map.shape, dtype=bool)
    mask[tuple(candidates[values >= rater.level].T)] = True
    if rater.miss_probability > 0 and mask.any():
        labels, n = cc3d.connected_components(mask, connectivity=26, return_N=True)
        sizes_mm3 = np.bincount(labels.ravel(), minlength=n + 1) * grid.resolution_mm**3
        missed = (sizes_mm3 < rater.miss_below_mm3) & (rng.random(n + 1) < rater.miss_probability)
        missed[0] = False
        mask[missed[labels]] = False
    return mask
