"""Budgets: how much compute a run may spend, fixed by the harness for every method alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """A compute class shared by all methods of a run.

    Attributes:
        name: ``smoke``, ``quick`` or ``paper``.
        synth_resolution_mm: Grid of the synth-ms phantom under this budget (coarse for CPU smoke runs).
        seeds: Seeds per (method, fold); ``paper`` reports the spread over three.
        tuning_trials: Optuna trials per method when tuning.
        description: What the budget is for.
        n_folds: Folds a run visits when ``--folds`` is not given: the protocol's first ``n_folds`` (None: all).
    """

    name: str
    synth_resolution_mm: float
    seeds: tuple[int, ...]
    tuning_trials: int
    description: str
    n_folds: int | None = None

    def default_folds(self, available: tuple[int, ...]) -> tuple[int, ...]:
        """The folds a run visits by default among the protocol's ``available`` ones."""
        return available if self.n_folds is None else available[: self.n_folds]


BUDGETS: dict[str, Budget] = {
    b.name: b
    for b in (
        Budget(
            "smoke",
            3.0,
            (0,),
            2,
            "seconds to about two minutes per method and fold on 2 CPU cores; CI and first contact (first fold "
            "unless --folds says otherwise)",
            n_folds=1,
        ),
        Budget("quick", 1.0, (0,), 10, "a meaningful comparison on one GPU in about an hour for all methods"),
        Budget("paper", 1.0, (0, 1, 2), 30, "each paper's own recipe; three seeds per (method, fold)"),
    )
}


def get_budget(name: str) -> Budget:
    try:
        return BUDGETS[name]
    except KeyError:
        raise ValueError(f"unknown budget {name!r}; expected one of {', '.join(BUDGETS)}.") from None
