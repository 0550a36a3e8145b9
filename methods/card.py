"""Method cards: everything the harness knows about a method, as torch-free data.

A card names the method, cites its paper, lists the results the paper claims (with where they come from), fixes the
input kind and modalities, the default hyper-parameters, the Optuna search space and the training recipe per budget.
The adapter that trains and predicts is referenced as ``"module:Class"`` and imported only when a run needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from msbench.benchmark.protocol import BUDGETS as _PROTOCOL_BUDGETS

InputKind = Literal["voxel", "2D", "2.5D", "3D"]
BUDGETS = tuple(_PROTOCOL_BUDGETS)
"""Budget names, as the protocol defines them (``msbench.benchmark.protocol.BUDGETS``): one recipe per budget."""


@dataclass(frozen=True)
class Claim:
    """A result a paper reports, with its provenance.

    Attributes:
        metric: msbench metric key (``dice``, ``ppv``, ``sensitivity``, ``hd95_mm``, ...).
        value: The number as the paper gives it (fractions, not percent).
        dataset: The data it was measured on, in the paper's words.
        split: How that data was split (the protocol the claim belongs to).
        source: Where in the paper (table, section, abstract).
        private_data: True when nobody else can evaluate on that data; such claims are shown, never ranked.
    """

    metric: str
    value: float
    dataset: str
    split: str
    source: str
    private_data: bool = False
    note: str = ""


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
