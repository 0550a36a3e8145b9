"""The one entry point that scores a case: every metric family on one shared crop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._crop import check_inputs, crop_case
from ._surface import surface_scores
from ._voxel import confusion_counts, voxel_scores
from .specs import MetricParams


def evaluate_case(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    params: MetricParams | None = None,
) -> dict[str, float | int]:
    """Score one predicted mask against one reference mask.

    Args:
        pred: Predicted lesion mask, 3D, boolean or 0/1, axes in NIfTI voxel order (i, j, k) as nibabel
            returns them; the axial slice axis is the last one. Any memory layout.
        ref: Reference mask on the same grid.
        spacing_mm: Voxel size in mm in array axis order.
        params: Connectivity, size filter and thresholds; defaults to ``MetricParams()``.

    Returns:
        Flat record: raw counts (int), scores (float, NaN when undefined) and flags, keyed as in
        ``METRIC_SPECS``.
    """
    params = params or MetricParams()
    pred, ref, spacing = check_inputs(pred, ref, spacing_mm)
    case = crop_case(pred, ref, spacing, params.surface_margin_vox)
    counts = confusion_counts(case.pred, case.ref, n_total=int(np.prod(case.full_shape)))
    record: dict[str, float | int] = voxel_scores(counts, case.voxel_volume_mm3)
    record.update(surface_scores(case.pred, case.ref, spacing, params.hd_percentile))
    n_pred, n_ref = counts.tp + counts.fp, counts.tp + counts.fn
    record["both_empty"] = int(n_pred == 0 and n_ref == 0)
    record["surface_undefined"] = int(n_pred == 0 or n_ref == 0)
    return record
