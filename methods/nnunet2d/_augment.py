"""The paper's 2D augmentation as a batchgeneratorsv2 transform that runs inside nnU-Net's training pipeline.

Darestani et al. augment each slice with a random rotation (+-40 deg), width and height shifts (+-20 % of the image),
shear (+-20 deg), zoom (+-20 %) and horizontal flips, Keras ``ImageDataGenerator``-style: the sampled affine maps
output pixels to input pixels and the border is filled with the nearest pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from torch.nn.functional import grid_sample


class PaperAffine2D(BasicTransform):
    """Random rotation, shift, shear, zoom and horizontal flip of a 2D (C, X, Y) sample, as in the paper.

    Args:
        reference_size: Image size (X, Y) in pixels that the shifts are fractions of (nnU-Net's patch size, which
            covers the slice).
        rotation_deg: Rotation range, degrees either way.
        shift_fraction: Shift range along each axis, as a fraction of ``reference_size``.
        shear_deg: Shear range, degrees either way.
        zoom_fraction: Zoom range; each axis draws its factor from ``[1 - zoom, 1 + zoom]``.
        p_affine: Probability that a sample is transformed (the paper's five augmented copies next to each original
            slice make 5/6).
        p_flip: Probability of mirroring the last (left-right) axis.
    """

    def __init__(
        self,
        reference_size: Sequence[int],
        rotation_deg: float = 40.0,
        shift_fraction: float = 0.2,
        shear_deg: float = 20.0,
        zoom_fraction: float = 0.2,
        p_affine: float = 5 / 6,
        p_flip: float = 0.5,
    ) -> None:
        super().__init__()
        if len(reference_size) != 2:
            raise ValueError(f"PaperAffine2D needs a 2D reference size, got {tuple(reference_size)}.")
        self.reference_size = tuple(int(s) for s in reference_size)
        self.rotation_deg = rotation_deg
        self.shift_fraction = shift_fraction
        self.shear_deg = shear_deg
        self.zoom_fraction = zoom_fraction
        self.p_affine = p_affine
        self.p_flip = p_flip

    def get_parameters(self, **data_dict) -> dict:
        shape = tuple(data_dict["image"].shape[1:])
        if len(shape) != 2:
            raise ValueError(f"PaperAffine2D expects (C, X, Y) samples, got shape {tuple(data_dict['image'].shape)}.")
        grid = None
        if np.random.uniform() < self.p_affine:
            matrix = affine_matrix(
                rotation_deg=np.random.uniform(-self.rotation_deg, self.rotation_deg),
                shear_deg=np.random.uniform(-self.shear_deg, self.shear_deg),
                zoom=np.random.uniform(1 - self.zoom_fraction, 1 + self.zoom_fraction, size=2),
            )
            shift = np.random.uniform(-self.shift_fraction, self.shift_fraction, size=2) * self.reference_size
            grid = sampling_grid(shape, matrix, shift)
        return {"grid": grid, "flip": bool(np.random.uniform() < self.p_flip)}

    def _apply_to_image(self, img: torch.Tensor, **params) -> torch.Tensor:
        if params["grid"] is not None:
            img = grid_sample(img[None].float(), params["grid"], "bilinear", "border", align_corners=False)[0]
        return torch.flip(img, dims=(-1,)) if params["flip"] else img

    def _apply_to_segmentation(self, segmentation: torch.Tensor, **params) -> torch.Tensor:
        if params["grid"] is not None:
            moved = grid_sample(segmentation[None].float(), params["grid"], "nearest", "border", align_corners=False)
            segmentation = moved[0].round().to(segmentation.dtype)
        return torch.flip(segmentation, dims=(-1,)) if params["flip"] else segmentation


def affine_matrix(rotation_deg: float, shear_deg: float, zoom: Sequence[float] | np.ndarray) -> np.ndarray:
    """Keras' composition rotation @ shear @ zoom, acting on (X, Y) pixel offsets from the centre (output -> input)."""
    theta, shear = math.radians(rotation_deg), math.radians(shear_deg)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    shearing = np.array([[1.0, -math.sin(shear)], [0.0, math.cos(shear)]])
    return rotation @ shearing @ np.diag(np.asarray(zoom, dtype=np.float64))


def sampling_grid(shape: Sequence[int], matrix: np.ndarray, shift_px: Sequence[float] | np.ndarray) -> torch.Tensor:
    """``grid_sample`` grid (1, X, Y, 2) that reads input pixel ``matrix @ (p - c) + c + shift`` for output pixel p."""
    size = np.asarray(shape, dtype=np.float64)
    centre = (size - 1) / 2
    axes = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    offsets = np.stack(axes, axis=-1) - centre
    source = offsets @ matrix.T + centre + np.asarray(shift_px, dtype=np.float64)
    # grid_sample takes (x = last axis, y = first axis) normalised to [-1, 1] with align_corners=False.
    normalised = (2 * source + 1) / size - 1
    return torch.from_numpy(normalised[..., ::-1].copy()).float()[None]
