"""The one entry point that scores a case: every metric family on one shared crop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._crop import CaseArrays, check_domain, check_inputs, crop_case
from ._lesions import (
    anima_min_voxels,
    anima_scores,
    covered_voxels,
    isbi_scores,
    label_case_lesions,
    lesion_rows,
)
from ._slices import slice_scores
from ._surface import boundary_indices, surface_scores
from ._voxel import confusion_counts, voxel_scores
from .specs import MetricParams

LesionRow = dict[str, float | int | str | bool]


def evaluate_case(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    params: MetricParams | None = None,
    domain: np.ndarray | None = None,
) -> dict[str, float | int]:
    """Score one predicted mask against one reference mask with every metric of the suite.

    Args:
        pred: Predicted lesion mask, 3D, boolean or 0/1, axes in NIfTI voxel order (i, j, k) as nibabel
            returns them; the axial slice axis is the last one. Any memory layout.
        ref: Reference mask on the same grid.
        spacing_mm: Voxel size in mm in array axis order.
        params: Connectivity, size filter and thresholds; defaults to ``MetricParams()``.
        domain: Optional boolean brain mask on the same grid (None = the whole volume). It sets nDSC's N
            and the negative slices of the balanced slice scores; no other score depends on it.

    Returns:
        Flat record keyed as in ``METRIC_SPECS``: raw counts (int), scores (float, under the empty-mask
        policy of ``SUITE_VERSION``: worst values for an empty prediction, NaN where nothing can be
        judged), the flags ``pred_empty``, ``ref_empty``, ``both_empty``, ``surface_undefined`` and
        ``domain_is_mask``, and ``domain_voxels``.

    Raises:
        ValueError: Shapes differ, the masks are not 3D or not binary, the spacing is invalid, or the
            domain is empty or not on the masks' grid.
    """
    record, _ = _evaluate(pred, ref, spacing_mm, params or MetricParams(), domain, with_lesions=False)
    return record


def evaluate_case_with_lesions(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    params: MetricParams | None = None,
    domain: np.ndarray | None = None,
) -> tuple[dict[str, float | int], list[LesionRow]]:
    """Like :func:`evaluate_case` (same arguments), plus the per-lesion table.

    Returns:
        (record, rows). One row per reference and per predicted lesion of each family (``family`` is
        "isbi" or "anima", ``source`` is "ref" or "pred") with ``lesion_id``, ``volume_vox``,
        ``volume_mm3``, ``centroid_i/j/k`` (voxel indices), ``matched`` (ISBI: any overlap; Anima:
        detected) and ``overlap_vox``/``overlap_fraction`` (its voxels covered by the other mask).
    """
    return _evaluate(pred, ref, spacing_mm, params or MetricParams(), domain, with_lesions=True)


def _evaluate(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing_mm: Sequence[float],
    params: MetricParams,
    domain: np.ndarray | None,
    *,
    with_lesions: bool,
) -> tuple[dict[str, float | int], list[LesionRow]]:
    pred, ref, spacing = check_inputs(pred, ref, spacing_mm)
    n_total = int(np.prod(pred.shape))
    domain_voxels = n_total
    domain_on_slice: np.ndarray | None = None
    if domain is not None:
        domain = check_domain(domain, pred.shape)
        domain_voxels = int(np.count_nonzero(domain))
        domain_on_slice = np.asarray(domain.any(axis=(0, 1)))
    case = crop_case(pred, ref, spacing, params.surface_margin_vox)
    counts = confusion_counts(case.pred_fg, case.ref, n_total=n_total)
    record: dict[str, float | int] = voxel_scores(
        counts, case.voxel_volume_mm3, domain_voxels, params.ndsc_reference_load
    )
    # The 6-connected boundaries serve the surface distances and the lesion labelling alike.
    boundaries = (boundary_indices(case.pred, case.pred_fg), boundary_indices(case.ref, case.ref_fg))
    record.update(surface_scores(case, params.hd_percentile, params.surface_margin_vox, boundaries))
    rows = _lesion_families(case, boundaries, params, record, with_lesions)
    record.update(slice_scores(case, params.slice_coverage, params.slice_connectivity, domain_on_slice))
    n_pred, n_ref = counts.tp + counts.fp, counts.tp + counts.fn
    record["domain_voxels"] = domain_voxels
    record["domain_is_mask"] = int(domain is not None)
    record["pred_empty"] = int(n_pred == 0)
    record["ref_empty"] = int(n_ref == 0)
    record["both_empty"] = int(n_pred == 0 and n_ref == 0)
    record["surface_undefined"] = int(n_pred == 0 or n_ref == 0)
    return record, rows


def _lesion_families(
    case: CaseArrays,
    boundaries: tuple[np.ndarray, np.ndarray],
    params: MetricParams,
    record: dict[str, float | int],
    with_lesions: bool,
) -> list[LesionRow]:
    """Add both lesion families to ``record``; return the per-lesion rows when asked."""
    ref_fg, pred_fg = case.ref_fg, case.pred_fg
    min_voxels = anima_min_voxels(params.anima_min_volume_mm3, case.voxel_volume_mm3)
    requests = [(params.connectivity, 1), (params.anima_connectivity, min_voxels)]
    (pred_isbi, ref_isbi), (pred_anima, ref_anima) = label_case_lesions(case, boundaries, requests)
    record.update(isbi_scores(ref_isbi, pred_isbi))

    scores, ref_detected, pred_detected = anima_scores(
        ref_anima, pred_anima, params.alpha, params.beta, params.gamma, ref_mask_empty=ref_fg.size == 0
    )
    record.update(scores)
    if not with_lesions:
        return []

    vv, origin = case.voxel_volume_mm3, case.origin
    ref_cov, pred_cov = covered_voxels(ref_isbi, pred_fg), covered_voxels(pred_isbi, ref_fg)
    ref_cov_a = covered_voxels(ref_anima, pred_anima.kept_fg)
    pred_cov_a = covered_voxels(pred_anima, ref_anima.kept_fg)
    return [
        *lesion_rows("isbi", "ref", ref_isbi, ref_cov > 0, ref_cov, origin, vv),
        *lesion_rows("isbi", "pred", pred_isbi, pred_cov > 0, pred_cov, origin, vv),
        *lesion_rows("anima", "ref", ref_anima, ref_detected, ref_cov_a, origin, vv),
        *lesion_rows("anima", "pred", pred_anima, pred_detected, pred_cov_a, origin, vv),
    ]
