"""Fit and predict for networks that segment one axial slice at a time (2D or 2.5D), on the shared engine.

Subclasses say how to build the network, its loss, how logits become a foreground probability and how many
adjacent slices a sample holds; everything else (loading, sampling, validation, model selection, prediction on
the case grid) is shared here so that the slice-based methods differ only where their papers differ.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..adapter import Adapter, FitReport, NetworkProfile, Prediction, endless, fit_signature
from .slices import SliceSampler, SliceVolume, load_slice_volume, predict_window, soft_dice_loss

if TYPE_CHECKING:
    import torch

    from msbench.datasets.case import Case

OPTIMIZERS = ("sgd", "adam")


def build_optimizer(parameters: Any, hparams: dict[str, Any]) -> torch.optim.Optimizer:
    """``sgd`` (with ``momentum``) or ``adam``, at ``lr`` and ``weight_decay`` from the hyper-parameters."""
    import torch

    name = str(hparams["optimizer"]).lower()
    if name == "sgd":
        return torch.optim.SGD(
            parameters, lr=hparams["lr"], weight_decay=hparams["weight_decay"], momentum=hparams.get("momentum", 0.0)
        )
    if name == "adam":
        return torch.optim.Adam(parameters, lr=hparams["lr"], weight_decay=hparams["weight_decay"])
    raise ValueError(f"unknown optimizer {hparams['optimizer']!r}; expected one of {OPTIMIZERS}.")


class SliceAdapter(Adapter):
    """Shared fit/predict of slice networks; see the module docstring."""

    model: torch.nn.Module | None = None

    @abstractmethod
    def build_network(self, in_channels: int) -> torch.nn.Module:
        """The untrained network for ``in_channels`` modalities."""

    @abstractmethod
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss of logits against (B, 1, H, W) float targets, and its named terms."""

    @abstractmethod
    def to_probability(self, logits: torch.Tensor) -> torch.Tensor:
        """Foreground probability (B, 1, H, W) from the network's logits."""

    @property
    def size_multiple(self) -> int:
        """In-plane window edges must be multiples of this (the network's poolings); 1 unless a subclass says."""
        return 1

    @property
    def n_slices(self) -> int:
        """Adjacent axial slices per sample (1: plain 2D)."""
        return int(self.context.hparams.get("n_slices", 1))

    def _load(self, cases: Sequence[Case], reference: str | None) -> list[SliceVolume]:
        hp = self.context.hparams
        return [
            load_slice_volume(
                case,
                self.context.modalities,
                reference,
                float(hp["window_mm"]),
                self.size_multiple,
                float(hp["upper_percentile"]),
            )
            for case in cases
        ]

    def fit(self, train: Sequence[Case], val: Sequence[Case]) -> FitReport:
        # torch: the engine's loop on use
        from msbench.methods.engine import EngineConfig, count_parameters, fit_model, seed_everything

        if not train or not val:
            raise ValueError(
                f"{self.card.name} needs training and validation cases (got {len(train)} and {len(val)}); the "
                "validation cases choose the best epoch."
            )
        ctx, hp = self.context, dict(self.context.hparams)
        seed_everything(ctx.seed)
        model = self.build_network(len(ctx.modalities))
        task = _SliceTask(
            self,
            SliceSampler(self._load(train, ctx.reference), self.n_slices, float(hp["positive_fraction"])),
            self._load(val, ctx.reference),
        )
        signature = fit_signature(self.card.name, ctx, train, val)
        config = EngineConfig(
            epochs=ctx.recipe.epochs,
            seed=ctx.seed,
            device=ctx.device,
            patience=ctx.recipe.patience,
            progress=ctx.progress,
            on_epoch=ctx.on_epoch,
            signature=signature,
            bn_recalibration_batches=int(hp.get("bn_recalibration_batches", 0)),
        )
        result = fit_model(
            model,
            optimizer=build_optimizer(model.parameters(), hp),
            task=task,
            config=config,
            workdir=ctx.workdir,
        )
        self.model = model.eval()
        return FitReport(
            chosen_epoch=result.best_epoch,
            val_dice=result.best_metrics.get("val_dice"),
            history=result.history,
            chosen={
                "n_slices": self.n_slices,
                "window_mm": float(hp["window_mm"]),
                "window_voxels": [list(v.image.shape[1:3]) for v in task.val],
            },
            n_parameters=count_parameters(model),
        )

    def predict_probability(self, volume: SliceVolume) -> np.ndarray:
        """Foreground probability on the in-plane window (S, S, K) of a loaded case."""
        if self.model is None:
            raise RuntimeError(f"{self.card.name}: predict() before fit().")
        self.model.eval()
        return predict_window(
            self.model,
            volume,
            self.n_slices,
            self.to_probability,
            batch_size=int(self.context.hparams.get("predict_batch_size", 16)),
            device=self.context.device,
        )

    def restore(self, fit: Mapping[str, Any]) -> None:
        """The selected epoch's weights from the engine checkpoint in the workdir."""
        from .checkpoint import load_trained_weights  # torch: on use

        self.model = load_trained_weights(self.build_network(len(self.context.modalities)), self.context.workdir)

    def profile_network(self, case: Case) -> NetworkProfile:
        """The network and the slice sampler's own training batches on ``case``; see :meth:`Adapter.profile_network`."""
        import torch

        ctx, hp = self.context, dict(self.context.hparams)
        sampler = SliceSampler(self._load([case], ctx.reference), self.n_slices, float(hp["positive_fraction"]))
        task = _SliceTask(self, sampler, [])
        if self.model is None:
            self.model = self.build_network(len(ctx.modalities)).to(torch.device(ctx.device)).eval()
        rng = np.random.default_rng(ctx.seed)
        return NetworkProfile(
            build_model=lambda: self.build_network(len(ctx.modalities)),
            batches=endless(lambda epoch: task.train_batches(epoch, rng)),
            loss=self.loss,
            make_optimizer=lambda model: build_optimizer(model.parameters(), hp),
            amp=True,  # fit's EngineConfig keeps its default: mixed precision on CUDA
        )

    def predict(self, case: Case) -> Prediction:
        volume = self._load([case], None)[0]
        probability = volume.to_case_grid(self.predict_probability(volume))
        return Prediction(mask=probability > 0.5, probability=probability)


class _SliceTask:
    """The engine's view of a slice method: batches, loss, validation Dice on whole validation volumes."""

    def __init__(self, adapter: SliceAdapter, sampler: SliceSampler, val: list[SliceVolume]) -> None:
        self.adapter = adapter
        self.sampler = sampler
        self.val = val

    def train_batches(self, epoch: int, rng: np.random.Generator):
        recipe = self.adapter.context.recipe
        return self.sampler.batches(rng, recipe.batch_size, recipe.iterations_per_epoch)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return self.adapter.loss(logits, targets)

    def validate(self, model: torch.nn.Module) -> dict[str, float]:
        from msbench.methods.engine import dice_score, validation_dice  # torch: on use

        dices, losses = [], []
        self.adapter.model = model
        for volume in self.val:
            assert volume.mask is not None, "validation volumes are loaded with their masks"
            probability = self.adapter.predict_probability(volume)
            dices.append(dice_score(probability > 0.5, volume.mask, volume.outside_positives))
            losses.append(soft_dice_loss(probability, volume.mask))
        return {"val_dice": validation_dice(dices), "val_loss": float(np.mean(losses))}
