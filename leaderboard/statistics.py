"""Paired tests and rank stability between methods on the same cases (numpy and scipy only).

Wilcoxon signed-rank, as used here:
- pairs: every two methods, on the cases both scored (per-case Dice, averaged over seeds first);
- zero differences: ``zero_method="wilcox"`` (scipy's default): cases where both methods score the same Dice are
  dropped before ranking; when every difference is zero the p value is 1 (no evidence of a difference);
- ties among the non-zero absolute differences: scipy's ``method="auto"``: the exact distribution when there are
  fewer than 50 non-zero differences and no ties, else the normal approximation with the tie correction;
- multiplicity: Holm's step-down correction over all pairs of the matrix.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

ZERO_METHOD = "wilcox"
STATEMENT = (
    "Paired Wilcoxon signed-rank test on per-case Dice (seeds averaged per case), on the cases both methods scored; "
    "zero differences dropped (scipy zero_method='wilcox'), p = 1 when all differences are zero; exact p below 50 "
    "untied differences, else the normal approximation with tie correction; Holm-corrected over all pairs."
)


def dice_matrix(wide_cases: pd.DataFrame, labels: dict[str, str], metric: str = "dice") -> pd.DataFrame:
    """Per-case ``metric`` with one column per run (named by ``labels[run_id]``), one row per (patient, case).

    Args:
        wide_cases: ``StoreData.wide_cases`` for one reference.
        labels: Run id -> the name shown for it (method and modality set); runs not in it are left out.
        metric: The per-case metric key.
    """
    frame = wide_cases[wide_cases["run_id"].isin(labels)]
    if frame.empty:
        return pd.DataFrame()
    mean = frame.groupby(["run_id", "patient", "case"])[metric].mean().reset_index()
    matrix = mean.pivot_table(index=["patient", "case"], columns="run_id", values=metric, dropna=False)
    return matrix[[r for r in labels if r in matrix.columns]].rename(columns=labels)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p values (same order as given; NaN stays NaN)."""
    order = [i for i in np.argsort(p_values) if not math.isnan(p_values[i])]
    adjusted = [math.nan] * len(p_values)
    m, running = len(order), 0.0
    for step, i in enumerate(order):
        running = max(running, min(1.0, (m - step) * p_values[i]))
        adjusted[i] = running
    return adjusted


def wilcoxon_pair(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Two-sided p value of the paired signed-rank test and the number of cases used (both scored)."""
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size == 0:
        return math.nan, 0
    if np.all(x == y):
        return 1.0, int(x.size)
    return float(stats.wilcoxon(x, y, zero_method=ZERO_METHOD, alternative="two-sided").pvalue), int(x.size)


def wilcoxon_matrix(matrix: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Pairwise tests between the columns of ``matrix``: ``p`` (raw), ``p_holm``, ``n`` (cases), ``median_diff``.

    Each is a square frame (row method vs column method); ``median_diff`` is the median of row minus column.
    """
    names = list(matrix.columns)
    pairs = list(itertools.combinations(range(len(names)), 2))
    raw, counts, diffs = [], [], []
    for i, j in pairs:
        x, y = matrix.iloc[:, i].to_numpy(float), matrix.iloc[:, j].to_numpy(float)
        p, n = wilcoxon_pair(x, y)
        raw.append(p)
        counts.append(n)
        both = ~(np.isnan(x) | np.isnan(y))
        diffs.append(float(np.median(x[both] - y[both])) if both.any() else math.nan)
    adjusted = holm(raw)
    out = {k: pd.DataFrame(np.nan, index=names, columns=names) for k in ("p", "p_holm", "n", "median_diff")}
    for (i, j), p, q, n, d in zip(pairs, raw, adjusted, counts, diffs, strict=True):
        for key, value, mirrored in (("p", p, p), ("p_holm", q, q), ("n", n, n), ("median_diff", d, -d)):
            out[key].iloc[i, j], out[key].iloc[j, i] = value, mirrored
    return out


def rank_stability(matrix: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """How often each method takes each rank when patients are resampled with replacement.

    Each bootstrap draw takes as many patients as there are, with replacement, keeps every case of a drawn patient
    (cases every method scored), ranks the methods by mean Dice (1 = best, ties share the better rank) and counts.

    Returns:
        Methods as rows, ranks 1..k as columns, the fraction of draws in each cell (rows sum to 1).
    """
    complete = matrix.dropna()
    names = list(matrix.columns)
    counts = pd.DataFrame(0.0, index=names, columns=range(1, len(names) + 1))
    if complete.empty or not names:
        return counts
    patients = complete.index.get_level_values("patient").to_numpy()
    unique = np.unique(patients)
    rows_of = [np.flatnonzero(patients == p) for p in unique]
    values = complete.to_numpy(float)
    rng = np.random.default_rng(seed)
    tally = np.zeros((len(names), len(names)))
    for _ in range(n_boot):
        drawn = rng.integers(0, len(unique), size=len(unique))
        rows = np.concatenate([rows_of[d] for d in drawn])
        ranks = stats.rankdata(-values[rows].mean(axis=0), method="min").astype(int)
        tally[np.arange(len(names)), ranks - 1] += 1
    return counts + tally / n_boot
