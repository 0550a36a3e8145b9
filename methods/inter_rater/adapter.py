"""Predicts the second rater's mask: no model, no training, the agreement humans reach."""

from __future__ import annotations

from collections.abc import Sequence

from msbench.datasets.case import Case

from ..adapter import Adapter, FitReport, Prediction


class InterRaterAdapter(Adapter):
    def fit(self, train: Sequence[Case], val: Sequence[Case]) -> FitReport:
        return FitReport()

    def predict(self, case: Case) -> Prediction:
        references = [r for r in case.masks if r != self.context.reference and r != "truth"]
        if not references:
            raise ValueError(
                f"case {case.case_id} has only the reference {self.context.reference!r}; "
                "the inter-rater row needs a second rater's mask."
            )
        return Prediction(mask=case.load_mask(references[0]), copied_reference=references[0])
