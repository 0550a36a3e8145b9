"""Whole cases as arrays ready for a 3D network: brain crop, [0, 1] normalisation, and the way back to the case grid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from msbench.datasets.case import Case


@dataclass(frozen=True)
class Volume:
    """One case cropped to its brain and normalised.

    Attributes:
        case_id: The case's id.
        image: (C, I, J, K) float32 in [0, 1], channels in the order of the modalities asked for.
        mask: (I, J, K) bool reference inside the crop, or None at prediction time.
        brain: (I, J, K) bool, voxels > 0 in any channel of the skull-stripped input.
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


def normalise_01(image: np.ndarray, brain: np.ndarray, upper_percentile: float = 100.0) -> np.ndarray:
    """Scales each channel of a (C, I, J, K) image to [0, 1] by its brain minimum and upper percentile.

    ``upper_percentile=100`` is plain min-max scaling; lower values clip bright outliers first. Voxels outside the
    brain are set to 0.
    """
    if not 0.0 < upper_percentile <= 100.0:
        raise ValueError(f"upper_percentile must lie in (0, 100], got {upper_percentile}.")
    out = np.zeros_like(image, dtype=np.float32)
    if not brain.any():
        return out
    for c in range(image.shape[0]):
        values = image[c][brain]
        low = float(values.min())
        high = float(np.percentile(values, upper_percentile)) if upper_percentile < 100.0 else float(values.max())
        scale = high - low if high > low else 1.0
        out[c] = np.clip((image[c] - low) / scale, 0.0, 1.0) * brain
    return out


def brain_bbox(brain: np.ndarray, margin: int = 2) -> tuple[slice, slice, slice]:
    """Bounding box of the non-zero voxels of ``brain``, grown by ``margin`` voxels and kept inside the grid."""
    if not brain.any():
        return tuple(slice(0, s) for s in brain.shape)  # type: ignore[return-value]
    slices = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(brain.any(axis=other))
        slices.append(slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + 1 + margin, brain.shape[axis])))
    return tuple(slices)  # type: ignore[return-value]


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
        upper_percentile: See :func:`normalise_01`.
        crop_margin: Voxels kept around the brain's bounding box.
        crop: Crop to the brain; False keeps the whole grid.
    """
    image = case.load_images(modalities)
    brain = (image > 0).any(axis=0)
    mask = case.load_mask(reference) if reference is not None else None
    if mask is not None and mask.shape != brain.shape:
        raise ValueError(
            f"case {case.case_id!r}: reference {reference!r} has shape {mask.shape}, images {brain.shape}."
        )
    bbox = brain_bbox(brain, crop_margin) if crop else tuple(slice(0, s) for s in brain.shape)
    image = normalise_01(image, brain, upper_percentile)
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


def dice_score(pred: np.ndarray, ref: np.ndarray, extra_ref: int = 0) -> float:
    """Dice of two boolean arrays; ``extra_ref`` reference voxels outside the arrays count as misses.

    Both empty gives NaN, as in the metric suite (``benchmark.metrics``): the scan has nothing to find and
    nothing was found, so it says nothing about the model. :func:`validation_dice` leaves such scans out.
    """
    tp = int(np.logical_and(pred, ref).sum())
    denom = int(pred.sum()) + int(ref.sum()) + int(extra_ref)
    return float("nan") if denom == 0 else 2.0 * tp / denom


def validation_dice(dices: Sequence[float]) -> float:
    """Mean Dice over validation scans, both-empty scans (NaN) left out, as the metric suite aggregates them.

    NaN when every scan is both-empty; model selection (``loop.fit_model``) then has no evidence for that epoch.
    """
    values = np.asarray(dices, dtype=float)
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


def resample(array: np.ndarray, shape: Sequence[int], mode: str = "trilinear") -> np.ndarray:
    """Resamples the last three axes of an (I, J, K) or (C, I, J, K) array to ``shape`` (torch ``interpolate``).

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
