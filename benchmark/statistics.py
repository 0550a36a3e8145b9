"""Paired-comparison rules shared by the leaderboard and the gate (numpy, scipy and pandas only: no numba or torch).

- Unit: the patient. The scans of one patient (time points) are not independent cases, so a paired test runs on
  per-patient means of the cases both sides scored (:func:`patient_means`), never on the scans themselves.
- Test: Wilcoxon signed-rank on the per-patient differences, scipy's ``method="auto"`` (the exact null
  distribution for small samples without ties, else the normal approximation); p = 1 when every difference is zero.
- Zero differences: ``zero_method="wilcox"`` (dropped before ranking). See :data:`ZERO_METHOD` for why.
- Smallest attainable p: with n non-zero differences the exact test cannot go below 1 / 2**n one-sided or
  2 / 2**n two-sided (every difference of one sign is the most extreme of the 2**n equally likely sign patterns).
  :func:`min_p` gives it; :func:`min_patients` the n needed before any p can fall under ``alpha``.
- Ranking: methods are numbered only when a paired test on their test patients could reach ``alpha``
  (:func:`can_rank`); otherwise they are ordered by mean Dice, not numbered, and :func:`not_ranked_reason` says why.
- Multiplicity: Holm's step-down correction (:func:`holm`) over all pairs of a comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
#: Zero differences are dropped ("wilcox", scipy's default), not split ("zsplit", the gate's rule before issue #25).
#: A zero per-patient difference says nothing about which side is better; "zsplit" keeps it as half a win each way,
#: which also moves scipy off the exact distribution onto the normal approximation, badly calibrated at the handful
#: of patients a benchmark has. Dropping zeros keeps the exact test and makes :func:`min_p` hold for the pairs tested.
ZERO_METHOD = "wilcox"
Alternative = Literal["two-sided", "less", "greater"]
TEST_STATEMENT = (
    "Paired Wilcoxon signed-rank test on per-patient means of Dice (the scans of one patient averaged first, on the "
    "scans both methods scored; seeds averaged per scan): time points of one patient are never independent cases. "
    "Zero differences dropped (scipy zero_method='wilcox'); p = 1 when every difference is zero; exact p for small "
    "untied samples, else the normal approximation."
)


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison.

    Attributes:
        p: The p value (NaN without a common patient).
        n_patients: Patients compared (the test's n).
        n_cases: Scans behind them (both sides scored).
        median_diff: Median over patients of x - y (per-patient means).
    """

    p: float
    n_patients: int
    n_cases: int
    median_diff: float


def patient_means(x: np.ndarray, y: np.ndarray, patients: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-patient means of two paired per-case arrays, on the cases both scored (NaN on neither side).

    Returns:
        (x means, y means, number of cases kept), one entry per patient in sorted patient order.
    """
    x, y, patients = np.asarray(x, float), np.asarray(y, float), np.asarray(patients)
    keep = ~(np.isnan(x) | np.isnan(y))
    frame = pd.DataFrame({"patient": patients[keep], "x": x[keep], "y": y[keep]})
    means = frame.groupby("patient", sort=True)[["x", "y"]].mean()
    return means["x"].to_numpy(), means["y"].to_numpy(), int(keep.sum())


def paired_test(
    x: np.ndarray, y: np.ndarray, patients: np.ndarray, *, alternative: Alternative = "two-sided"
) -> PairedTest:
    """The shared paired test of ``x`` against ``y`` (per-case values of one metric, ``patients`` naming each case).

    ``alternative="less"`` asks whether x is below y (the gate's drop test: x the new run, y the reference).
    """
    xm, ym, n_cases = patient_means(x, y, patients)
    if xm.size == 0:
        return PairedTest(math.nan, 0, 0, math.nan)
    diff = xm - ym
    median = float(np.median(diff))
    if np.all(diff == 0):
        return PairedTest(1.0, int(diff.size), n_cases, median)
    p = float(stats.wilcoxon(diff, zero_method=ZERO_METHOD, alternative=alternative).pvalue)
    return PairedTest(p, int(diff.size), n_cases, median)


def min_p(n: int, *, two_sided: bool = True) -> float:
    """Smallest p the exact signed-rank test can give on ``n`` non-zero differences (1 for n = 0)."""
    if n <= 0:
        return 1.0
    return min(1.0, (2.0 if two_sided else 1.0) / 2.0**n)


def min_patients(alpha: float = ALPHA, *, two_sided: bool = True) -> int:
    """Fewest patients with which some p can fall under ``alpha`` (6 two-sided, 5 one-sided at 0.05)."""
    n = 1
    while min_p(n, two_sided=two_sided) >= alpha:
        n += 1
    return n


def can_rank(n_patients: int, alpha: float = ALPHA) -> bool:
    """Whether a two-sided paired test on ``n_patients`` could separate two methods at ``alpha``."""
    return min_p(n_patients) < alpha


def p_text(p: float) -> str:
    """A p value as the pages print it: three significant figures, 1 as "1.0"."""
    return "1.0" if p >= 1.0 else f"{p:.3g}"


def _patients(n: int) -> str:
    return f"{n} test patient{'' if n == 1 else 's'}"


def not_ranked_reason(n_patients: int, alpha: float = ALPHA) -> str | None:
    """Why methods tested on ``n_patients`` are not numbered; None when they can be."""
    if can_rank(n_patients, alpha):
        return None
    return (
        f"Not ranked: {_patients(n_patients)}; a paired Wilcoxon test on per-patient means needs at least "
        f"{min_patients(alpha)} patients before any p can fall under {alpha:g} (smallest attainable two-sided p with "
        f"n={n_patients}: {p_text(min_p(n_patients))})."
    )


def no_significance_reason(n_patients: int, n_pairs: int, alpha: float = ALPHA) -> str | None:
    """Why no pair of methods can differ significantly after Holm's correction; None when some pair can.

    Args:
        n_patients: The most patients any pair shares.
        n_pairs: Pairs compared (Holm multiplies the smallest p by this).
        alpha: Significance level.
    """
    smallest = min_p(n_patients)
    if smallest >= alpha:
        return (
            f"No difference can be significant: the pairs share at most {_patients(n_patients)}, and a two-sided "
            f"paired Wilcoxon test on per-patient means cannot give p below {p_text(smallest)} with n={n_patients} "
            f"(it needs at least {min_patients(alpha)} patients to reach {alpha:g})."
        )
    if n_pairs * smallest >= alpha:
        return (
            f"No difference can be significant after Holm's correction: with n={n_patients} patients the smallest "
            f"attainable p is {smallest:.3g}, and over {n_pairs} pairs the smallest corrected p is "
            f"{min(1.0, n_pairs * smallest):.3g} (>= {alpha:g})."
        )
    return None


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p values (same order as given; NaN stays NaN)."""
    order = [i for i in np.argsort(p_values) if not math.isnan(p_values[i])]
    adjusted = [math.nan] * len(p_values)
    m, running = len(order), 0.0
    for step, i in enumerate(order):
        running = max(running, min(1.0, (m - step) * p_values[i]))
        adjusted[i] = running
    return adjusted


__all__ = [
    "ALPHA",
    "TEST_STATEMENT",
    "ZERO_METHOD",
    "PairedTest",
    "can_rank",
    "holm",
    "min_p",
    "min_patients",
    "no_significance_reason",
    "not_ranked_reason",
    "p_text",
    "paired_test",
    "patient_means",
]
