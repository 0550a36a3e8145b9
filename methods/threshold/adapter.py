"""A FLAIR threshold in multiples of the brain median, chosen on the validation patient."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from msbench.datasets.case import Case

from ..adapter import Adapter, FitReport, Prediction


def normalised_flair(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """FLAIR divided by its brain median, and the brain (:meth:`Case.load_brain`: the dataset's mask or FLAIR > 0)."""
    flair = case.load_image("flair")
    brain = case.load_brain(("flair",), flair)
    median = float(np.median(flair[brain]))
    if not median > 0:
        raise ValueError(f"{case.images['flair']}: the FLAIR median inside the brain is {median}; cannot normalise.")
    return flair / median, brain


class ThresholdAdapter(Adapter):
    """Segments ``flair / median(brain) > t`` inside the brain."""

    threshold: float | None = None

    def fit(self, train: Sequence[Case], val: Sequence[Case]) -> FitReport:
        if not val:
            raise ValueError("threshold needs at least one validation case to choose its threshold.")
        hp = self.context.hparams
        grid = np.linspace(hp["low"], hp["high"], int(hp["steps"]))
        dice = np.zeros((len(val), grid.size))
        for row, case in enumerate(val):
            image, brain = normalised_flair(case)
            ref = case.load_mask(self.context.reference)
            values = image[brain]
            in_ref = ref[brain]
            # Sort once; predicted-positive counts per threshold come from searchsorted.
            order = np.sort(values)
            ref_sorted = np.sort(values[in_ref])
            n_pred = values.size - np.searchsorted(order, grid, side="right")
            tp = ref_sorted.size - np.searchsorted(ref_sorted, grid, side="right")
            denom = n_pred + ref.sum()
            dice[row] = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)
        mean = np.nanmean(dice, axis=0)
        best = int(np.nanargmax(mean))
        self.threshold = float(grid[best])
        return FitReport(val_dice=float(mean[best]), chosen={"threshold": self.threshold}, n_parameters=1)

    def restore(self, fit: Mapping[str, Any]) -> None:
        self.threshold = float(fit["chosen"]["threshold"])

    def predict(self, case: Case) -> Prediction:
        if self.threshold is None:
            raise RuntimeError("threshold: predict() before fit().")
        image, brain = normalised_flair(case)
        mask = (image > self.threshold) & brain
        return Prediction(mask=mask, probability=None)
