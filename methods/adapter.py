"""The one contract every method meets: build from a card, fit on training cases, predict whole volumes.

The harness hands an adapter whole volumes on their native grid (``Case`` objects). Whatever the method's slicing
(2D, 2.5D, 3D patches, resampled crops), ``predict`` returns a full-volume boolean mask on the case's own grid and,
when the method has one, a probability map on the same grid.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from msbench.datasets.case import DEFAULT_MODALITIES, DEFAULT_REFERENCE

from .card import MethodCard, Recipe

if TYPE_CHECKING:
    import torch

    from msbench.datasets.case import Case

HISTORY_CSV = "history.csv"
"""The per-epoch log a fit writes under its workdir (the engine's loop, nnunet2d's trainer); the harness reads it
for progress and resume."""


@dataclass(frozen=True)
class Prediction:
    """A method's output for one case, on the case's grid: boolean mask and optional probability map.

    ``copied_reference`` names a reference mask the prediction is a copy of (the inter-rater row); the harness
    does not score a prediction against the mask it copies.
    """

    mask: np.ndarray
    probability: np.ndarray | None = None
    copied_reference: str | None = None


@dataclass(frozen=True)
class FitContext:
    """What the harness fixes for one (method, fold, seed) fit.

    Attributes:
        workdir: Folder owned by this fit: checkpoints, logs, any files the method writes.
        seed: Seed for every random choice of the fit.
        device: ``cpu`` or ``cuda`` / ``cuda:N``.
        budget: ``smoke``, ``quick`` or ``paper``.
        recipe: The card's recipe for that budget.
        hparams: Final hyper-parameters (defaults, budget overrides, tuned or user values).
        modalities: Input modalities, canonical names, FLAIR first.
        reference: The reference mask used for training and validation (rater 1 by default).
        progress: Show progress bars.
        on_epoch: Receives ``(epoch, validation metrics)`` after each training epoch of the engine's fits (tuning's
            pruner); may raise to stop the fit. Adapters outside the engine do not call it.
    """

    workdir: Path
    seed: int
    device: str
    budget: str
    recipe: Recipe
    hparams: Mapping[str, Any]
    modalities: tuple[str, ...] = DEFAULT_MODALITIES
    reference: str = DEFAULT_REFERENCE
    progress: bool = True
    on_epoch: Callable[[int, Mapping[str, float]], None] | None = field(default=None, compare=False, repr=False)


@dataclass
class FitReport:
    """What a fit tells the harness: the chosen epoch, validation Dice, the per-epoch log, anything it chose."""

    chosen_epoch: int | None = None
    val_dice: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    chosen: dict[str, Any] = field(default_factory=dict)
    n_parameters: int | None = None


@dataclass
class NetworkProfile:
    """What :mod:`msbench.benchmark.profiling` needs of a method's network, from :meth:`Adapter.profile_network`.

    Attributes:
        build_model: A fresh, untrained copy of the method's network (same architecture as the fitted one), on CPU.
        batches: The method's own training batches ``(inputs, targets)`` at its patch / slice size and batch size,
            drawn by its own sampler and augmentation from the profiling case (endless).
        loss: The method's training loss on (logits, targets), returning the total and its named terms.
        make_optimizer: The method's optimiser over a model's parameters.
        amp: Mixed precision in training (CUDA only), as the method's fit uses it.
    """

    build_model: Callable[[], torch.nn.Module]
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]]
    loss: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
    make_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer]
    amp: bool = False


def endless(make: Callable[[int], Any]) -> Iterator[Any]:
    """Items of ``make(epoch)`` for epoch 1, 2, ... without end (a method's epochs of batches, back to back)."""
    epoch = 1
    while True:
        yield from make(epoch)
        epoch += 1


class Adapter(ABC):
    """Base class of method adapters."""

    def __init__(self, card: MethodCard, context: FitContext) -> None:
        self.card = card
        self.context = context

    @abstractmethod
    def fit(self, train: Sequence[Case], val: Sequence[Case]) -> FitReport:
        """Trains (or calibrates) on ``train``; ``val`` is the only data allowed for model selection."""

    @abstractmethod
    def predict(self, case: Case) -> Prediction:
        """Segments one whole case; the mask has ``case.shape`` and dtype bool."""

    def restore(self, fit: Mapping[str, Any]) -> None:
        """Makes this adapter ready to predict from what a finished fit left behind, without training again.

        ``self.context.workdir`` is that fit's work folder (checkpoints, the trained model) and ``fit`` its stored
        report (``fit.json``: ``chosen``, ``chosen_epoch``, ...). ``msbench predict`` calls it on a job of the store.

        Raises:
            NotImplementedError: The method keeps no model to restore.
        """
        raise NotImplementedError(f"method {self.card.name!r} cannot be restored from a stored fit.")

    def profile_network(self, case: Case) -> NetworkProfile | None:
        """The method's network and training batches for profiling on ``case``; None for a method without a network.

        Also makes :meth:`predict` work when the adapter was neither fitted nor restored, with the untrained network
        (costs do not depend on the weights' values); a fitted adapter keeps its trained model for :meth:`predict`.
        Batch size and patch or slice size are the ones of ``self.context`` (its recipe and hyper-parameters). A
        method whose network exists only once trained (nnU-Net plans it from the training data) returns None; the
        runner still records its latency with every trained model.
        """
        del case
        return None


def fit_signature(method: str, context: FitContext, train: Sequence[Case], val: Sequence[Case]) -> str:
    """Identity of one fit: method, hyper-parameters, recipe, seed, inputs and cases.

    Stored with a fit's checkpoints, so that a resume never mixes two different fits.
    """
    return json.dumps(
        {
            "method": method,
            "hparams": dict(context.hparams),
            "recipe": asdict(context.recipe),
            "seed": context.seed,
            "modalities": list(context.modalities),
            "reference": context.reference,
            "train": [c.case_id for c in train],
            "val": [c.case_id for c in val],
        },
        sort_keys=True,
        default=str,
    )


def build_adapter(card: MethodCard, context: FitContext) -> Adapter:
    """Imports the card's adapter class and builds it."""
    module_name, attr = card.adapter.split(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ImportError(f"method {card.name!r}: cannot import its adapter {card.adapter!r} ({err}).") from err
    adapter = cls(card, context)
    if not isinstance(adapter, Adapter):
        raise TypeError(f"method {card.name!r}: {card.adapter} is not an msbench Adapter.")
    return adapter
