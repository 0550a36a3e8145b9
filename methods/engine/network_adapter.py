"""Adapters built on the engine: load volumes, build a network, train with Adam and ReduceLROnPlateau, predict."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from msbench.datasets.preprocessing import mm_to_voxels

from ..adapter import Adapter, FitReport, NetworkProfile, Prediction, endless, fit_signature
from .augment import Augmentation, AugmentSpec, flip_axes_from
from .checkpoint import load_trained_weights
from .loop import EngineConfig, default_threads, fit_model, seed_everything, torch_threads
from .losses import BceDiceLoss
from .parameters import count_parameters
from .tasks import PatchTask, VolumeTask
from .volumes import Volume, load_volume

if TYPE_CHECKING:
    from msbench.datasets.case import Case


def require(hparams: Mapping[str, Any], key: str, method: str) -> Any:
    """``hparams[key]`` with an error naming the method and the missing key."""
    if key not in hparams:
        raise KeyError(f"method {method!r}: hyper-parameter {key!r} is missing; it has {sorted(hparams)}.")
    return hparams[key]


def augment_spec_from(hparams: Mapping[str, Any]) -> AugmentSpec:
    """An :class:`AugmentSpec` from the hyper-parameters named like its fields (absent ones keep their default)."""
    fields = {k: hparams[k] for k in AugmentSpec.__dataclass_fields__ if k in hparams}
    if "flip_axes" in fields:
        fields["flip_axes"] = flip_axes_from(fields["flip_axes"])
    for key in ("elastic_sigma", "elastic_magnitude"):
        if key in fields:
            fields[key] = tuple(float(v) for v in fields[key])
    return AugmentSpec(**fields)


def init_output_bias(model: nn.Module, prior: float) -> None:
    """Sets the bias of the model's last convolution to ``log(prior / (1 - prior))`` (0: leave PyTorch's init).

    The network then starts out predicting the lesion prior everywhere instead of 0.5, so the first steps are not
    spent learning that almost every voxel is background (Lin et al. 2017, focal loss paper, Section 4.1).
    """
    if prior <= 0.0:
        return
    if not prior < 1.0:
        raise ValueError(f"init_prior must lie in [0, 1), got {prior}.")
    last_bias: torch.Tensor | None = None
    for module in model.modules():
        if isinstance(module, nn.Conv3d | nn.Conv2d) and module.bias is not None:
            last_bias = module.bias
    if last_bias is None:
        raise ValueError(f"{type(model).__name__} has no convolution with a bias to initialise.")
    with torch.no_grad():
        last_bias.fill_(float(np.log(prior / (1.0 - prior))))


class NetworkAdapter(Adapter):
    """Base of the engine's adapters. Subclasses give the network and the task; this class does the rest.

    Hyper-parameters it reads: ``lr``, ``weight_decay``, ``plateau_factor``, ``plateau_patience``,
    ``plateau_metric`` (``val_loss`` or ``val_dice``), ``upper_percentile``, ``crop_margin``, ``threshold``,
    ``min_lesion_voxels``, and
    optionally ``init_prior`` (see :func:`init_output_bias`), ``grad_clip`` and ``amp``. The workdir receives the
    engine's checkpoint and per-epoch log; a fit interrupted mid-way resumes from its last complete epoch when run
    again with the same workdir.
    """

    model: nn.Module | None = None
    task: VolumeTask | None = None

    @abstractmethod
    def build_network(self, in_channels: int) -> nn.Module:
        """The untrained network for ``in_channels`` input channels and one output logit channel."""

    @abstractmethod
    def build_task(
        self, train: Sequence[Volume], val: Sequence[Volume], chosen: Mapping[str, Any] | None = None
    ) -> VolumeTask:
        """The training task over prepared volumes."""

    def hp(self, key: str) -> Any:
        return require(self.context.hparams, key, self.card.name)

    def preprocess(self, volume: Volume) -> Volume:
        """Method-specific pre-processing after crop and [0, 1] normalisation (identity by default)."""
        return volume

    def load(self, case: Case, with_mask: bool) -> Volume:
        """A case cropped to its brain, normalised and pre-processed."""
        volume = load_volume(
            case,
            self.context.modalities,
            self.context.reference if with_mask else None,
            upper_percentile=float(self.hp("upper_percentile")),
            crop_margin=int(self.hp("crop_margin")),
        )
        return self.preprocess(volume)

    def loss(self) -> BceDiceLoss:
        return BceDiceLoss(
            bce_weight=float(self.hp("bce_weight")),
            smooth=float(self.hp("dice_smooth")),
            batch_dice=bool(self.context.hparams.get("batch_dice", False)),
        )

    def fit(self, train: Sequence[Case], val: Sequence[Case]) -> FitReport:
        if not train:
            raise ValueError(f"method {self.card.name!r} needs at least one training case.")
        if not val:
            raise ValueError(f"method {self.card.name!r} needs at least one validation case for model selection.")
        ctx = self.context
        seed_everything(ctx.seed)
        train_volumes = [self.load(case, with_mask=True) for case in train]
        val_volumes = [self.load(case, with_mask=True) for case in val]
        model = self.build_network(len(ctx.modalities))
        init_output_bias(model, float(ctx.hparams.get("init_prior", 0.0)))
        optimizer = self.make_optimizer(model)
        plateau_metric = str(self.hp("plateau_metric"))
        if plateau_metric not in ("val_loss", "val_dice"):
            raise ValueError(f"plateau_metric must be 'val_loss' or 'val_dice', got {plateau_metric!r}.")
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min" if plateau_metric == "val_loss" else "max",
            factor=float(self.hp("plateau_factor")),
            patience=int(self.hp("plateau_patience")),
        )
        task = self.build_task(train_volumes, val_volumes)
        config = EngineConfig(
            epochs=ctx.recipe.epochs,
            seed=ctx.seed,
            device=ctx.device,
            patience=ctx.recipe.patience,
            amp=bool(ctx.hparams.get("amp", True)),
            select="val_dice",
            scheduler_key=plateau_metric,
            grad_clip=ctx.hparams.get("grad_clip"),
            progress=ctx.progress,
            on_epoch=ctx.on_epoch,
            signature=self.signature(train, val),
        )
        result = fit_model(
            model, optimizer=optimizer, scheduler=scheduler, task=task, config=config, workdir=ctx.workdir
        )
        self.model, self.task = model.eval(), task
        return FitReport(
            chosen_epoch=result.best_epoch,
            val_dice=result.best_metrics.get("val_dice"),
            history=result.history,
            chosen={
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "stopped_early": result.stopped_early,
                "resumed_from_epoch": result.resumed_from,
                **(
                    {"patch_voxels": list(task.patch_size), "stride_voxels": list(task.stride)}
                    if isinstance(task, PatchTask)
                    else {}
                ),
            },
            n_parameters=count_parameters(model),
        )

    def restore(self, fit: Mapping[str, Any]) -> None:
        """The selected epoch's weights from the engine checkpoint in the workdir, and an inference-only task."""
        self.model = load_trained_weights(self.build_network(len(self.context.modalities)), self.context.workdir)
        self.task = self.build_task([], [], chosen=fit.get("chosen") or {})

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """Adam at the hyper-parameters' ``lr`` and ``weight_decay``, as :meth:`fit` trains."""
        return torch.optim.Adam(
            model.parameters(), lr=float(self.hp("lr")), weight_decay=float(self.hp("weight_decay"))
        )

    def profile_network(self, case: Case) -> NetworkProfile:
        """The network and the task's own training batches on ``case``; see :meth:`Adapter.profile_network`.

        A fitted (or restored) patch task keeps its patch and stride; otherwise they come from ``case``'s spacing.
        """
        ctx = self.context
        volume = self.load(case, with_mask=True)
        chosen = None
        if isinstance(self.task, PatchTask):
            chosen = {"patch_voxels": list(self.task.patch_size), "stride_voxels": list(self.task.stride)}
        task = self.build_task([volume], [], chosen=chosen)
        if self.model is None or self.task is None:
            self.model = self.build_network(len(ctx.modalities)).to(torch.device(ctx.device)).eval()
            self.task = task
        rng = np.random.default_rng(ctx.seed)
        return NetworkProfile(
            build_model=lambda: self.build_network(len(ctx.modalities)),
            batches=endless(lambda epoch: task.train_batches(epoch, rng)),
            loss=task.loss,
            make_optimizer=self.make_optimizer,
            amp=bool(ctx.hparams.get("amp", True)),
        )

    def predict(self, case: Case) -> Prediction:
        if self.model is None or self.task is None:
            raise RuntimeError(f"method {self.card.name!r}: predict() before fit().")
        volume = self.load(case, with_mask=False)
        with torch.no_grad(), torch_threads(default_threads(self.context.device)):
            probability = self.task.probability(self.model, volume)
        mask = volume.paste(self.task.segment(probability), fill=False)
        return Prediction(mask=mask, probability=volume.paste(probability).astype(np.float32))

    def signature(self, train: Sequence[Case], val: Sequence[Case]) -> str:
        """Identity of the fit, stored in the checkpoint so that a resume never mixes two different fits."""
        return fit_signature(self.card.name, self.context, train, val)


class PatchAdapter3D(NetworkAdapter):
    """3D patch training and sliding-window inference (F.sh, BasicUNet, DynUNet).

    Extra hyper-parameters: ``patch_mm`` and ``stride_mm`` (edge lengths in mm, see :meth:`patch_voxels`),
    ``positive_fraction``, the
    :class:`AugmentSpec` fields (``rotate_prob``, ``rotate_deg``, ``flip_prob``, ``elastic_prob``, ...),
    ``bce_weight``, ``dice_smooth``, ``blend`` and ``sw_batch_size``.
    """

    @property
    def patch_multiple(self) -> int:
        """Patch edges in voxels are multiples of this: F.sh, BasicUNet and DynUNet all pool four times."""
        return 16

    def patch_voxels(self, volumes: Sequence[Volume]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Patch and stride in voxels: ``patch_mm`` / ``stride_mm`` on the median spacing of the training volumes.

        The patch rounds to the nearest multiple of :attr:`patch_multiple` (96 mm at 3 mm is 32 voxels, 64 mm at
        1 mm is 64), the stride to the nearest voxel inside [1, patch]. One size serves every case of the fit, as
        training batches and the sliding window need one patch shape.
        """
        patch_mm, stride_mm = float(self.hp("patch_mm")), float(self.hp("stride_mm"))
        if not 0 < stride_mm <= patch_mm:
            raise ValueError(
                f"method {self.card.name!r}: stride_mm must lie in (0, patch_mm={patch_mm}], got {stride_mm}."
            )
        spacing = tuple(float(z) for z in np.median([v.spacing_mm for v in volumes], axis=0))
        patch = mm_to_voxels(patch_mm, spacing, multiple=self.patch_multiple)
        stride = tuple(min(s, p) for s, p in zip(mm_to_voxels(stride_mm, spacing), patch, strict=True))
        return patch, stride

    def build_task(
        self, train: Sequence[Volume], val: Sequence[Volume], chosen: Mapping[str, Any] | None = None
    ) -> PatchTask:
        """The patch task; restored for inference (``chosen`` given), it takes the fit's patch and stride."""
        if chosen is not None:
            patch, stride = tuple(chosen["patch_voxels"]), tuple(chosen["stride_voxels"])
        else:
            patch, stride = self.patch_voxels(train)
        recipe = self.context.recipe
        return PatchTask(
            train,
            val,
            self.loss(),
            patch_size=patch,
            stride=stride,
            batch_size=recipe.batch_size,
            iterations_per_epoch=recipe.iterations_per_epoch,
            positive_fraction=float(self.hp("positive_fraction")),
            augmentation=Augmentation(augment_spec_from(self.context.hparams)),
            blend=str(self.hp("blend")),
            sw_batch_size=int(self.hp("sw_batch_size")),
            device=self.context.device,
            amp=bool(self.context.hparams.get("amp", True)),
            threshold=float(self.hp("threshold")),
            min_lesion_voxels=int(self.hp("min_lesion_voxels")),
        )
