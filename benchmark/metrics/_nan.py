"""The one NaN policy of the suite: a ratio with a zero denominator is NaN, never 0 or 1."""

from __future__ import annotations

import math


def ratio(numerator: float, denominator: float) -> float:
    """Return ``numerator / denominator``, or NaN when the denominator is zero."""
    if denominator == 0:
        return math.nan
    return float(numerator) / float(denominator)


def f1(recall: float, precision: float) -> float:
    """Harmonic mean of two rates; NaN if either is NaN or both are zero."""
    if math.isnan(recall) or math.isnan(precision):
        return math.nan
    return ratio(2.0 * recall * precision, recall + precision)
