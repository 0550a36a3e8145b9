"""Training augmentation for 3D samples, built from MONAI dictionary transforms and reseeded every epoch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AugmentSpec:
    """Which augmentations run, with what probability and strength. A probability of 0 leaves a transform out.

    Attributes:
        rotate_prob: Probability of a random rotation (one affine resampling).
        rotate_deg: Maximum absolute rotation about each axis, degrees.
        flip_prob: Probability of flipping along each axis in ``flip_axes`` (independently).
        flip_axes: Spatial axes (0, 1, 2 = I, J, K) that may flip.
        elastic_prob: Probability of an elastic deformation (MONAI ``Rand3DElasticd``).
        elastic_sigma: Range of the Gaussian smoothing of the displacement field, voxels.
        elastic_magnitude: Range of the displacement magnitude before smoothing.
        brightness_prob: Probability of a random brightness change (``RandShiftIntensityd``).
        brightness: Maximum absolute intensity shift (images are in [0, 1]).
        contrast_prob: Probability of a random contrast change (``RandScaleIntensityd``, factor 1 +- ``contrast``).
        contrast: Maximum relative contrast change.
        noise_prob: Probability of additive Gaussian noise.
        noise_std: Standard deviation of that noise.
    """

    rotate_prob: float = 0.0
    rotate_deg: float = 0.0
    flip_prob: float = 0.0
    flip_axes: tuple[int, ...] = (0, 1, 2)
    elastic_prob: float = 0.0
    elastic_sigma: tuple[float, float] = (5.0, 8.0)
    elastic_magnitude: tuple[float, float] = (100.0, 200.0)
    brightness_prob: float = 0.0
    brightness: float = 0.1
    contrast_prob: float = 0.0
    contrast: float = 0.1
    noise_prob: float = 0.0
    noise_std: float = 0.01


class Augmentation:
    """Applies an :class:`AugmentSpec` to (image, label) pairs; labels follow spatial transforms by nearest neighbour.

    ``reseed(seed)`` fixes every random draw that follows, so an epoch seeded the same way augments the same way.
    """

    def __init__(self, spec: AugmentSpec) -> None:
        from monai.transforms import (
            Compose,
            Rand3DElasticd,
            RandAffined,
            RandFlipd,
            RandGaussianNoised,
            RandScaleIntensityd,
            RandShiftIntensityd,
        )

        self.spec = spec
        keys = ("image", "label")
        transforms: list = []
        if spec.rotate_prob > 0 and spec.rotate_deg > 0:
            angle = math.radians(spec.rotate_deg)
            transforms.append(
                RandAffined(
                    keys,
                    prob=spec.rotate_prob,
                    rotate_range=(angle,) * 3,
                    mode=("bilinear", "nearest"),
                    padding_mode="zeros",
                )
            )
        if spec.elastic_prob > 0:
            transforms.append(
                Rand3DElasticd(
                    keys,
                    sigma_range=spec.elastic_sigma,
                    magnitude_range=spec.elastic_magnitude,
                    prob=spec.elastic_prob,
                    mode=("bilinear", "nearest"),
                    padding_mode="zeros",
                )
            )
        if spec.flip_prob > 0:
            transforms.extend(RandFlipd(keys, prob=spec.flip_prob, spatial_axis=axis) for axis in spec.flip_axes)
        if spec.brightness_prob > 0:
            transforms.append(RandShiftIntensityd("image", offsets=spec.brightness, prob=spec.brightness_prob))
        if spec.contrast_prob > 0:
            transforms.append(RandScaleIntensityd("image", factors=spec.contrast, prob=spec.contrast_prob))
        if spec.noise_prob > 0:
            transforms.append(RandGaussianNoised("image", prob=spec.noise_prob, mean=0.0, std=spec.noise_std))
        self.compose = Compose(transforms) if transforms else None

    def reseed(self, seed: int) -> None:
        """Fixes the random state of every transform."""
        if self.compose is not None:
            self.compose.set_random_state(seed=int(seed) % 2**32)

    def __call__(self, image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Augments one (C, *spatial) image and its (1, *spatial) label; returns float32 tensors."""
        if self.compose is None:
            return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(np.ascontiguousarray(label))
        out = self.compose({"image": image, "label": label})
        return _plain(out["image"]), _plain(out["label"])


def _plain(value: object) -> torch.Tensor:
    tensor = value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(value)
    return tensor.float().contiguous()


def flip_axes_from(axes: Sequence[int] | str) -> tuple[int, ...]:
    """Parses ``"012"``-style or sequence flip axes into a tuple of ints in 0..2."""
    parsed = tuple(int(a) for a in axes)
    if any(a not in (0, 1, 2) for a in parsed):
        raise ValueError(f"flip axes must be among 0, 1, 2; got {axes!r}.")
    return parsed
