"""Paired tests and rank stability between methods on the same patients (numpy and scipy only).

The test, its zero-difference rule, the per-patient aggregation, Holm's correction and when a difference can be
significant at all are :mod:`msbench.benchmark.statistics`'s, shared with ``msbench gate``:

- pairs: every two methods, on the scans both scored (per-case Dice, averaged over seeds first), then averaged per
  patient: the paired test runs on per-patient means (time points of one patient are never independent cases);
- zero differences dropped (``zero_method="wilcox"``); p = 1 when every difference is zero;
- multiplicity: Holm's step-down correction over all pairs of the matrix.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from msbench.benchmark.statistics import TEST_STATEMENT, holm, paired_test

STATEMENT = f"{TEST_STATEMENT} Holm-corrected over all pairs."


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


def wilcoxon_pair(x: np.ndarray, y: np.ndarray, patients: np.ndarray) -> tuple[float, int]:
    """Two-sided p of the shared paired test on per-patient means and the number of patients used."""
    test = paired_test(x, y, patients)
    return test.p, test.n_patients


def wilcoxon_matrix(matrix: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Pairwise tests between the columns of ``matrix``: ``p`` (raw), ``p_holm``, ``n`` (patients), ``median_diff``.

    Each is a square frame (row method vs column method); ``median_diff`` is the median over patients of the row's
    minus the column's per-patient mean. ``matrix`` is indexed by (patient, case), as :func:`dice_matrix` returns it.
    """
    names = list(matrix.columns)
    patients = matrix.index.get_level_values("patient").to_numpy()
    pairs = list(itertools.combinations(range(len(names)), 2))
    tests = [
        paired_test(matrix.iloc[:, i].to_numpy(float), matrix.iloc[:, j].to_numpy(float), patients) for i, j in pairs
    ]
    adjusted = holm([t.p for t in tests])
    out = {k: pd.DataFrame(np.nan, index=names, columns=names) for k in ("p", "p_holm", "n", "median_diff")}
    for (i, j), test, q in zip(pairs, tests, adjusted, strict=True):
        for key, value, mirrored in (
            ("p", test.p, test.p), ("p_holm", q, q), ("n", test.n_patients, test.n_patients),
            ("median_diff", test.median_diff, -test.median_diff),
        ):  # fmt: skip
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
