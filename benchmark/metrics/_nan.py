"""The empty-mask policy's arithmetic (see ``specs``): NaN only where no prediction can be judged."""

from __future__ import annotations

import math


def ratio(numerator: float, denominator: float) -> float:
    """Return ``numerator / denominator``, or NaN when the denominator is zero."""
    if denominator == 0:
        return math.nan
    return float(numerator) / float(denominator)


def precision(hits: float, n_pred: float, ref_has_objects: bool) -> float:
    """``hits / n_pred``; with nothing predicted: 0 (worst) when the reference has objects, else NaN.

    An empty prediction on a scan with lesions is an abstention: scoring it NaN would drop the scan from
    every mean, which rewards predicting nothing (MetricsReloaded sets PPV to 0 there too).
    """
    if n_pred == 0:
        return 0.0 if ref_has_objects else math.nan
    return float(hits) / float(n_pred)


def f1(recall: float, precision: float) -> float:
    """Harmonic mean of two rates; 0 when either is 0 (its limit), NaN when one is NaN and the other is not 0."""
    if recall == 0 or precision == 0:
        return 0.0
    if math.isnan(recall) or math.isnan(precision):
        return math.nan
    return 2.0 * recall * precision / (recall + precision)
