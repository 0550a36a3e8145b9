"""Reference figures the phantom must reproduce (``shared/spec/phantom.md``), as data.

Measured on real consensus masks in 1 mm MNI space (Lesjak 3D-MR-MS / open_ms_data, 28-30 patients,
26-connectivity). The median and range of the per-patient figures and all lesion-size percentiles are the
spec's; the inner quartiles and deciles of the per-patient figures (needed to draw patients, the spec gives
only median and range) were measured by this project on the 28 masks of ``open_ms_data/cross_sectional/MNI``.
"""

from __future__ import annotations

import numpy as np

#: (quantile, lesions per patient).
LESION_COUNT_QUANTILES: tuple[tuple[float, float], ...] = (
    (0.0, 17.0),
    (0.1, 21.0),
    (0.25, 35.0),
    (0.5, 79.0),
    (0.75, 118.0),
    (0.9, 248.0),
    (1.0, 392.0),
)
#: (quantile, total lesion load in ml).
LESION_LOAD_QUANTILES_ML: tuple[tuple[float, float], ...] = (
    (0.0, 0.3),
    (0.1, 1.0),
    (0.25, 1.55),
    (0.5, 13.9),
    (0.75, 24.7),
    (0.9, 36.6),
    (1.0, 52.0),
)
#: (quantile, lesion size in 1 mm voxels); the 0 and 1 end points bound the spec's percentiles.
LESION_SIZE_QUANTILES_VOX: tuple[tuple[float, float], ...] = (
    (0.0, 1.0),
    (0.10, 2.0),
    (0.25, 6.0),
    (0.50, 17.0),
    (0.75, 46.0),
    (0.90, 127.0),
    (0.99, 2254.0),
    (1.0, 30000.0),
)
#: Share of lesions with fewer than 10 voxels.
FRACTION_LESIONS_UNDER_10_VOX = 0.35
#: Share of the lesion volume in lesions larger than 1000 voxels.
FRACTION_VOLUME_OVER_1000_VOX = 0.71
#: FLAIR median lesion / median normal-appearing white matter (one real patient, N4-corrected).
FLAIR_LESION_TO_NAWM_RATIO = 1.34
#: FLAIR lesion 10th percentile / white-matter 90th percentile (the spec: they coincide).
FLAIR_LESION_P10_TO_WM_P90 = 1.0
#: Oracle global-threshold Dice: about 0.2 at 1.3 ml (``ORACLE_LOW_LOAD_ML``), 0.35-0.65 at 8-50 ml.
ORACLE_DICE_LOW_LOAD = (0.2, 0.2)
ORACLE_LOW_LOAD_ML = 1.3
ORACLE_DICE_HIGH_LOAD = (0.35, 0.65)
#: Inter-rater Dice of human raters on ISBI 2015.
INTER_RATER_DICE = (0.7, 0.8)


def interpolate_quantile(knots: tuple[tuple[float, float], ...], u: np.ndarray | float) -> np.ndarray:
    """Inverse CDF through ``knots``, interpolated linearly in log value.

    Args:
        knots: Increasing (quantile, value) pairs, values positive.
        u: Quantiles in [0, 1].
    """
    qs = np.array([k[0] for k in knots])
    logs = np.log(np.array([k[1] for k in knots]))
    return np.exp(np.interp(u, qs, logs))
