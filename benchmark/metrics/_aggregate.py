"""Set-level statistics over the per-case table: mean, sd, median, patient bootstrap CI, valid counts.

The case values already follow the empty-mask policy (``specs``): an empty prediction on a scan with
lesions carries worst values, so it is never left out; NaN remains only where nothing can be judged
(both masks empty, or an empty reference for recall-type scores) and ``n_valid`` counts the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .specs import METRIC_SPECS, SUITE_VERSION

SUMMARY_COLUMNS = (
    "metric",
    "mean",
    "sd",
    "median",
    "ci_low",
    "ci_high",
    "n_valid",
    "n_cases",
    "n_patients",
    "n_both_empty",
)


def summarize(
    cases: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    patient_col: str | None = "patient",
    group_cols: Sequence[str] = (),
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Per group and metric: mean, sd, median and a bootstrap CI of the mean that resamples patients.

    NaN values (undefined under the empty-mask policy of ``SUITE_VERSION``: both masks empty, or an
    empty reference for recall-type scores) are left out of every statistic and counted: ``n_valid`` is
    the number of cases where the metric is defined, ``n_cases`` all cases of the group. An empty
    prediction on a scan with lesions is never NaN (it carries worst values), so it is never left out.
    A bootstrap replicate draws patients with replacement and averages the valid values of all their
    cases, so repeated scans of one patient move together. With fewer than two patients holding a valid
    value the CI is NaN, not a zero-width interval: show "n = 1" instead.

    Args:
        cases: One row per scored case (``evaluate_case`` records plus id columns).
        metrics: Columns to summarise; default every ``METRIC_SPECS`` key present in ``cases``.
        patient_col: Column naming the patient of each case; None treats every row as its own patient.
        group_cols: Columns that split the table (method, reference rater, ...).
        n_boot: Bootstrap replicates (0 skips the CI: NaN).
        seed: Seed of the bootstrap generator (same seed, same CI).
        ci: Coverage of the interval (percentile method).

    Returns:
        One row per group and metric with the group columns then ``SUMMARY_COLUMNS``;
        ``n_both_empty`` counts the group's cases where P and G are both empty (NaN without a
        ``both_empty`` column): most ratios are undefined there, which ``n_valid`` shows.

    Raises:
        KeyError: A named column is missing.
        ValueError: The table holds rows of another major suite version (their NaN policy differs).
    """
    check_suite_version(cases)
    metrics = _metric_columns(cases, metrics)
    missing = [c for c in (*group_cols, *([patient_col] if patient_col else [])) if c not in cases.columns]
    if missing:
        raise KeyError(
            f"summarize: columns {missing} not in the cases table (columns: {list(cases.columns)}); "
            "pass patient_col=None to treat each row as one patient, or fix group_cols."
        )
    frames = []
    groups = cases.groupby(list(group_cols), sort=True, dropna=False) if group_cols else [((), cases)]
    for key, group in groups:
        table = _summarize_group(group, metrics, patient_col, n_boot, seed, ci)
        for col, value in zip(group_cols, key if isinstance(key, tuple) else (key,), strict=True):
            table.insert(list(group_cols).index(col), col, value)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def check_suite_version(cases: pd.DataFrame) -> None:
    """Refuse rows scored under another major suite version: their empty-mask policy differs.

    Raises:
        ValueError: A ``suite_version`` value has another major version than ``SUITE_VERSION``.
    """
    if "suite_version" not in cases.columns:
        return
    major = SUITE_VERSION.split(".")[0]
    other = sorted({str(v) for v in cases["suite_version"].dropna() if str(v).split(".")[0] != major})
    if other:
        raise ValueError(
            f"cases scored with metric suite {other} cannot be aggregated with suite {SUITE_VERSION}: a major "
            "version changes numbers (1.x left an empty prediction NaN, so it dropped out of the means). "
            "Re-score those cases (msbench evaluate, or re-run the method)."
        )


def _metric_columns(cases: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        return [name for name in METRIC_SPECS if name in cases.columns]
    unknown = [m for m in metrics if m not in cases.columns]
    if unknown:
        raise KeyError(f"summarize: metrics {unknown} not in the cases table (columns: {list(cases.columns)}).")
    return list(metrics)


def _summarize_group(
    group: pd.DataFrame, metrics: list[str], patient_col: str | None, n_boot: int, seed: int, ci: float
) -> pd.DataFrame:
    values = group[metrics].to_numpy(dtype=np.float64)
    valid = ~np.isnan(values)
    patients = group[patient_col].to_numpy() if patient_col else np.arange(len(group))
    _, patient_index = np.unique(patients, return_inverse=True)
    n_patients = int(patient_index.max()) + 1 if len(group) else 0
    low, high = _bootstrap_ci(values, valid, patient_index, n_patients, n_boot, seed, ci)
    # One patient (or one holding a valid value) gives a zero-width interval: report no CI ("n = 1").
    patients_valid = np.array([np.unique(patient_index[valid[:, m]]).size for m in range(len(metrics))])
    low[patients_valid < 2], high[patients_valid < 2] = np.nan, np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        n_valid = valid.sum(axis=0)
        mean = np.where(n_valid > 0, np.nansum(values, axis=0) / np.maximum(n_valid, 1), np.nan)
    return pd.DataFrame(
        {
            "metric": metrics,
            "mean": mean,
            "sd": [_sd(values[valid[:, m], m]) for m in range(len(metrics))],
            "median": [float(np.median(values[valid[:, m], m])) if n_valid[m] else np.nan for m in range(len(metrics))],
            "ci_low": low,
            "ci_high": high,
            "n_valid": n_valid.astype(int),
            "n_cases": len(group),
            "n_patients": n_patients,
            "n_both_empty": int(group["both_empty"].sum()) if "both_empty" in group.columns else np.nan,
        }
    )


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size > 1 else np.nan


def _bootstrap_ci(
    values: np.ndarray,
    valid: np.ndarray,
    patient_index: np.ndarray,
    n_patients: int,
    n_boot: int,
    seed: int,
    ci: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI of the case mean, resampling patients; per metric (columns of ``values``)."""
    n_metrics = values.shape[1]
    if n_boot <= 0 or n_patients == 0:
        return np.full(n_metrics, np.nan), np.full(n_metrics, np.nan)
    sums = np.zeros((n_patients, n_metrics))
    counts = np.zeros((n_patients, n_metrics))
    np.add.at(sums, patient_index, np.where(valid, values, 0.0))
    np.add.at(counts, patient_index, valid.astype(np.float64))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_patients, size=(n_boot, n_patients))
    weights = np.zeros((n_boot, n_patients))
    np.add.at(weights, (np.repeat(np.arange(n_boot), n_patients), draws.ravel()), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (weights @ sums) / (weights @ counts)
    tail = 100.0 * (1.0 - ci) / 2.0
    low, high = np.full(n_metrics, np.nan), np.full(n_metrics, np.nan)
    for m in range(n_metrics):
        defined = means[:, m][np.isfinite(means[:, m])]
        if defined.size:
            low[m], high[m] = np.percentile(defined, [tail, 100.0 - tail])
    return low, high


def pooled_dice(cases: pd.DataFrame, group_cols: Sequence[str] = ()) -> pd.DataFrame:
    """Pooled-voxel Dice (``dice_pooled``): 2 sum TP / (2 sum TP + sum FP + sum FN) over the cases of a group.

    An extra, labelled as pooled: large lesion loads dominate it, unlike the per-case mean Dice. Every
    case enters through its raw counts, so no case is left out: an empty prediction adds its FN, a
    both-empty case adds nothing (``n_both_empty`` counts them). Not for ranking: as for any pooled
    F1, emptying a prediction whose voxel precision is below half the pooled Dice raises it.

    Returns:
        One row per group with the group columns, ``dice_pooled``, ``n_cases`` and ``n_both_empty``.
    """
    check_suite_version(cases)

    def pooled(frame: pd.DataFrame) -> float:
        tp, fp, fn = (float(frame[c].sum()) for c in ("tp", "fp", "fn"))
        denominator = 2 * tp + fp + fn
        return 2 * tp / denominator if denominator else np.nan

    def both_empty(frame: pd.DataFrame) -> int:
        return int(((frame["tp"] + frame["fp"] + frame["fn"]) == 0).sum())

    if not group_cols:
        return pd.DataFrame(
            {"dice_pooled": [pooled(cases)], "n_cases": [len(cases)], "n_both_empty": [both_empty(cases)]}
        )
    rows = [
        {
            **dict(zip(group_cols, key if isinstance(key, tuple) else (key,), strict=True)),
            "dice_pooled": pooled(frame),
            "n_cases": len(frame),
            "n_both_empty": both_empty(frame),
        }
        for key, frame in cases.groupby(list(group_cols), sort=True, dropna=False)
    ]
    return pd.DataFrame(rows)
