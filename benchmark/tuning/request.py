"""What a tuning call is asked for and answers, the fold's training and validation cases, and the study's record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msbench.methods import MethodCard, get_card

from .. import manifest as mf
from ..plan import RunRequest, prepare_run
from .space import search_space_json

if TYPE_CHECKING:
    from msbench.datasets import Case

    from ..plan import RunSetup


STUDY_VERSION = 1


def study_name(method: str, dataset: str, protocol: str, budget: str) -> str:
    """The study of one (method, dataset, protocol, budget)."""
    return f"{method}__{dataset}__{protocol}__{budget}"


@dataclass(frozen=True)
class TuneRequest:
    """What ``msbench tune`` was asked for (one method).

    Attributes:
        method: A registered method with a search space.
        dataset: Registered dataset.
        results: The results store (default storage and the index live there).
        budget: ``smoke``, ``quick`` or ``paper``: the per-trial recipe and the default number of trials.
        trials: Trials of the study (default: the budget's ``tuning_trials``).
        storage: Journal file path or Optuna URL (default :func:`default_storage`).
        study: Study name (default :func:`study_name`).
        protocol: Split protocol (default: the dataset's first).
        data_root: Dataset folder.
        fold: Outer fold whose training patients fit and whose validation patient scores (default: the first of
            the budget's folds).
        seed: Seed of the sampler and of every fit.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """

    method: str
    dataset: str
    results: Path
    budget: str = "smoke"
    trials: int | None = None
    storage: str | None = None
    study: str | None = None
    protocol: str | None = None
    data_root: Path | None = None
    fold: int | None = None
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class TrialEvent:
    """One finished trial, as the progress display receives it."""

    study: str
    number: int
    state: str
    value: float | None
    k: int
    n_trials: int
    best_value: float | None
    best_trial: int | None


@dataclass
class TuneOutcome:
    """What one ``tune`` call did and where the study stands."""

    study: str
    storage: str
    n_trials_budget: int
    n_added: int
    n_complete: int
    n_pruned: int
    n_failed: int
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Data:
    card: MethodCard
    setup: RunSetup
    fold: int
    train: list[Case]
    val: list[Case]


def _prepare(request: TuneRequest) -> _Data:
    card = get_card(request.method)
    if not card.search_space:
        raise ValueError(f"method {card.name!r} declares no search space (its card's search_space); nothing to tune.")
    return fold_data(request, card)


def fold_data(request: TuneRequest, card: MethodCard) -> _Data:
    """The training and validation cases of the request's fold; its test cases are checked apart, never returned."""
    folds = None if request.fold is None else (request.fold,)
    run = RunRequest(
        methods=card.name,
        dataset=request.dataset,
        results=request.results,
        budget=request.budget,
        protocol=request.protocol,
        data_root=request.data_root,
        folds=folds,
        device=request.device,
        progress=False,
    )
    setup = prepare_run(run, fingerprint=False)  # the fingerprint would read every file, test patients included
    fold = next(f for f in setup.split.folds if f.index == setup.folds[0])
    train, val = fold.select(setup.cases, "train"), fold.select(setup.cases, "val")
    test_patients = {c.patient_id for c in fold.select(setup.cases, "test")}
    seen = {c.patient_id for c in (*train, *val)}
    if seen & test_patients:
        raise ValueError(f"{setup.split.path.name} fold {fold.index}: patients {sorted(seen & test_patients)} are both "
                         "test and training/validation patients; tuning refuses such a split.")  # fmt: skip
    if not val:
        raise ValueError(f"{setup.split.path.name} fold {fold.index} has no validation case to score trials on.")
    return _Data(card, setup, fold.index, train, val)


def study_attrs(data: _Data, n_trials: int, seed: int) -> dict[str, Any]:
    """The study's record (Optuna user attributes): identity, equal budget, what was seen."""
    card, setup, budget = data.card, data.setup, data.setup.budget.name
    files = [p for c in (*data.train, *data.val) for p in (*c.images.values(), *c.masks.values())]
    return {
        "study_version": STUDY_VERSION,
        "method": card.name,
        "dataset": setup.spec.name,
        "protocol": setup.protocol,
        "budget": budget,
        "fold": data.fold,
        "seed": seed,
        "n_trials_budget": n_trials,
        "per_trial_budget": json.loads(json.dumps(asdict(card.recipe(budget)), default=str)),
        "search_space": search_space_json(card.search_space),
        "objective": "mean over the fold's validation scans of the metric suite's 'dice' (both-empty scans left "
        "out); intermediate values: the engine's per-epoch validation Dice",
        "split_sha256": setup.split.sha256,
        "train_cases": sorted(c.case_id for c in data.train),
        "val_cases": sorted(c.case_id for c in data.val),
        "seen_patients": sorted({c.patient_id for c in (*data.train, *data.val)}),
        "data_fingerprint": mf.data_fingerprint(files),
        "reference": setup.spec.primary_reference,
        "modalities": list(card.modalities),
    }
