"""Recipe selection, a mode of ``msbench tune``: which smoke recipe a card ships, chosen on the validation patient.

``msbench tune --method fsh --candidates smoke`` weighs the card's smoke recipe (``card``) against the variants
its card declares (``MethodCard.smoke_candidates``); ``--candidates recorded`` re-runs exactly the candidates of the
committed record. It is a fixed Optuna study: a ``GridSampler`` over the candidate names (seeded with ``--seed``),
one trial per candidate, each fitting the candidate on the training patients of the fold (the budget's first, or
``--fold``) and scoring the fold's validation patient with the metric suite's ``dice`` (mean over its scans,
both-empty scans left out), the objective of :mod:`.tuning`. The fold's test cases are never handed to a fit. The
highest validation Dice wins and ties go to the earlier candidate (the card's recipe first), whatever order the
sampler ran them in. The study lives in memory: its result is the record, ``methods/smoke_selection/<method>.json``,
committed beside the cards and shown by ``msbench methods show``. It holds every candidate's recipe and validation
Dice, the chosen one, the ``threshold`` baseline's validation Dice under the same protocol, the seed, the commit and
the wall time.

A smoke fit takes about 0.5-2 minutes on 2 CPU cores; the fits run one at a time on the CPU.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msbench.datasets import DEFAULT_REFERENCE
from msbench.methods import get_card
from msbench.methods.card import CARD_CANDIDATE, Recipe
from msbench.methods.selection import (
    BUDGET,
    CRITERION,
    RECORD_VERSION,
    recipe_to_dict,
    record_path,
    recorded_candidates,
)

from .fitting import FitSpec, Overrides, finite_mean, fit, validation_dice_of
from .manifest import git_state
from .store.files import atomic_path
from .tuning import TuneRequest, fold_data

if TYPE_CHECKING:
    from msbench.datasets.case import Case

CANDIDATE_SETS = {
    "smoke": "the card's smoke recipe and the variants its smoke_candidates declare",
    "recorded": "exactly the candidates of the committed record",
}
"""What ``--candidates`` accepts."""


def candidate_recipes(method: str, candidates: str) -> dict[str, Recipe]:
    """The named candidate set of ``method`` (see :data:`CANDIDATE_SETS`), the incumbent first.

    Raises:
        ValueError: An unknown set name, or a card without candidates (a one-line message naming ``--candidates``).
    """
    if candidates not in CANDIDATE_SETS:
        known = "; ".join(f"{k} ({v})" for k, v in CANDIDATE_SETS.items())
        raise ValueError(f"--candidates {candidates!r}: expected one of: {known}.")
    if candidates == "recorded":
        try:
            return recorded_candidates(method)
        except FileNotFoundError as error:
            raise ValueError(str(error)) from None
    return get_card(method).smoke_candidate_recipes()


def _fit_and_score(
    method: str, recipe: Recipe, train: Sequence[Case], val: Sequence[Case], workdir: Path, seed: int, reference: str
) -> dict[str, Any]:
    spec = FitSpec.from_card(
        get_card(method),
        BUDGET,
        overrides=Overrides(recipe=recipe),
        workdir=workdir,
        seed=seed,
        device="cpu",
        reference=reference,
    )
    start = time.perf_counter()
    adapter, report = fit(spec, train, val)
    per_case = validation_dice_of(adapter.predict, val, reference)
    return {
        "val_dice": finite_mean(per_case),
        "val_dice_per_case": dict(zip([c.case_id for c in val], per_case, strict=True)),
        "chosen_epoch": report.chosen_epoch,
        "chosen": report.chosen,
        "fit_seconds": round(time.perf_counter() - start, 1),
    }


def sampler_text(seed: int) -> str:
    """How the study drew its trials (the record's ``sampler``)."""
    return f"optuna GridSampler over the candidate names, seed {seed}, one trial per candidate, in memory"


def select_recipe(
    method: str,
    candidates: Mapping[str, Recipe],
    train: Sequence[Case],
    val: Sequence[Case],
    *,
    workdir: Path,
    seed: int = 0,
    reference: str = DEFAULT_REFERENCE,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fits every candidate on ``train`` and scores it on ``val`` in a fixed Optuna study; the best wins.

    Args:
        method: A trainable registered method.
        candidates: Name -> recipe; the first is the incumbent and wins ties.
        train: Training cases (the fold's training patients).
        val: Validation cases (the fold's validation patient): the only data scored.
        workdir: Scratch folder; each candidate fits in its own sub-folder.
        seed: Seed of every fit and of the grid sampler.
        reference: Reference mask for training and scoring.
        log: Receives one line per finished candidate.

    Returns:
        The record: candidates (name, recipe, validation Dice per scan and mean, chosen epoch, seconds) in the
        given order, the chosen candidate and the ``threshold`` baseline's validation Dice, with the cases used.
    """
    # optuna is a heavy optional dependency of the harness: imported by the modes that run studies only
    import optuna

    if not candidates:
        raise ValueError(f"{method}: no candidate recipe to select from.")
    if not val:
        raise ValueError(f"{method}: recipe selection needs the validation patient's cases; none given.")
    overlap = {c.case_id for c in train} & {c.case_id for c in val}
    if overlap:
        raise ValueError(f"{method}: cases {sorted(overlap)} are both training and validation cases.")
    names, workdir = list(candidates), Path(workdir)
    scored: dict[str, dict[str, Any]] = {}

    def objective(trial: optuna.Trial) -> float:
        name = str(trial.suggest_categorical("candidate", names))
        index = names.index(name)
        scored[name] = _fit_and_score(method, candidates[name], train, val, workdir / f"candidate{index}", seed,
                                      reference)  # fmt: skip
        log(f"{method} [{name}]: validation Dice {scored[name]['val_dice']:.4f} ({scored[name]['fit_seconds']} s)")
        sys.stdout.flush()
        return float(scored[name]["val_dice"])  # a NaN fails the trial; the record keeps the candidate's row

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.GridSampler({"candidate": names}, seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler, study_name=f"{method}__candidates")
    study.optimize(objective, n_trials=len(names), catch=())
    rows = [{"name": name, "recipe": recipe_to_dict(candidates[name]), **scored[name]} for name in names]
    finite = [r for r in rows if r["val_dice"] == r["val_dice"]]
    if not finite:
        raise RuntimeError(f"{method}: every candidate's validation Dice is NaN (validation scans without lesion?).")
    chosen = max(finite, key=lambda r: r["val_dice"])  # max keeps the first of equal values: the card's order
    baseline = _fit_and_score(
        "threshold", get_card("threshold").recipe(BUDGET), train, val, workdir / "t", seed, reference
    )
    return {
        "method": method,
        "criterion": CRITERION,
        "sampler": sampler_text(seed),
        "train_cases": sorted(c.case_id for c in train),
        "val_cases": sorted(c.case_id for c in val),
        "val_patients": sorted({c.patient_id for c in val}),
        "candidates": rows,
        "chosen": chosen["name"],
        "chosen_val_dice": chosen["val_dice"],
        "threshold_val_dice": baseline["val_dice"],
        "threshold_chosen": baseline["chosen"],
    }


def _commit() -> str:
    """The commit that runs, as the records have always named it (``<sha>``, ``<sha>-dirty`` or ``unknown``)."""
    state = git_state()
    if state["commit"] is None:
        return "unknown"
    return state["commit"] + ("-dirty" if state["dirty"] else "")


def run_selection(
    request: TuneRequest,
    candidates: str | Mapping[str, Recipe] = "smoke",
    *,
    out: Path | None = None,
    workdir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Selects ``request.method``'s smoke recipe on the validation patient and writes the record.

    Args:
        request: Method, dataset, protocol, data root, fold and seed (``budget`` must be ``smoke``; its trials,
            storage and study are not used: the study is fixed and in memory).
        candidates: A set name of :data:`CANDIDATE_SETS` or the recipes themselves (name -> recipe).
        out: Record file (default :func:`~msbench.methods.selection.record_path`).
        workdir: Scratch folder for the fits (default: a temporary folder, removed after).
        log: Receives one line per finished candidate.

    Returns:
        The record as written.

    Raises:
        ValueError: An unknown candidate set, a card without candidates, a budget other than ``smoke``, or any
            error of the data preparation (unknown dataset, fold).
    """
    # local: the engine's thread count comes from the torch-side engine, imported only when fits run
    from msbench.methods.engine.loop import default_threads

    if request.budget != BUDGET:
        raise ValueError(f"--candidates selects the {BUDGET} recipe; --budget {request.budget!r} has no candidates.")
    card = get_card(request.method)
    recipes = candidate_recipes(card.name, candidates) if isinstance(candidates, str) else dict(candidates)
    if next(iter(recipes), None) != CARD_CANDIDATE:
        raise ValueError(f"{card.name}: the first candidate must be {CARD_CANDIDATE!r}, the card's smoke recipe.")
    data = fold_data(request, card)
    started, commit = time.time(), _commit()  # the code that runs, before anyone edits the tree
    with tempfile.TemporaryDirectory(prefix=f"msbench-select-{card.name}-") as scratch:
        record = select_recipe(card.name, recipes, data.train, data.val, workdir=Path(workdir or scratch),
                               seed=request.seed, reference=data.setup.spec.primary_reference, log=log)  # fmt: skip
    record = {
        "record_version": RECORD_VERSION,
        "method": card.name,
        "dataset": data.setup.spec.name,
        "protocol": data.setup.protocol,
        "fold": data.fold,
        "budget": BUDGET,
        "synth_resolution_mm": data.setup.budget.synth_resolution_mm,
        "seed": request.seed,
        "commit": commit,
        "device": "cpu",
        "torch_threads": default_threads("cpu"),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        **{k: v for k, v in record.items() if k != "method"},
    }
    with atomic_path(out or record_path(card.name)) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return record
