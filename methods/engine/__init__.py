"""The shared training engine of msbench's trainable methods.

Public API (imported lazily, so that importing ``msbench.methods.engine.defaults`` from a torch-free card does not
import torch):

Training loop (``loop``):
    ``EngineConfig(epochs, seed=0, device="cpu", patience=None, amp=True, select="val_dice", select_mode="max",
    scheduler_key="val_loss", grad_clip=None, deterministic=True, progress=True, signature="")``
    ``fit_model(model, *, optimizer, task, config, workdir, scheduler=None) -> TrainResult``: seeded epochs (every
    epoch derives torch and numpy generators from ``(seed, epoch)``), float16 autocast + GradScaler on CUDA only,
    validation on the validation cases after each epoch, best weights by ``config.select``, early stopping after
    ``config.patience`` stale epochs, ``ReduceLROnPlateau`` stepped on ``config.scheduler_key``, an atomic
    checkpoint per epoch (``workdir/checkpoint.pt``: model, optimiser, scheduler, scaler, RNG states, history,
    best) from which the next call resumes with identical results, ``history.csv`` / ``history.json`` per epoch
    (epoch, steps, loss and its terms, validation metrics, lr, seconds), a tqdm progress bar.
    ``TrainTask``: the protocol a task meets: ``train_batches(epoch, rng)``, ``loss(logits, targets) -> (total,
    terms)``, ``validate(model) -> {"val_dice", "val_loss", ...}``.
    ``TrainResult(best_epoch, best_metrics, history, best_weights, resumed_from, stopped_early)``.
    ``seed_everything(seed)``, ``epoch_seed(seed, epoch)``, ``torch_threads(n)``
    (context manager), ``default_threads(device)`` (every core, or ``MSBENCH_NUM_THREADS``; ``EngineConfig.num_threads``
    overrides it).

Parameters (``parameters``, torch-free): ``count_parameters(model, *, trainable_only=True)``, the one counter.

Checkpoints (``checkpoint``): ``save_atomic(payload, path)``, ``load_checkpoint(path)`` (``weights_only=True``).

Losses (``losses``): ``BceDiceLoss(bce_weight=0.5, smooth=1e-5)``, callable on (logits, targets) -> (total,
    {"bce", "dice_loss"}); Dice is MONAI's ``DiceLoss``.

Volumes (``volumes``): ``Volume`` (a case cropped to its brain, normalised, with ``paste`` back to the case grid),
    ``load_volume(case, modalities, reference, *, upper_percentile=100, crop_margin=2, crop=True)``,
    ``normalise_01(image, brain, percentiles)`` and ``brain_bbox(brain, margin)`` (those of
    ``msbench.datasets.preprocessing``), ``resample(array, shape, mode)``, ``dice_score(pred, ref, extra_ref=0)``
    (NaN when both are empty), ``validation_dice(dices)`` (mean over the scans that are not both-empty; NaN when
    none is).

Patches (``patches``): ``PatchSampler(volumes, patch_size, stride, positive_fraction)`` (lesion-containing grid
    patches), ``grid_starts``, ``sliding_window_logits(model, image, *, patch_size, stride, device, amp, blend,
    sw_batch_size)`` (MONAI ``sliding_window_inference``, overlap ``1 - stride / patch``).

Augmentation (``augment``): ``AugmentSpec`` (rotation, flips, elastic, brightness, contrast, noise; MONAI
    transforms), ``Augmentation(spec)`` with ``reseed(seed)`` and ``__call__(image, label)``.

Tasks (``tasks``): ``VolumeTask`` (validation and whole-crop probability), ``PatchTask`` (3D patch training,
    sliding-window validation and prediction).

Adapters (``network_adapter``): ``NetworkAdapter`` (fit/predict over volumes with Adam + ReduceLROnPlateau;
    subclasses give ``build_network(in_channels)`` and ``build_task(train, val)``), ``PatchAdapter3D`` (3D patch
    adapters), ``augment_spec_from(hparams)``; ``defaults.PATCH_DEFAULTS`` (torch-free) lists the hyper-parameters
    a ``PatchAdapter3D`` reads.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EngineConfig": "loop",
    "TrainResult": "loop",
    "TrainTask": "loop",
    "count_parameters": "parameters",
    "default_threads": "loop",
    "torch_threads": "loop",
    "epoch_seed": "loop",
    "fit_model": "loop",
    "seed_everything": "loop",
    "load_checkpoint": "checkpoint",
    "save_atomic": "checkpoint",
    "BceDiceLoss": "losses",
    "Volume": "volumes",
    "brain_bbox": "volumes",
    "dice_score": "volumes",
    "validation_dice": "volumes",
    "load_volume": "volumes",
    "normalise_01": "volumes",
    "resample": "volumes",
    "PatchSampler": "patches",
    "grid_starts": "patches",
    "sliding_window_logits": "patches",
    "AugmentSpec": "augment",
    "Augmentation": "augment",
    "PatchTask": "tasks",
    "VolumeTask": "tasks",
    "NetworkAdapter": "network_adapter",
    "PatchAdapter3D": "network_adapter",
    "augment_spec_from": "network_adapter",
    "PATCH_DEFAULTS": "defaults",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    return __all__
