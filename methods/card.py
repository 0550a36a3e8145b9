"""Method cards: everything the harness knows about a method, as torch-free data.

A card names the method, cites its paper, lists the results the paper claims (with where they come from), fixes the
input kind and modalities, the default hyper-parameters, the Optuna search space and the training recipe per budget.
The adapter that trains and predicts is referenced as ``"module:Class"`` and imported only when a run needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

InputKind = Literal["voxel", "2D", "2.5D", "3D"]
BUDGETS = ("smoke", "quick", "paper")
"""Budget names: one recipe per budget. The protocol (``msbench.benchmark.protocol.BUDGETS``) gives each its grid,
seeds and epochs, under these names (a test holds the two together; methods import nothing of the harness)."""


SCORING_UNITS: dict[str, str] = {
    "volume": "every voxel of the scan (whole volume)",
    "lesion_slices": "only the axial slices that contain reference lesion",
    "balanced_slices": "axial slices as a balanced set: the lesion slices and as many randomly drawn lesion-free ones",
    "all_slices": "every axial slice of the volume, each classified as lesion / lesion-free",
    "not_reported": "the paper does not say what it scored (whole volumes, patches or slices)",
}
"""What a claimed number counts: the paper's scoring unit (``Claim.unit``)."""

AGGREGATIONS: dict[str, str] = {
    "per_volume_mean": "the metric per scan, averaged over the scans",
    "per_fold_mean": "the metric per fold's test (or validation) set, averaged over the folds",
    "per_slice_mean": "the metric per 2D slice, averaged over the slices",
    "pooled": "counts pooled over every scan (or slice) of the set, one ratio",
    "not_reported": "the paper does not say how it averaged",
}
"""How a claimed number was averaged (``Claim.aggregation``)."""

MSBENCH_METRIC_UNITS: dict[str, str] = {
    **{
        key: "volume"
        for key in (
            "dice",
            "ndsc",
            "jaccard",
            "sensitivity",
            "specificity",
            "ppv",
            "npv",
            "hd95_mm",
        )
    },
    "dice_lesion_slices": "lesion_slices",
    **{f"slice_bal_{m}": "balanced_slices" for m in ("accuracy", "sensitivity", "ppv", "npv")},
    **{f"slice_{m}": "all_slices" for m in ("accuracy", "sensitivity", "ppv", "npv")},
}
"""msbench metric keys a claim can stand beside, with the unit each one scores (``Claim.msbench_metric``)."""

UNIT_INVARIANT: frozenset[tuple[str, str]] = frozenset({("sensitivity", "lesion_slices")})
"""(metric key, claim unit) pairs that compute the same number although the units differ: every reference voxel
lies in a lesion slice, so sensitivity over the lesion slices equals the whole-volume sensitivity."""


@dataclass(frozen=True)
class Claim:
    """A result a paper reports, with its provenance and its scoring unit.

    Attributes:
        metric: The paper's metric in msbench's vocabulary (``dice``, ``ppv``, ``sensitivity``, ``hd95_mm``, ...).
        value: The number as the paper gives it (fractions, not percent).
        dataset: The data it was measured on, in the paper's words.
        split: How that data was split (the protocol the claim belongs to).
        source: Where in the paper (table, section, abstract).
        private_data: True when nobody else can evaluate on that data; such claims are shown, never ranked.
        note: Anything else a reader needs (spread, per-fold values).
        unit: What the number counts, a key of :data:`SCORING_UNITS` (``volume``, ``lesion_slices``,
            ``balanced_slices``, ``all_slices``).
        aggregation: How it was averaged, a key of :data:`AGGREGATIONS`.
        msbench_metric: The msbench metric key (:data:`MSBENCH_METRIC_UNITS`) to show beside the claim: the one that
            computes the same unit when msbench has it, else the nearest one (then ``comparable`` is False).
        comparable: True when ``msbench_metric`` computes the claim's quantity on the claim's unit (a like-for-like
            number); checked against the key's unit.
        unit_note: How the paper's unit shows (the sentence or table that gives it away) and what differs.
    """

    metric: str
    value: float
    dataset: str
    split: str
    source: str
    private_data: bool = False
    note: str = ""
    unit: str = ""
    aggregation: str = ""
    msbench_metric: str = ""
    comparable: bool = True
    unit_note: str = ""

    def __post_init__(self) -> None:
        where = f"claim {self.metric}={self.value} ({self.source})"
        if self.unit not in SCORING_UNITS:
            raise ValueError(f"{where}: unit {self.unit!r} is not one of {sorted(SCORING_UNITS)}.")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"{where}: aggregation {self.aggregation!r} is not one of {sorted(AGGREGATIONS)}.")
        if self.msbench_metric not in MSBENCH_METRIC_UNITS:
            raise ValueError(
                f"{where}: msbench_metric {self.msbench_metric!r} is not a known metric key; known: "
                f"{sorted(MSBENCH_METRIC_UNITS)}."
            )
        same = self.metric_unit == self.unit or (self.msbench_metric, self.unit) in UNIT_INVARIANT
        if self.comparable and not same:
            raise ValueError(
                f"{where}: msbench_metric {self.msbench_metric!r} scores {self.metric_unit!r}, the claim "
                f"{self.unit!r}; set comparable=False (and say why in unit_note) or name a key on the claim's unit."
            )

    @property
    def metric_unit(self) -> str:
        """The unit ``msbench_metric`` scores."""
        return MSBENCH_METRIC_UNITS[self.msbench_metric]


@dataclass(frozen=True)
class FloatParam:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class IntParam:
    low: int
    high: int
    step: int = 1
    log: bool = False


@dataclass(frozen=True)
class CategoricalParam:
    choices: tuple[Any, ...]


SearchParam = FloatParam | IntParam | CategoricalParam

CARD_CANDIDATE = "card"
"""The name of the smoke recipe itself among the recipe-selection candidates (``MethodCard.smoke_candidates``)."""


@dataclass(frozen=True)
class Recipe:
    """How long and how a method trains under one budget.

    Attributes:
        epochs: Maximum epochs.
        iterations_per_epoch: Optimiser steps per epoch (None: one pass over the training samples).
        batch_size: Samples per step.
        patience: Epochs without validation improvement before early stopping (None: never stop early).
        overrides: Hyper-parameters this budget changes (e.g. a narrower network on ``smoke``).
    """

    epochs: int
    batch_size: int = 2
    iterations_per_epoch: int | None = None
    patience: int | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodCard:
    """A registered method.

    Attributes:
        name: Registry name (``fsh``).
        title: Human title.
        citation: The paper (authors, venue, year, doi).
        input_kind: ``voxel`` (per-voxel rule), ``2D``, ``2.5D`` or ``3D``.
        modalities: Default input modalities (canonical names, FLAIR first).
        adapter: ``"module:Class"`` of the adapter implementing build/fit/predict.
        defaults: Default hyper-parameters (the paper's, where it gives them).
        search_space: Optuna search space over a subset of the hyper-parameters.
        recipes: Training recipe per budget (``smoke``, ``quick``, ``paper``).
        claims: Results the paper reports.
        choices: What the paper leaves open and what msbench chose, with the reason (hyper-parameter -> text).
        trainable: False for training-free methods.
        family: Methods sharing a paper (ablations) share a family.
        smoke_candidates: The variants of the smoke recipe that recipe selection (``msbench tune --candidates
            smoke``) weighs against the smoke recipe itself, each a name -> hyper-parameters it changes; the smoke
            recipe is the first candidate, ``card``, and wins ties.
    """

    name: str
    title: str
    citation: str
    input_kind: InputKind
    modalities: tuple[str, ...]
    adapter: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    search_space: Mapping[str, SearchParam] = field(default_factory=dict)
    recipes: Mapping[str, Recipe] = field(default_factory=dict)
    claims: tuple[Claim, ...] = ()
    choices: Mapping[str, str] = field(default_factory=dict)
    trainable: bool = True
    family: str = ""
    smoke_candidates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.smoke_candidates:
            return
        where = f"method {self.name!r}: smoke_candidates"
        if not self.trainable or "smoke" not in self.recipes:
            raise ValueError(f"{where}: only a trainable method with a smoke recipe has candidates to select.")
        if CARD_CANDIDATE in self.smoke_candidates:
            raise ValueError(f"{where}: {CARD_CANDIDATE!r} names the smoke recipe itself; name the variant otherwise.")
        known = {*self.defaults, *self.recipes["smoke"].overrides}
        for name, changes in self.smoke_candidates.items():
            if not changes or set(changes) - known:
                raise ValueError(
                    f"{where}: candidate {name!r} changes {sorted(set(changes) - known) or 'nothing'}; expected some "
                    f"of the hyper-parameters {sorted(known)}."
                )

    def recipe(self, budget: str) -> Recipe:
        if budget not in BUDGETS:
            raise ValueError(f"unknown budget {budget!r}; expected one of {BUDGETS}.")
        if budget not in self.recipes:
            raise ValueError(
                f"method {self.name!r} has no recipe for budget {budget!r}; it has {sorted(self.recipes)}."
            )
        return self.recipes[budget]

    def hparams(self, budget: str, **overrides: Any) -> dict[str, Any]:
        """Default hyper-parameters, then the budget's overrides, then the caller's."""
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise KeyError(
                f"method {self.name!r} has no hyper-parameters {sorted(unknown)}; known: {sorted(self.defaults)}."
            )
        return {**self.defaults, **self.recipe(budget).overrides, **overrides}

    def smoke_candidate_recipes(self) -> dict[str, Recipe]:
        """The recipe-selection candidates as recipes: the smoke recipe (``card``) first, then each variant of it.

        Raises:
            ValueError: The card declares no candidates.
        """
        if not self.smoke_candidates:
            raise ValueError(
                f"method {self.name!r} declares no smoke_candidates on its card: "
                f"{'it has no recipe to select' if not self.trainable else 'add them to its card'}."
            )
        base = self.recipe("smoke")
        variants = {
            name: replace(base, overrides={**base.overrides, **changes})
            for name, changes in self.smoke_candidates.items()
        }
        return {CARD_CANDIDATE: base, **variants}
