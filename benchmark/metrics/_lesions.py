"""Lesion-wise detection: ISBI 2015 (any overlap) and Anima/MSSEG (alpha, beta, gamma) families."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._crop import CaseArrays
from ._kernels import Nodes, anima_walk
from ._nan import f1, precision, ratio


@dataclass(frozen=True)
class Lesions:
    """Connected components of one mask, read through its foreground voxels.

    Attributes:
        shape: Shape of the (cropped) mask the flat indices refer to.
        nodes: Where each foreground voxel sits among the mask's foreground indices.
        remap: 1 + position in the foreground -> kept lesion id (1..n); 0 for the background (index 0) and
            where the size filter removed the voxel's lesion.
        sizes: Voxel count per kept lesion id; ``sizes[0]`` is 0.
    """

    shape: tuple[int, ...]
    nodes: Nodes
    remap: np.ndarray
    sizes: np.ndarray

    @property
    def fg(self) -> np.ndarray:
        """Sorted flat indices of the mask's foreground voxels."""
        return self.nodes.fg

    @property
    def n(self) -> int:
        return int(self.sizes.size - 1)

    def ids_at(self, flat_index: np.ndarray) -> np.ndarray:
        """Kept lesion id (0 for background or a removed lesion) at the given flat indices."""
        return self.remap[1:] if flat_index is self.fg else self.remap[self.nodes.position(flat_index)]

    @property
    def kept_fg(self) -> np.ndarray:
        """Flat indices of the voxels of kept lesions."""
        return self.fg[self.remap[1:] > 0]


def forward_offsets(connectivity: int, shape: tuple[int, ...]) -> list[int]:
    """Flat-index offsets to the lexicographically later half of a voxel's 6, 18 or 26 neighbours.

    For a C-order array of ``shape``; the earlier half are their negatives.
    """
    strides = (shape[1] * shape[2], shape[2], 1)
    reach = {6: 1, 18: 2, 26: 3}[connectivity]  # most axes one step may change
    return [
        sum(s * st for s, st in zip(step, strides, strict=True))
        for step in itertools.product((-1, 0, 1), repeat=3)
        if step > (0, 0, 0) and sum(abs(s) for s in step) <= reach
    ]


def label_case_lesions(
    case: CaseArrays, boundaries: tuple[np.ndarray, np.ndarray], requests: Sequence[tuple[int, int]]
) -> list[tuple[Lesions, Lesions]]:
    """Lesions of P and of G for each (connectivity, min_voxels), from one labelling of each mask.

    Same components, sizes and lesion ids as a cc3d labelling of each mask at each requested
    connectivity (ids in memory order of each lesion's first voxel). Each mask is labelled once, at
    the finest requested connectivity, over its foreground voxels only; a coarser one joins those
    labels where two of them touch along its extra neighbour steps, which only boundary voxels can do.

    Args:
        case: The cropped case (background margin of at least one voxel).
        boundaries: Flat indices of the boundary voxels of P and of G (:func:`boundary_indices`).
        requests: (connectivity, min_voxels) pairs, connectivity 6, 18 or 26.

    Returns:
        One (P lesions, G lesions) pair per request, in order.
    """
    finest = min(connectivity for connectivity, _ in requests)
    shape = case.pred.shape
    finer = forward_offsets(finest, shape)
    steps = np.array(finer, dtype=np.int64)
    extra = {  # the steps each coarser connectivity adds to the finest one
        c: np.array([s for s in forward_offsets(c, shape) if s not in finer], dtype=np.int64)
        for c in {c for c, _ in requests} - {finest}
    }
    labelled = []
    for nodes, boundary in ((case.pred_nodes, boundaries[0]), (case.ref_nodes, boundaries[1])):
        labels, n = nodes.label(steps)
        components = {finest: np.arange(n + 1)}
        for connectivity, added in extra.items():
            components[connectivity] = nodes.join(labels, n, boundary, added)
        labelled.append((nodes, labels, components))
    (p_nodes, p_labels, p_components), (g_nodes, g_labels, g_components) = labelled
    return [
        (
            _kept_lesions(shape, p_nodes, p_labels, p_components[connectivity], min_voxels),
            _kept_lesions(shape, g_nodes, g_labels, g_components[connectivity], min_voxels),
        )
        for connectivity, min_voxels in requests
    ]


def _kept_lesions(
    shape: tuple[int, ...],
    nodes: Nodes,
    fg_labels: np.ndarray,
    component: np.ndarray,
    min_voxels: int,
) -> Lesions:
    """Lesions of one mask from its label -> component map, dropping those smaller than ``min_voxels``."""
    fg_components = component[fg_labels]
    raw_sizes = np.bincount(fg_components, minlength=int(component.max()) + 1)
    keep = raw_sizes >= max(min_voxels, 1)
    keep[0] = False
    kept_id = np.zeros(raw_sizes.size, dtype=np.int64)
    kept_id[keep] = np.arange(1, int(keep.sum()) + 1)
    sizes = np.concatenate(([0], raw_sizes[keep])).astype(np.int64)
    remap = np.concatenate(([0], kept_id[fg_components]))
    return Lesions(shape=shape, nodes=nodes, remap=remap, sizes=sizes)


def anima_min_voxels(min_volume_mm3: float, voxel_volume_mm3: float) -> int:
    """Smallest kept lesion size in voxels: strictly larger than ``min_volume_mm3`` (Anima's floor + 1)."""
    return math.floor(min_volume_mm3 / voxel_volume_mm3) + 1


def covered_voxels(lesions: Lesions, other_fg: np.ndarray) -> np.ndarray:
    """Per lesion id, how many of its voxels lie at the flat indices ``other_fg``; index 0 unused."""
    counts = np.bincount(lesions.ids_at(other_fg), minlength=lesions.n + 1).astype(np.int64)
    counts[0] = 0
    return counts


def isbi_scores(ref: Lesions, pred: Lesions) -> dict[str, float | int]:
    """ISBI 2015 lesion metrics: detection by any overlap (>= 1 voxel), no size filter.

    LTPR = reference lesions touched by P / reference lesions; LFPR = predicted lesions touching no
    reference voxel / predicted lesions; lesion F1 from LTPR and 1 - LFPR. No predicted lesion while
    the reference has one: lesion precision 0 and LFPR 1 (worst), not NaN.
    """
    ref_hit = int(np.count_nonzero(covered_voxels(ref, pred.fg)))
    pred_hit = int(np.count_nonzero(covered_voxels(pred, ref.fg)))
    ltpr = ratio(ref_hit, ref.n)
    lesion_precision = precision(pred_hit, pred.n, ref.n > 0)
    return {
        "n_lesions_ref": ref.n,
        "n_lesions_pred": pred.n,
        "n_lesions_ref_detected": ref_hit,
        "n_lesions_pred_fp": pred.n - pred_hit,
        "ltpr": ltpr,
        "lfpr": ratio(pred.n - pred_hit, pred.n) if pred.n else 1.0 - lesion_precision,
        "lesion_precision": lesion_precision,
        "lesion_f1": f1(ltpr, lesion_precision),
    }


def overlap_pairs(a: Lesions, b: Lesions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of overlapping labels (label in a, label in b) with its overlap in voxels."""
    a_ids, b_ids = a.ids_at(a.fg), b.ids_at(a.fg)
    both = (a_ids > 0) & (b_ids > 0)
    width = b.n + 1
    keys = a_ids[both] * width + b_ids[both]
    if (a.n + 1) * width <= 4 * a.fg.size + 65536:
        # A count per possible pair is cheaper than sorting the voxels when the lesions are few.
        counts = np.bincount(keys, minlength=(a.n + 1) * width)
        keys = np.flatnonzero(counts)
        counts = counts[keys]
    else:
        keys, counts = np.unique(keys, return_counts=True)
    return keys // width, keys % width, counts.astype(np.int64)


def anima_detected(
    a: Lesions,
    b: Lesions,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    alpha: float,
    beta: float,
    gamma: float,
) -> np.ndarray:
    """Which lesions of ``a`` are detected by ``b`` under Anima's rule (index 0 unused).

    A lesion is detected when more than ``alpha`` of it is covered by ``b`` and, walking the
    overlapping ``b`` lesions from the largest overlap down (ties: larger lesion first, Anima labels
    by size) until more than ``gamma`` of the overlap is accounted for, none of them has more than
    ``beta`` of its own voxels outside every ``a`` lesion. Only overlapping lesions are walked (Anima
    would go on to non-overlapping ones only when ``gamma >= 1``).
    """
    a_ids, b_ids, counts = pairs
    b_inside = np.bincount(b_ids, weights=counts, minlength=b.n + 1)
    # Same arithmetic as Anima (outside voxels / size), so fractions exactly at beta compare alike.
    b_outside_frac = np.zeros(b.n + 1)
    b_outside_frac[1:] = (b.sizes[1:] - b_inside[1:]) / b.sizes[1:]
    covered = np.bincount(a_ids, weights=counts, minlength=a.n + 1)
    order = np.lexsort((-b.sizes[b_ids], -counts, a_ids))
    starts = np.searchsorted(a_ids[order], np.arange(a.n + 2))
    return anima_walk(
        covered, a.sizes, starts, b_ids[order], counts[order].astype(np.float64), b_outside_frac, alpha, beta, gamma
    )


def anima_scores(
    ref: Lesions, pred: Lesions, alpha: float, beta: float, gamma: float, ref_mask_empty: bool
) -> tuple[dict[str, float | int], np.ndarray, np.ndarray]:
    """Anima/MSSEG SensL, PPVL and F1 on size-filtered lesions.

    SensL is NaN (not Anima's 0) without a reference lesion; PPVL is 0 (worst) without a predicted
    lesion unless the reference mask is empty too (then NaN); F1 is 0 when either rate is 0.

    Returns:
        (scores, detected flag per reference label, detected flag per predicted label).
    """
    ref_ids, pred_ids, counts = overlap_pairs(ref, pred)
    ref_detected = anima_detected(ref, pred, (ref_ids, pred_ids, counts), alpha, beta, gamma)
    pred_detected = anima_detected(pred, ref, (pred_ids, ref_ids, counts), alpha, beta, gamma)
    n_ref_det, n_pred_det = int(ref_detected.sum()), int(pred_detected.sum())
    sensl, ppvl = ratio(n_ref_det, ref.n), precision(n_pred_det, pred.n, not ref_mask_empty)
    scores: dict[str, float | int] = {
        "anima_n_ref": ref.n,
        "anima_n_pred": pred.n,
        "anima_n_ref_detected": n_ref_det,
        "anima_n_pred_detected": n_pred_det,
        "anima_sensl": sensl,
        "anima_ppvl": ppvl,
        "anima_f1": f1(sensl, ppvl),
    }
    return scores, ref_detected, pred_detected


def lesion_rows(
    family: str,
    source: str,
    lesions: Lesions,
    matched: np.ndarray,
    overlap_vox: np.ndarray,
    origin: tuple[int, int, int],
    voxel_volume_mm3: float,
) -> list[dict[str, float | int | str | bool]]:
    """One row per lesion: id, volume, centroid (voxel indices of the full volume), matched, overlap."""
    if lesions.n == 0:
        return []
    ids = lesions.ids_at(lesions.fg)
    coords = np.unravel_index(lesions.fg, lesions.shape)
    centroids = [
        np.bincount(ids, weights=coords[axis], minlength=lesions.n + 1)[1:] / lesions.sizes[1:] + origin[axis]
        for axis in range(3)
    ]
    rows: list[dict[str, float | int | str | bool]] = []
    for lesion in range(1, lesions.n + 1):
        size = int(lesions.sizes[lesion])
        rows.append(
            {
                "family": family,
                "source": source,
                "lesion_id": lesion,
                "volume_vox": size,
                "volume_mm3": size * voxel_volume_mm3,
                "centroid_i": float(centroids[0][lesion - 1]),
                "centroid_j": float(centroids[1][lesion - 1]),
                "centroid_k": float(centroids[2][lesion - 1]),
                "matched": bool(matched[lesion]),
                "overlap_vox": int(overlap_vox[lesion]),
                "overlap_fraction": int(overlap_vox[lesion]) / size,
            }
        )
    return rows
