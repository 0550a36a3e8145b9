"""The one door into a method: a card, a budget and overrides become a fit; a case goes to the model and is scored.

Every part of the harness that fits, restores or applies a method comes through here: a run's job
(:mod:`~msbench.benchmark.job`), a tuning trial, recipe selection, profiling and ``msbench predict``.

* :func:`fit_settings` (behind :meth:`FitSpec.from_card`) is the one place where a card, a budget and
  :class:`Overrides` (tuned parameters, ``--batch-size``, a candidate recipe) become hyper-parameters and a recipe;
  cards are never rebuilt to carry overrides. A run's manifest records the result (``hparams``, ``recipe``), from
  which :meth:`FitSpec.recorded` rebuilds a fit (``msbench predict``).
* :func:`fit` seeds the process once, builds the adapter and fits it; :func:`restore` builds it from a stored fit.
* :func:`predict_case` brings a scan to the model on the training spacing (resampled in memory when its voxel size
  differs by more than ``SPACING_RTOL``), checks the prediction and returns it on the scan's own grid.
* :func:`score_case` scores a prediction against every reference of the case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from msbench.datasets import DEFAULT_MODALITIES, DEFAULT_REFERENCE, ArrayCase, Case
from msbench.datasets.preprocessing import resample_to_shape, shape_for_spacing
from msbench.methods import Adapter, FitContext, FitReport, MethodCard, Prediction, Recipe, build_adapter

from .metrics import MetricParams, evaluate_case, evaluate_case_with_lesions
from .options import check_batch_size

SPACING_RTOL = 0.1
"""Relative difference of voxel size (any axis) from the training spacing above which a scan is resampled."""


@dataclass(frozen=True)
class Overrides:
    """What a caller changes of a card's budget: tuned hyper-parameters, ``--batch-size``, a candidate recipe.

    Attributes:
        params: Hyper-parameters that win over the card's defaults and the recipe's overrides (a study's best).
        batch_size: Samples per step instead of the recipe's (trainable methods only; None: the recipe's).
        recipe: A candidate recipe instead of the budget's (recipe selection); None: the card's for the budget.
    """

    params: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    recipe: Recipe | None = None

    def __post_init__(self) -> None:
        check_batch_size(self.batch_size)


@dataclass(frozen=True)
class FitSpec:
    """One fit of one method: its card and the context the harness fixes for it (hparams, recipe, seed, ...)."""

    card: MethodCard
    context: FitContext

    @classmethod
    def from_card(
        cls,
        card: MethodCard,
        budget: str,
        *,
        overrides: Overrides | None = None,
        workdir: Path,
        seed: int = 0,
        device: str = "cpu",
        modalities: Sequence[str] | None = None,
        reference: str = DEFAULT_REFERENCE,
        progress: bool = False,
        on_epoch: Callable[[int, Mapping[str, float]], None] | None = None,
    ) -> FitSpec:
        """The card's budget with ``overrides`` (:func:`fit_settings`), for one fit.

        Raises:
            KeyError: A tuned parameter is not one of the card's hyper-parameters (the message lists them).
            ValueError: The card has no recipe for ``budget``.
        """
        hparams, recipe = fit_settings(card, budget, overrides)
        return cls.recorded(
            card, budget, hparams, recipe, workdir=workdir, seed=seed, device=device,
            modalities=modalities, reference=reference, progress=progress, on_epoch=on_epoch,
        )  # fmt: skip

    @classmethod
    def recorded(
        cls,
        card: MethodCard,
        budget: str,
        hparams: Mapping[str, Any],
        recipe: Recipe,
        *,
        workdir: Path,
        seed: int = 0,
        device: str = "cpu",
        modalities: Sequence[str] | None = None,
        reference: str = DEFAULT_REFERENCE,
        progress: bool = False,
        on_epoch: Callable[[int, Mapping[str, float]], None] | None = None,
    ) -> FitSpec:
        """A fit whose hyper-parameters and recipe were fixed before: a run's manifest, a candidate recipe."""
        context = FitContext(
            workdir=Path(workdir),
            seed=seed,
            device=device,
            budget=budget,
            recipe=recipe,
            hparams=dict(hparams),
            modalities=tuple(modalities or card.modalities),
            reference=reference,
            progress=progress,
            on_epoch=on_epoch,
        )
        return cls(card, context)


def fit_settings(card: MethodCard, budget: str, overrides: Overrides | None = None) -> tuple[dict[str, Any], Recipe]:
    """The hyper-parameters and recipe of a fit: the one place a card, a budget and overrides meet.

    Hyper-parameters are the card's defaults, then the recipe's overrides, then the tuned parameters. The recipe is
    the budget's (or the candidate's), carrying the tuned parameters among its ``overrides`` and the ``--batch-size``
    (a training-free method keeps its own): what a run's manifest records as its ``hparams`` and ``recipe``.

    Raises:
        KeyError: A tuned parameter is not one of the card's hyper-parameters (the message lists them).
        ValueError: The card has no recipe for ``budget``.
    """
    overrides = overrides or Overrides()
    params = dict(overrides.params)
    card.hparams(budget, **params)  # unknown names fail here, naming the card's hyper-parameters
    recipe = overrides.recipe or card.recipe(budget)
    hparams = {**card.defaults, **recipe.overrides, **params}
    if overrides.batch_size is not None and card.trainable:
        recipe = replace(recipe, batch_size=overrides.batch_size)
    if params:
        recipe = replace(recipe, overrides={**recipe.overrides, **params})
    return hparams, recipe


def build(spec: FitSpec) -> Adapter:
    """The method's adapter for ``spec``, neither fitted nor restored (profiling's untrained network)."""
    return build_adapter(spec.card, spec.context)


def fit(spec: FitSpec, train: Sequence[Case], val: Sequence[Case]) -> tuple[Adapter, FitReport]:
    """Seeds the process (the one place the harness does), builds the adapter and fits it on ``train``.

    The work folder is made first: a method writes its checkpoints and logs there.
    """
    # torch loads only when a fit runs (listing, planning and the board never need it)
    from msbench.methods.engine import seed_everything

    spec.context.workdir.mkdir(parents=True, exist_ok=True)
    seed_everything(spec.context.seed)
    adapter = build(spec)
    return adapter, adapter.fit(list(train), list(val))


def restore(spec: FitSpec, fit_record: Mapping[str, Any]) -> Adapter:
    """The adapter of a finished fit (``spec``'s workdir holds it; ``fit_record`` is its ``fit.json``).

    Raises:
        ValueError: The method keeps no model to restore.
    """
    adapter = build(spec)
    try:
        adapter.restore(fit_record)
    except NotImplementedError as err:
        raise ValueError(f"{err} It has no model to apply to new scans.") from None
    return adapter


def training_spacing(cases: Sequence[Case]) -> tuple[float, float, float]:
    """The median voxel size (mm, canonical axis order) of the cases a model was trained on."""
    return tuple(float(z) for z in np.median([c.spacing_mm for c in cases], axis=0))  # type: ignore[return-value]


def needs_resampling(case: Case, spacing_mm: Sequence[float] | None) -> bool:
    """Whether ``case``'s voxel size differs from ``spacing_mm`` by more than ``SPACING_RTOL`` on some axis."""
    if spacing_mm is None:
        return False
    return any(abs(a - b) > SPACING_RTOL * b for a, b in zip(case.spacing_mm, spacing_mm, strict=True))


def resampled_case(case: Case, spacing_mm: Sequence[float], modalities: Sequence[str]) -> ArrayCase:
    """``case`` on a grid of ``spacing_mm`` voxels over the same field of view, in memory.

    Images are resampled linearly, the dataset's brain mask (where it ships one) by nearest neighbour; the case has no
    reference masks.
    """
    target = tuple(float(z) for z in spacing_mm)
    shape = shape_for_spacing(case.shape, case.spacing_mm, target)
    affine = case.affine @ np.diag([*(t / s for s, t in zip(case.spacing_mm, target, strict=True)), 1.0])
    arrays = {m: resample_to_shape(case.load_image(m), shape, order=1).astype(np.float32) for m in modalities}
    brain = None
    if case.meta.get("brain_mask"):
        brain = resample_to_shape(case.load_brain(modalities), shape, order=0).astype(bool)
    meta = {k: v for k, v in case.meta.items() if k != "brain_mask"}  # that file is on the scan's own grid
    return ArrayCase(
        case_id=case.case_id,
        patient_id=case.patient_id,
        timepoint=case.timepoint,
        images=dict(case.images),
        masks={},
        dataset=case.dataset,
        meta=meta,
        arrays=arrays,
        brain=brain,
        file_affine=affine,
    )


def predict_on_training_grid(
    predict: Callable[[Case], Prediction], case: Case, spacing_mm: Sequence[float] | None, modalities: Sequence[str]
) -> Prediction:
    """``predict(case)``, on the training spacing when the case's differs; the prediction is on the case's own grid.

    The mask comes back by nearest neighbour, the probability map linearly, both inside the case's brain
    (``Case.load_brain``): interpolation never calls a lesion outside the scan's own brain.
    """
    if not needs_resampling(case, spacing_mm):
        return predict(case)
    prediction = predict(resampled_case(case, spacing_mm, modalities))  # type: ignore[arg-type]
    brain = case.load_brain(modalities)
    mask = resample_to_shape(np.asarray(prediction.mask, dtype=bool), case.shape, order=0) & brain
    probability = prediction.probability
    if probability is not None:
        probability = np.clip(resample_to_shape(probability.astype(np.float32), case.shape, order=1), 0.0, 1.0)
        probability = np.where(brain, probability, 0.0).astype(np.float32)
    return replace(prediction, mask=mask, probability=probability)


def predict_case(
    adapter: Adapter, case: Case, spacing_mm: Sequence[float] | None, modalities: Sequence[str]
) -> Prediction:
    """The adapter's checked prediction of ``case`` (:func:`predict_on_training_grid`), on the case's grid.

    Raises:
        ValueError: The mask is not a bool array of the case's shape, or the probability map has another shape or
            non-finite values.
    """
    prediction = predict_on_training_grid(adapter.predict, case, spacing_mm, modalities)
    check_prediction(adapter.card.name, case, prediction)
    return prediction


def check_prediction(method: str, case: Case, prediction: Prediction) -> None:
    """Raises ValueError when ``prediction`` is not a bool mask (and finite probability map) of ``case``'s shape."""
    mask = prediction.mask
    if not isinstance(mask, np.ndarray) or mask.dtype != bool or mask.shape != case.shape:
        got = f"{type(mask).__name__} {getattr(mask, 'dtype', '?')} {getattr(mask, 'shape', '?')}"
        raise ValueError(f"method {method!r} returned {got} for {case.case_id}; expected a bool array of {case.shape}.")
    prob = prediction.probability
    if prob is not None and (prob.shape != case.shape or not np.isfinite(prob).all()):
        raise ValueError(
            f"method {method!r}: probability map for {case.case_id} has shape {prob.shape} or non-finite values."
        )


def score_case(
    case: Case, prediction: Prediction, params: MetricParams, modalities: tuple[str, ...] = DEFAULT_MODALITIES
) -> tuple[list[dict], list[dict]]:
    """Scores one prediction against every reference of the case.

    The scored domain (nDSC's N, the balanced slice set's negatives) is the case's brain mask: the dataset's own where
    it ships one, else the voxels > 0 of the method's inputs (``Case.load_brain``).
    """
    rows, lesion_rows = [], []
    brain = case.load_brain(modalities)
    ids = {"case": case.case_id, "patient": case.patient_id, "timepoint": case.timepoint}
    for reference in case.masks:
        if reference == prediction.copied_reference:
            continue
        record, lesions = evaluate_case_with_lesions(
            prediction.mask, case.load_mask(reference), case.spacing_mm, params=params, domain=brain
        )
        rows.append({**ids, "reference": reference, **record})
        lesion_rows += [{**ids, "reference": reference, **row} for row in lesions]
    return rows, lesion_rows


def validation_dice_of(predict: Callable[[Case], Any], val: Sequence[Case], reference: str) -> list[float]:
    """The metric suite's ``dice`` of each validation scan (NaN for a both-empty scan)."""
    return [float(evaluate_case(predict(c).mask, c.load_mask(reference), c.spacing_mm)["dice"]) for c in val]


def finite_mean(values: Sequence[float]) -> float:
    """Mean of the non-NaN values (NaN when there is none): the validation Dice over scans, both-empty ones left out."""
    valid = [v for v in values if v == v]
    return sum(valid) / len(valid) if valid else float("nan")
