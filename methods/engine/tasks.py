"""Training tasks over cropped volumes: what to feed the network, how to validate, how to predict a whole crop."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .augment import Augmentation
from .patches import PatchSampler, sliding_window_logits
from .volumes import Volume, dice_score, validation_dice

LossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


class VolumeTask:
    """Validation and whole-crop prediction shared by every 3D task (subclasses add ``train_batches``).

    Validation runs the model over each validation volume the way prediction does, and reports the mean per-case
    Dice at ``threshold`` (inside the brain, reference voxels outside the crop counted as misses; both-empty cases
    left out, as in the metric suite) and the mean loss on the network's grid.

    Args:
        val_volumes: Validation volumes (with masks); the only data model selection sees.
        loss: Loss on logits and targets, returning (total, terms).
        device: Device the model runs on.
        amp: Mixed precision at inference (CUDA only).
        threshold: Probability above which a voxel is lesion.
        min_lesion_voxels: Connected components (26-connectivity) smaller than this are removed (0: keep all).
    """

    def __init__(
        self,
        val_volumes: Sequence[Volume],
        loss: LossFn,
        *,
        device: str = "cpu",
        amp: bool = False,
        threshold: float = 0.5,
        min_lesion_voxels: int = 0,
    ) -> None:
        # Empty only for a task restored for inference (``msbench predict``); a fit checks its cases first.
        self.val_volumes = list(val_volumes)
        self._loss = loss
        self.device = device
        self.amp = amp
        self.threshold = float(threshold)
        self.min_lesion_voxels = int(min_lesion_voxels)

    def train_batches(self, epoch: int, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch's (inputs, targets): what makes a task trainable (``loop.TrainTask``); subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} has no training batches; a training task defines them.")

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return self._loss(logits, targets)

    def network_logits(self, model: nn.Module, volume: Volume) -> torch.Tensor:
        """Logits (1, 1, *grid) on the network's grid, as a CPU float32 tensor."""
        raise NotImplementedError

    def network_target(self, volume: Volume) -> torch.Tensor:
        """Reference (1, 1, *grid) on the network's grid; the crop's mask by default."""
        assert volume.mask is not None
        return torch.from_numpy(volume.mask.astype(np.float32))[None, None]

    def to_crop(self, probability: torch.Tensor, volume: Volume) -> np.ndarray:
        """Probability (1, 1, *grid) on the network's grid -> (I, J, K) float32 on the crop's grid."""
        return probability[0, 0].numpy()

    def probability(self, model: nn.Module, volume: Volume) -> np.ndarray:
        """Lesion probability on the crop's grid, zero outside the brain."""
        logits = self.network_logits(model, volume)
        return (self.to_crop(torch.sigmoid(logits), volume) * volume.brain).astype(np.float32)

    def segment(self, probability: np.ndarray) -> np.ndarray:
        """Boolean mask from a probability map: threshold, then removal of components below ``min_lesion_voxels``."""
        mask = probability > self.threshold
        if self.min_lesion_voxels > 1 and mask.any():
            import cc3d

            mask = cc3d.dust(mask, threshold=self.min_lesion_voxels, connectivity=26, in_place=False)
        return np.ascontiguousarray(mask, dtype=bool)

    def validate(self, model: nn.Module) -> dict[str, float]:
        dices, losses = [], []
        for volume in self.val_volumes:
            logits = self.network_logits(model, volume)
            total, _ = self._loss(logits, self.network_target(volume))
            losses.append(float(total))
            probability = self.to_crop(torch.sigmoid(logits), volume) * volume.brain
            assert volume.mask is not None
            dices.append(dice_score(self.segment(probability), volume.mask, volume.outside_positives))
        return {"val_dice": validation_dice(dices), "val_loss": float(np.mean(losses))}


class PatchTask(VolumeTask):
    """Training on 3D patches drawn by a :class:`PatchSampler`; validation and prediction by sliding window.

    Args:
        train_volumes: Training volumes (with masks).
        val_volumes: Validation volumes (with masks).
        loss: Loss on logits and targets.
        patch_size: Patch edge lengths.
        stride: Grid stride for sampling and for the inference overlap (``1 - stride / patch``).
        batch_size: Patches per step.
        iterations_per_epoch: Steps per epoch; None visits ``len(sampler)`` patches (the lesion-containing ones).
        positive_fraction: See :class:`PatchSampler`.
        augmentation: Applied to every training patch (None: none).
        blend: ``constant`` or ``gaussian`` weighting of overlapping windows.
        sw_batch_size: Windows per forward pass at inference.
        device, amp, threshold, min_lesion_voxels: See :class:`VolumeTask`.
    """

    def __init__(
        self,
        train_volumes: Sequence[Volume],
        val_volumes: Sequence[Volume],
        loss: LossFn,
        *,
        patch_size: Sequence[int],
        stride: Sequence[int],
        batch_size: int,
        iterations_per_epoch: int | None = None,
        positive_fraction: float = 1.0,
        augmentation: Augmentation | None = None,
        blend: str = "constant",
        sw_batch_size: int = 2,
        device: str = "cpu",
        amp: bool = False,
        threshold: float = 0.5,
        min_lesion_voxels: int = 0,
    ) -> None:
        super().__init__(
            val_volumes, loss, device=device, amp=amp, threshold=threshold, min_lesion_voxels=min_lesion_voxels
        )
        self.patch_size = tuple(int(p) for p in patch_size)
        self.stride = tuple(int(s) for s in stride)
        # No training volumes: a task restored for inference only (``msbench predict``); it has no batches.
        self.sampler = (
            PatchSampler(train_volumes, self.patch_size, self.stride, positive_fraction) if train_volumes else None
        )
        self.batch_size = int(batch_size)
        n_patches = len(self.sampler) if self.sampler is not None else 0
        self.iterations = iterations_per_epoch or max(1, math.ceil(n_patches / self.batch_size))
        self.augmentation = augmentation
        self.blend = blend
        self.sw_batch_size = int(sw_batch_size)

    def train_batches(self, epoch: int, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.augmentation is not None:
            self.augmentation.reseed(int(rng.integers(2**32)))
        for _ in range(self.iterations):
            images, labels = [], []
            if self.sampler is None:
                raise RuntimeError("this patch task was restored for inference only; it has no training patches.")
            for ref in self.sampler.sample(rng, self.batch_size):
                image, label = self.sampler.crop(ref)
                if self.augmentation is not None:
                    image_t, label_t = self.augmentation(image, label)
                else:
                    image_t, label_t = torch.from_numpy(image), torch.from_numpy(label)
                images.append(image_t)
                labels.append(label_t)
            yield torch.stack(images), torch.stack(labels)

    def network_logits(self, model: nn.Module, volume: Volume) -> torch.Tensor:
        return sliding_window_logits(
            model,
            volume.image,
            patch_size=self.patch_size,
            stride=self.stride,
            device=self.device,
            amp=self.amp,
            blend=self.blend,
            sw_batch_size=self.sw_batch_size,
        )
