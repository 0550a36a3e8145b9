"""Whole cases as arrays ready for a 3D network: brain crop, [0, 1] normalisation, and the way back to the case grid.

The brain is :meth:`Case.load_brain` (the dataset's brain mask, else the non-zero voxels of the inputs); cropping and
scaling are :mod:`msbench.datasets.preprocessing`'s ``brain_bbox`` and ``normalise_01``, and validation Dice is
:func:`msbench.datasets.masks.dice_score` (all re-exported here), the one implementation msbench has of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from msbench.datasets.masks import dice_score as dice_score  # re-exported: the engine's validation Dice
from msbench.datasets.preprocessing import brain_bbox, normalise_01

if TYPE_CHECKING:
    from msbench.datasets.case import Case


@dataclass(frozen=True)
class Volume:
    """One case cropped to its brain and normalised.

    Attributes:
        case_id: The case's id.
        image: (C, I, J, K) float32 in [0, 1], channels in the order of the modalities asked for.
        mask: (I, J, K) bool reference inside the crop, or None at prediction time.
        brain: (I, J, K) bool brain inside the crop (:meth:`Case.load_brain`).
        bbox: Slices of the crop in the case's grid.
        full_shape: The case's grid shape.
        spacing_mm: The case's voxel size (I, J, K) in mm; patch sizes in mm are converted with it.
        outside_positives: Reference voxels outside the crop (counted as misses by validation Dice).
    """

    case_id: str
    image: np.ndarray
    mask: np.ndarray | None
    brain: np.ndarray
    bbox: tuple[slice, slice, slice]
    full_shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    outside_positives: int = 0

    def paste(self, cropped: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Puts a crop-sized (I, J, K) array back into an array of the case's shape filled with ``fill``."""
        if cropped.shape != self.brain.shape:
            raise ValueError(f"expected an array of the crop's shape {self.brain.shape}, got {cropped.shape}.")
        full = np.full(self.full_shape, fill, dtype=cropped.dtype)
        full[self.bbox] = cropped
        return full


def load_volume(
    case: Case,
    modalities: Sequence[str],
    reference: str | None,
    *,
    upper_percentile: float = 100.0,
    crop_margin: int = 2,
    crop: bool = True,
) -> Volume:
    """Loads, crops to the brain (when ``crop``) and normalises one case.

    Args:
        case: The case.
        modalities: Input modalities, FLAIR first.
        reference: Reference mask to load (None at prediction time).
        upper_percentile: Brain intensity percentile mapped to 1 (the brain minimum maps to 0; 100: min-max).
        crop_margin: Voxels kept around the brain's bounding box.
        crop: Crop to the brain; False keeps the whole grid.
    """
    image = case.load_images(modalities)
    brain = case.load_brain(modalities, image)
    mask = case.load_mask(reference) if reference is not None else None
    if mask is not None and mask.shape != brain.shape:
        raise ValueError(
            f"case {case.case_id!r}: reference {reference!r} has shape {mask.shape}, images {brain.shape}."
        )
    bbox = brain_bbox(brain, crop_margin) if crop else tuple(slice(0, s) for s in brain.shape)
    if not 0.0 < upper_percentile <= 100.0:
        raise ValueError(f"upper_percentile must lie in (0, 100], got {upper_percentile}.")
    image = normalise_01(image, brain, percentiles=(0.0, float(upper_percentile)))
    outside = 0
    if mask is not None:
        outside = int(mask.sum() - mask[bbox].sum())
        mask = np.ascontiguousarray(mask[bbox])
    return Volume(
        case_id=case.case_id,
        image=np.ascontiguousarray(image[(slice(None), *bbox)]),
        mask=mask,
        brain=np.ascontiguousarray(brain[bbox]),
        bbox=bbox,  # type: ignore[arg-type]
        full_shape=tuple(int(s) for s in brain.shape),  # type: ignore[arg-type]
        spacing_mm=tuple(float(z) for z in case.spacing_mm),  # type: ignore[arg-type]
        outside_positives=outside,
    )


def validation_dice(dices: Sequence[float]) -> float:
    """Mean Dice over validation scans, both-empty scans (NaN) left out, as the metric suite aggregates them.

    NaN when every scan is both-empty; model selection (``loop.fit_model``) then has no evidence for that epoch.
    """
    values = np.asarray(dices, dtype=float)
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


def resample(array: np.ndarray, shape: Sequence[int], mode: str = "trilinear") -> np.ndarray:
    """Resamples the last three axes of an (I, J, K) or (C, I, J, K) array to ``shape`` (torch ``interpolate``).

    The same map as :func:`msbench.datasets.preprocessing.resample_to_shape` (voxel edges aligned, edge voxels
    repeated), computed in float32 by torch where that one runs scipy's ``zoom`` in float64: values differ in the last
    bits (up to 4e-6 on [0, 1] data; nearest labels agree), so the two are kept apart: this one feeds the networks
    that train on a fixed input shape (about 4x faster on a 4-channel volume), and replacing either would change the
    numbers the benchmark reports. The datasets layer needs no torch, hence scipy there.

    Args:
        array: The array; cast to float32.
        shape: Target (I, J, K).
        mode: ``trilinear`` (images, probabilities, soft masks) or ``nearest`` (labels, nearest-exact rounding).
    """
    import torch
    import torch.nn.functional as F

    if mode not in ("trilinear", "nearest"):
        raise ValueError(f"resample mode must be 'trilinear' or 'nearest', got {mode!r}.")
    if array.ndim not in (3, 4):
        raise ValueError(f"resample expects an (I, J, K) or (C, I, J, K) array, got shape {array.shape}.")
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    tensor = tensor[None, None] if array.ndim == 3 else tensor[None]
    kwargs = {"align_corners": False} if mode == "trilinear" else {}
    out = F.interpolate(
        tensor, size=tuple(int(s) for s in shape), mode="nearest-exact" if mode == "nearest" else mode, **kwargs
    )
    out = out[0, 0] if array.ndim == 3 else out[0]
    return np.ascontiguousarray(out.numpy())
