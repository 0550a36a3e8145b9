"""Pre-processing the seed papers use, in numpy/scipy, with the way back to the reference grid for scoring.

Axis order is msbench's: arrays are (I, J, K) in NIfTI voxel order with axial slices along the last axis K, or
(C, I, J, K) with channels first. A bounding box is a tuple of three slices over (I, J, K); a box may reach outside
the volume (a fixed-size window larger than the image), in which case :func:`crop` pads and :func:`uncrop` drops
the padding. Typical round trip::

    box = brain_bbox(flair, margin=2)
    small = resample_to_shape(crop(image, box), (128, 128, 64), order=1)
    ...  # the method predicts on `small`
    mask = restore_to_reference(pred_small, box, flair.shape, order=0)  # bool, on the reference grid
"""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType

import numpy as np

BBox = tuple[slice, ...]


def normalise_01(
    image: np.ndarray, brain: np.ndarray | None = None, percentiles: tuple[float, float] = (0.5, 99.5)
) -> np.ndarray:
    """Maps intensities to [0, 1] between two percentiles of the brain, clipping outside.

    Args:
        image: (I, J, K) or (C, I, J, K); channels are normalised separately.
        brain: Bool mask of the voxels whose intensities set the percentiles; voxels outside are set to 0.
            Default: the non-zero voxels (the images are skull stripped; background is 0).
        percentiles: Lower and upper percentile mapped to 0 and 1.

    Returns:
        float32 array of the image's shape; all zeros if the brain is empty or has one intensity.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 4:
        return np.stack([normalise_01(channel, brain, percentiles) for channel in image])
    if image.ndim != 3:
        raise ValueError(f"normalise_01: expected an (I, J, K) or (C, I, J, K) array, got shape {image.shape}.")
    low_pct, high_pct = percentiles
    if not 0 <= low_pct < high_pct <= 100:
        raise ValueError(f"percentiles={percentiles!r}: expected 0 <= low < high <= 100.")
    region = image != 0 if brain is None else np.asarray(brain, dtype=bool)
    if region.shape != image.shape:
        raise ValueError(f"normalise_01: brain mask shape {region.shape} differs from the image shape {image.shape}.")
    values = image[region]
    if values.size == 0:
        return np.zeros_like(image)
    low, high = np.percentile(values, (low_pct, high_pct))
    if high <= low:
        return np.zeros_like(image)
    out = np.clip((image - np.float32(low)) / np.float32(high - low), 0.0, 1.0).astype(np.float32)
    if brain is not None:
        out[~region] = 0.0
    return out


def brain_bbox(image_or_mask: np.ndarray, margin: int | Sequence[int] = 0, threshold: float = 0.0) -> BBox:
    """The smallest box over (I, J, K) holding every voxel above ``threshold``, grown by ``margin`` voxels.

    Args:
        image_or_mask: (I, J, K) or (C, I, J, K) (a voxel counts if any channel is above the threshold).
        margin: Voxels added on each side, one value or one per axis; the box stays inside the volume.
        threshold: Intensity above which a voxel is brain (0 for skull-stripped images and masks).

    Returns:
        Three slices; the whole volume when nothing is above the threshold.
    """
    data = np.asarray(image_or_mask)
    if data.ndim not in (3, 4):
        raise ValueError(f"brain_bbox: expected an (I, J, K) or (C, I, J, K) array, got shape {data.shape}.")
    foreground: np.ndarray = data > threshold
    if foreground.ndim == 4:
        foreground = np.asarray(foreground.any(axis=0))
    shape = foreground.shape
    margins = _per_axis(margin, "margin")
    if not foreground.any():
        return tuple(slice(0, n) for n in shape)
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(foreground.any(axis=others))
        box.append(slice(max(int(hits[0]) - margins[axis], 0), min(int(hits[-1]) + 1 + margins[axis], shape[axis])))
    return tuple(box)


def inplane_window(image: np.ndarray, size: tuple[int, int] = (160, 160), threshold: float = 0.0) -> BBox:
    """A fixed-size in-plane window centred on the brain, all axial slices kept (FC-DenseNet's 160x160 crop).

    The window is centred on the in-plane brain box and shifted to stay inside the image; along an axis shorter
    than ``size`` it is centred on the image and reaches outside it (:func:`crop` pads with zeros there).
    """
    data = np.asarray(image)
    spatial = data.shape[-3:]
    box = brain_bbox(data, threshold=threshold)
    window = []
    for axis in range(2):
        n, want = spatial[axis], int(size[axis])
        if want < 1:
            raise ValueError(f"size={size!r}: expected positive in-plane sizes.")
        if n >= want:
            centre = (box[axis].start + box[axis].stop) / 2
            start = min(max(int(round(centre - want / 2)), 0), n - want)
        else:
            start = -((want - n) // 2)
        window.append(slice(start, start + want))
    return (*window, slice(0, spatial[2]))


def mm_to_voxels(
    size_mm: float | Sequence[float], spacing_mm: Sequence[float], *, multiple: int = 1, round_up: bool = False
) -> tuple[int, ...]:
    """Edge lengths in mm -> voxels on a grid of ``spacing_mm``, rounded to a multiple of ``multiple``.

    Args:
        size_mm: One edge length for every axis, or one per axis of ``spacing_mm``.
        spacing_mm: Voxel size per axis (the grid the sizes apply to).
        multiple: The result is a positive multiple of this (a network's divisibility, e.g. 16 for four poolings).
        round_up: Round up (a window that must cover at least ``size_mm``) rather than to the nearest multiple.

    Returns:
        One voxel count per axis of ``spacing_mm``, each at least ``multiple``.
    """
    spacing = tuple(float(s) for s in spacing_mm)
    sizes = (float(size_mm),) * len(spacing) if isinstance(size_mm, int | float | np.number) else tuple(size_mm)
    if len(sizes) != len(spacing):
        raise ValueError(f"size_mm={size_mm!r}: expected one size or one per axis of spacing_mm={spacing}.")
    if multiple < 1 or min(spacing, default=1.0) <= 0 or min(sizes, default=1.0) <= 0:
        raise ValueError(
            f"mm_to_voxels: sizes {sizes} mm, spacing {spacing} mm and multiple {multiple} must all be positive."
        )
    out = []
    for size, step in zip(sizes, spacing, strict=True):
        units = size / step / multiple
        # A tolerance so that 96 mm at 3 mm is 32 voxels, not 33, after float division.
        count = int(np.ceil(units - 1e-6)) if round_up else int(np.floor(units + 0.5))
        out.append(max(count, 1) * multiple)
    return tuple(out)


def brain_window(
    brain: np.ndarray, spacing_mm: Sequence[float], window_mm: float, multiple: int = 1
) -> tuple[slice, slice, slice]:
    """An in-plane window over (I, J) that covers ``window_mm`` and the whole brain; all axial slices kept.

    Each in-plane edge is the larger of ``window_mm`` and the brain's extent, in voxels of ``spacing_mm``, rounded
    up to a multiple of ``multiple``: brain is never cut out of the window, and the window spans the same mm on
    any grid (the FC-DenseNet's 160x160 crop at 1 mm is ``window_mm=160``). The window is centred on the brain and
    placed as :func:`inplane_window` does (inside the image where it fits, padding where the image is smaller).

    Args:
        brain: (I, J, K) bool brain mask.
        spacing_mm: Voxel size of the grid (I, J, K).
        window_mm: Smallest in-plane edge length in mm.
        multiple: Edge lengths are multiples of this (the network's divisibility).
    """
    brain = np.asarray(brain, dtype=bool)
    if brain.ndim != 3:
        raise ValueError(f"brain_window: expected an (I, J, K) brain mask, got shape {brain.shape}.")
    box = brain_bbox(brain)
    extent = [box[axis].stop - box[axis].start if brain.any() else 0 for axis in range(2)]
    wanted = mm_to_voxels(window_mm, tuple(spacing_mm)[:2], multiple=multiple, round_up=True)
    size = tuple(max(w, -(-e // multiple) * multiple) for w, e in zip(wanted, extent, strict=True))
    return inplane_window(brain, size)  # type: ignore[arg-type,return-value]


def crop(volume: np.ndarray, bbox: BBox, fill: float | bool = 0) -> np.ndarray:
    """A new array: the part of ``volume`` inside ``bbox`` (over its last three axes).

    Where the box reaches outside the volume the array is padded with ``fill``.
    """
    volume = np.asarray(volume)
    _check_bbox(bbox)
    lead, spatial = volume.shape[:-3], volume.shape[-3:]
    out = np.full(lead + tuple(s.stop - s.start for s in bbox), fill, dtype=volume.dtype)
    inside, target = _overlap(bbox, spatial)
    if inside is not None:
        out[_spatial_index(target)] = volume[_spatial_index(inside)]
    return out


def uncrop(cropped: np.ndarray, bbox: BBox, shape: Sequence[int], fill: float | bool = 0) -> np.ndarray:
    """Puts a cropped array back at ``bbox`` inside a volume of spatial ``shape`` filled with ``fill``.

    The inverse of :func:`crop` inside the box: ``uncrop(crop(v, b), b, v.shape)`` equals ``v`` inside ``b``.
    """
    cropped = np.asarray(cropped)
    _check_bbox(bbox)
    sizes = tuple(s.stop - s.start for s in bbox)
    if cropped.shape[-3:] != sizes:
        raise ValueError(f"uncrop: array of spatial shape {cropped.shape[-3:]} does not fit a box of size {sizes}.")
    spatial = tuple(int(n) for n in shape)[-3:]
    out = np.full(cropped.shape[:-3] + spatial, fill, dtype=cropped.dtype)
    inside, target = _overlap(bbox, spatial)
    if inside is not None:
        out[_spatial_index(inside)] = cropped[_spatial_index(target)]
    return out


def shape_for_spacing(
    shape: Sequence[int], spacing_mm: Sequence[float], target_mm: Sequence[float]
) -> tuple[int, int, int]:
    """The grid size that covers a ``shape`` volume of ``spacing_mm`` voxels with ``target_mm`` voxels (at least 1)."""
    return tuple(  # type: ignore[return-value]
        max(1, round(int(n) * float(s) / float(t))) for n, s, t in zip(shape, spacing_mm, target_mm, strict=True)
    )


def resample_to_shape(volume: np.ndarray, shape: Sequence[int], order: int = 1) -> np.ndarray:
    """Resamples the last three axes to ``shape`` (voxel edges aligned: ``scipy.ndimage.zoom`` in grid mode).

    The harness's resampler (``msbench predict``, the training grid) and the phantom's; torch-free, as the datasets
    layer is. :func:`msbench.methods.engine.volumes.resample` computes the same map with torch in float32, for the
    networks' fixed input shapes; the two differ in the last bits (up to 4e-6), so neither replaces the other without
    changing the benchmark's numbers.

    Args:
        volume: (I, J, K) or (C, I, J, K); bool masks stay bool (interpolated then thresholded at 0.5 if order > 0).
        shape: Target (I, J, K).
        order: Spline order: 0 nearest (labels), 1 linear (images), 3 cubic.

    Returns:
        float32 for float input, the input dtype for bool and integer input with order 0.
    """
    from scipy import ndimage

    volume = np.asarray(volume)
    target = tuple(int(n) for n in shape)
    if len(target) != 3 or min(target) < 1:
        raise ValueError(f"resample_to_shape: expected a target shape of three positive sizes, got {shape!r}.")
    if volume.ndim == 4:
        return np.stack([resample_to_shape(channel, target, order) for channel in volume])
    if volume.ndim != 3:
        raise ValueError(f"resample_to_shape: expected an (I, J, K) or (C, I, J, K) array, got {volume.shape}.")
    if volume.shape == target:
        return volume.astype(np.float32) if volume.dtype.kind == "f" else volume.copy()
    factors = [t / s for t, s in zip(target, volume.shape, strict=True)]
    is_bool = volume.dtype == bool
    if is_bool or (volume.dtype.kind in "iu" and order > 0):
        data = volume.astype(np.float32)
    elif volume.dtype.kind == "f":
        data = volume.astype(np.float32, copy=False)
    else:
        data = volume
    out = ndimage.zoom(data, factors, order=order, mode="nearest", grid_mode=True)
    if out.shape != target:  # zoom rounds the output size; guard the contract
        raise AssertionError(f"zoom produced {out.shape}, expected {target}")
    if is_bool:
        return out >= 0.5 if order > 0 else out.astype(bool)
    return out


def restore_to_reference(
    pred: np.ndarray, bbox: BBox | None, reference_shape: Sequence[int], order: int = 0
) -> np.ndarray:
    """Takes a prediction made on a cropped and resampled grid back to the reference grid for scoring.

    Args:
        pred: (I', J', K') or (C, I', J', K') on the method's grid (bool mask or float probabilities).
        bbox: The box the input was cropped to on the reference grid, or None if it was not cropped.
        reference_shape: The reference grid's (I, J, K).
        order: 0 for masks (nearest), 1 for probabilities.

    Returns:
        The prediction resampled to the box's size and placed in a volume of ``reference_shape`` (0 / False
        outside the box), same dtype rules as :func:`resample_to_shape`.
    """
    reference = tuple(int(n) for n in reference_shape)[-3:]
    target = reference if bbox is None else tuple(s.stop - s.start for s in bbox)
    restored = resample_to_shape(pred, target, order) if np.shape(pred)[-3:] != target else np.asarray(pred)
    return restored if bbox is None else uncrop(restored, bbox, reference)


def _per_axis(value: int | Sequence[int], name: str) -> tuple[int, int, int]:
    values = (value,) * 3 if isinstance(value, int | np.integer) else tuple(value)
    if len(values) != 3 or any(int(v) < 0 for v in values):
        raise ValueError(f"{name}={value!r}: expected a non-negative int or three of them.")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def _check_bbox(bbox: BBox) -> None:
    if len(bbox) != 3 or any(
        not isinstance(s, slice) or s.start is None or s.stop is None or s.step not in (None, 1) or s.stop <= s.start
        for s in bbox
    ):
        raise ValueError(f"bbox={bbox!r}: expected three slices with explicit start < stop and no step.")


def _spatial_index(box: BBox) -> tuple[EllipsisType | slice, ...]:
    """``box`` over the last three axes, whatever leads them (``array[(..., *box)]``)."""
    return (..., *box)


def _overlap(bbox: BBox, spatial: Sequence[int]) -> tuple[BBox | None, BBox]:
    """Slices of the volume inside the box and where they land in the box's array."""
    inside, target = [], []
    for s, n in zip(bbox, spatial, strict=True):
        a, b = max(s.start, 0), min(s.stop, n)
        if b <= a:
            return None, ()
        inside.append(slice(a, b))
        target.append(slice(a - s.start, b - s.start))
    return tuple(inside), tuple(target)
