"""3D U-Net adapter: whole brain crops resampled to one grid (160x160x96), blurred and sharpened.

The probability comes back to the crop by resampling and is pasted into the case's grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..engine.augment import Augmentation
from ..engine.network_adapter import NetworkAdapter, augment_spec_from
from ..engine.tasks import LossFn, VolumeTask
from ..engine.volumes import Volume, resample
from .network import build_network


def enhance(image: np.ndarray, blur_sigma: float, sharpen_sigma: float, sharpen_amount: float) -> np.ndarray:
    """The paper's pre-processing of a (C, I, J, K) image in [0, 1]: Gaussian blur, then 3D contrast enhancement.

    The paper names the steps but not the kernels. Blur: a Gaussian of ``blur_sigma`` voxels (denoising). Contrast
    enhancement: an unsharp mask with a 3D Gaussian kernel, ``x + amount * (x - G_sigma * x)``, clipped to [0, 1].
    A sigma or amount of 0 skips the step.
    """
    from scipy.ndimage import gaussian_filter

    out = np.empty_like(image, dtype=np.float32)
    for c in range(image.shape[0]):
        channel = image[c].astype(np.float32)
        if blur_sigma > 0:
            channel = gaussian_filter(channel, blur_sigma)
        if sharpen_sigma > 0 and sharpen_amount > 0:
            channel = channel + sharpen_amount * (channel - gaussian_filter(channel, sharpen_sigma))
        out[c] = np.clip(channel, 0.0, 1.0)
    return out


class WholeVolumeTask(VolumeTask):
    """Trains on whole volumes on the network's grid; validation and prediction resample back to the crop.

    Args:
        train_volumes: Training volumes (with masks).
        val_volumes: Validation volumes (with masks).
        loss: Loss on logits and targets.
        prepare: Volume -> (C, *input_shape) network input (resampling and enhancement).
        input_shape: The network's grid.
        batch_size: Volumes per step.
        iterations_per_epoch: Steps per epoch (None: one pass over the training volumes).
        augmentation: Applied to every training volume (None: none).
        device, amp, threshold, min_lesion_voxels: See :class:`VolumeTask`.
    """

    def __init__(
        self,
        train_volumes: Sequence[Volume],
        val_volumes: Sequence[Volume],
        loss: LossFn,
        *,
        prepare: Callable[[Volume], np.ndarray],
        input_shape: Sequence[int],
        batch_size: int,
        iterations_per_epoch: int | None = None,
        augmentation: Augmentation | None = None,
        device: str = "cpu",
        amp: bool = False,
        threshold: float = 0.5,
        min_lesion_voxels: int = 0,
        inference_only: bool = False,
    ) -> None:
        super().__init__(
            val_volumes, loss, device=device, amp=amp, threshold=threshold, min_lesion_voxels=min_lesion_voxels
        )
        if not train_volumes and not inference_only:
            raise ValueError("the 3D U-Net needs at least one training volume.")
        self.prepare = prepare
        self.input_shape = tuple(int(s) for s in input_shape)
        self.images = [prepare(v) for v in train_volumes]
        self.masks = [self._target(v) for v in train_volumes]
        self.batch_size = int(batch_size)
        self.iterations = iterations_per_epoch or max(1, math.ceil(len(self.images) / self.batch_size))
        self.augmentation = augmentation
        self._val_inputs = {v.case_id: prepare(v) for v in self.val_volumes}

    def _target(self, volume: Volume) -> np.ndarray:
        assert volume.mask is not None
        return (resample(volume.mask.astype(np.float32), self.input_shape) >= 0.5).astype(np.float32)[None]

    def train_batches(self, epoch: int, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.augmentation is not None:
            self.augmentation.reseed(int(rng.integers(2**32)))
        order = rng.permutation(len(self.images))
        for step in range(self.iterations):
            picks = [int(order[(step * self.batch_size + j) % len(order)]) for j in range(self.batch_size)]
            images, labels = [], []
            for index in picks:
                if self.augmentation is not None:
                    image, label = self.augmentation(self.images[index], self.masks[index])
                else:
                    image, label = torch.from_numpy(self.images[index]), torch.from_numpy(self.masks[index])
                images.append(image)
                labels.append(label)
            yield torch.stack(images), torch.stack(labels)

    def network_logits(self, model: nn.Module, volume: Volume) -> torch.Tensor:
        image = self._val_inputs.get(volume.case_id) if volume.mask is not None else None
        if image is None:
            image = self.prepare(volume)
        device = torch.device(self.device)
        inputs = torch.from_numpy(image)[None].to(device)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=self.amp and device.type == "cuda"):
            return model(inputs).float().cpu()

    def network_target(self, volume: Volume) -> torch.Tensor:
        return torch.from_numpy(self._target(volume))[None]

    def to_crop(self, probability: torch.Tensor, volume: Volume) -> np.ndarray:
        return resample(probability[0, 0].numpy(), volume.brain.shape)


class UNet3dAdapter(NetworkAdapter):
    """Brain crop -> [0, 1] -> resample to ``input_shape`` -> blur + sharpen -> Cicek 3D U-Net -> back."""

    def build_network(self, in_channels: int) -> nn.Module:
        return build_network(self.context.hparams, in_channels)

    def prepare(self, volume: Volume) -> np.ndarray:
        """Network input (C, *input_shape) of one volume."""
        image = resample(volume.image, self.input_shape)
        return enhance(
            image,
            float(self.hp("blur_sigma")),
            float(self.hp("sharpen_sigma")),
            float(self.hp("sharpen_amount")),
        )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        shape = tuple(int(s) for s in self.hp("input_shape"))
        factor = 2 ** int(self.hp("levels"))
        if len(shape) != 3 or any(s % factor for s in shape):
            raise ValueError(f"unet3d: input_shape must be 3 sizes divisible by {factor}, got {shape}.")
        return shape

    def build_task(
        self, train: Sequence[Volume], val: Sequence[Volume], chosen: Mapping[str, Any] | None = None
    ) -> WholeVolumeTask:
        recipe = self.context.recipe
        return WholeVolumeTask(
            train,
            val,
            self.loss(),
            prepare=self.prepare,
            input_shape=self.input_shape,
            batch_size=recipe.batch_size,
            iterations_per_epoch=recipe.iterations_per_epoch,
            augmentation=Augmentation(augment_spec_from(self.context.hparams)),
            device=self.context.device,
            amp=bool(self.context.hparams.get("amp", True)),
            threshold=float(self.hp("threshold")),
            min_lesion_voxels=int(self.hp("min_lesion_voxels")),
            inference_only=chosen is not None,
        )
