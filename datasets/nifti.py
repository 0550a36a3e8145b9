"""NIfTI reading for every part of msbench: one mask reader with one 0/1 check, and the canonical orientation.

msbench works on arrays in one orientation, RAS+ (nibabel's ``as_closest_canonical``): index I grows towards the
subject's Right, J towards Anterior, K towards Superior, so the axial slice axis is always the last one. Files keep
their own orientation: :func:`to_canonical` brings a file's voxel array to the canonical grid by axis permutations
and flips only (no resampling), :func:`from_canonical` takes an array back to the file's voxel order, and
:func:`canonical_affine` gives the canonical grid's voxel-to-world matrix. An affine whose axes are rotated away
from the world axes by more than :func:`max_obliquity_deg` is refused: flips and permutations cannot make such a
grid axial.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .masks import to_bool_mask

NIFTI_SUFFIXES = (".nii.gz", ".nii")
"""The file endings msbench reads as NIfTI."""
AFFINE_ATOL_MM = 1e-3
"""Largest difference between two affines (mm) still read as the same grid; headers store float32."""
MAX_OBLIQUITY_DEG = 1.0
"""Default largest angle (degrees) between a voxel axis and its nearest world axis; ``MSBENCH_MAX_OBLIQUITY_DEG``
overrides it."""

OBLIQUITY_ENV = "MSBENCH_MAX_OBLIQUITY_DEG"

_RAS = np.array([[0, 1], [1, 1], [2, 1]], dtype=np.float64)


def load_nifti(path: str | Path):
    """``nibabel.load`` of a 3D NIfTI (a trailing axis of length 1 is allowed), with errors that name the file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file cannot be read as NIfTI or is not a 3D volume.
    """
    import nibabel as nib
    from nibabel.spatialimages import SpatialImage

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the file does not exist.")
    try:
        image = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for a corrupt or non-NIfTI file
        raise ValueError(f"{path}: cannot read as NIfTI ({type(err).__name__}: {err}).") from err
    if not isinstance(image, SpatialImage):
        raise ValueError(f"{path}: cannot read as NIfTI (nibabel reads it as a {type(image).__name__}).")
    shape = tuple(int(s) for s in image.shape)
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):
        raise ValueError(f"{path}: expected a 3D volume, got shape {shape}.")
    return image


def _data(image, path: Path, dtype: type | None) -> np.ndarray:
    try:
        data = image.get_fdata(dtype=dtype) if dtype is not None else np.asanyarray(image.dataobj)
    except Exception as err:
        raise ValueError(f"{path}: cannot read the voxel data ({type(err).__name__}: {err}).") from err
    return data.reshape(data.shape[:3])


def read_image(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An image file's voxels as float32 in the file's own voxel order, and its affine."""
    image = load_nifti(path)
    return _data(image, Path(path), np.float32), np.asarray(image.affine, dtype=np.float64)


def read_mask(
    path: str | Path, *, label_map: bool = False, canonical: bool = False
) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """A binary mask file: bool voxels, the voxel size in mm and the affine, of the file's grid or the canonical one.

    The one 0/1 check of msbench (:func:`msbench.datasets.masks.to_bool_mask`): every voxel must be 0 or 1.

    Args:
        path: The NIfTI file.
        label_map: Read a label map instead (nnU-Net's ``labelsTr``): non-negative integer labels, every non-zero
            label is lesion.
        canonical: Return the array, spacing and affine of the canonical RAS+ grid (axial axis last) instead of
            the file's own voxel order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not a 3D NIfTI, or a voxel is NaN or neither 0 nor 1 (with ``label_map``: not a non-negative
            integer); the message names the file and the values found.
    """
    path = Path(path)
    image = load_nifti(path)
    data = _data(image, path, None)
    try:
        if label_map:
            if data.dtype.kind not in "uifb" or (data.dtype.kind == "f" and not np.isfinite(data).all()):
                raise ValueError(f"{path} has dtype {data.dtype} or non-finite values: expected an integer label map.")
            bad = (data < 0) | (data != np.round(data)) if data.dtype.kind == "f" else data < 0
            if bad.any():
                values = np.unique(data[bad])
                raise ValueError(
                    f"{path} has values {values[:6].tolist()}{' ...' if values.size > 6 else ''}: expected "
                    "non-negative integer labels (0 background, any other label lesion)."
                )
            mask = data != 0
        else:
            mask = to_bool_mask(data, str(path))
    except TypeError as err:
        raise ValueError(str(err)) from err
    spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
    affine = np.asarray(image.affine, dtype=np.float64)
    if canonical:
        return to_canonical(mask, affine), canonical_spacing(affine, spacing), canonical_affine(affine, mask.shape)
    return np.ascontiguousarray(mask), spacing, affine  # type: ignore[return-value]


def orientation(affine: np.ndarray) -> np.ndarray:
    """The (3, 2) nibabel orientation of a grid: for each voxel axis, the world axis it follows and its sign."""
    from nibabel.orientations import io_orientation

    return io_orientation(np.asarray(affine, dtype=np.float64))


def to_canonical(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """A file's (I, J, K) voxel array (or (C, I, J, K)) permuted and flipped onto the RAS+ canonical grid."""
    from nibabel.orientations import apply_orientation

    return _apply(data, orientation(affine), apply_orientation)


def from_canonical(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_canonical`: a canonical-grid array back in the voxel order of a file of ``affine``."""
    from nibabel.orientations import apply_orientation, ornt_transform

    return _apply(data, ornt_transform(_RAS, orientation(affine)), apply_orientation)


def _apply(data: np.ndarray, ornt: np.ndarray, apply_orientation) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim == 4:
        return np.stack([_apply(channel, ornt, apply_orientation) for channel in data])
    if data.ndim != 3:
        raise ValueError(f"expected an (I, J, K) or (C, I, J, K) array, got shape {data.shape}.")
    if np.array_equal(ornt, _RAS):
        return np.ascontiguousarray(data)
    return np.ascontiguousarray(apply_orientation(data, ornt))


def canonical_affine(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Voxel-to-world matrix of the canonical grid made from a file of ``affine`` and voxel ``shape``."""
    from nibabel.orientations import inv_ornt_aff

    affine = np.asarray(affine, dtype=np.float64)
    return affine @ inv_ornt_aff(orientation(affine), tuple(int(s) for s in shape[:3]))


def canonical_shape(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Voxel shape of the canonical grid (the file's shape with its axes permuted)."""
    return _permute(tuple(int(s) for s in shape[:3]), affine)


def canonical_spacing(affine: np.ndarray, zooms: tuple[float, ...]) -> tuple[float, float, float]:
    """Voxel size in mm of the canonical grid (the file's zooms with its axes permuted)."""
    return _permute(tuple(float(z) for z in zooms[:3]), affine)


def _permute(values: tuple, affine: np.ndarray) -> tuple:
    axes = orientation(affine)[:, 0].astype(int)
    out = [values[0]] * 3
    for axis, world in enumerate(axes):
        out[world] = values[axis]
    return tuple(out)


def grid_difference(
    shape: tuple[int, ...], affine: np.ndarray, other_shape: tuple[int, ...], other_affine: np.ndarray
) -> float:
    """How far apart two files' grids are in the world, in mm (0 for one grid stored in two voxel orders).

    Returns:
        inf when the canonical shapes differ, else the largest difference of the canonical affines.
    """
    if canonical_shape(affine, shape) != canonical_shape(other_affine, other_shape):
        return float("inf")
    return float(np.abs(canonical_affine(affine, shape) - canonical_affine(other_affine, other_shape)).max())


def max_obliquity_deg() -> float:
    """The obliquity msbench accepts: ``MSBENCH_MAX_OBLIQUITY_DEG`` if set, else :data:`MAX_OBLIQUITY_DEG`."""
    raw = os.environ.get(OBLIQUITY_ENV)
    if raw is None or raw.strip() == "":
        return MAX_OBLIQUITY_DEG
    try:
        value = float(raw)
    except ValueError as err:
        raise ValueError(f"{OBLIQUITY_ENV}={raw!r}: expected an angle in degrees, e.g. 1.0.") from err
    if not 0.0 <= value < 45.0:
        raise ValueError(f"{OBLIQUITY_ENV}={raw!r}: expected an angle in [0, 45) degrees.")
    return value


def check_not_oblique(path: str | Path, affine: np.ndarray) -> None:
    """Refuses an oblique grid: a voxel axis further than :func:`max_obliquity_deg` from its nearest world axis.

    Raises:
        ValueError: Naming the file, its angles (``nibabel.affines.obliquity``) and the ways out.
    """
    from nibabel.affines import obliquity

    angles = np.degrees(obliquity(np.asarray(affine, dtype=np.float64)))
    limit = max_obliquity_deg()
    if float(np.max(angles)) > limit:
        raise ValueError(
            f"{path}: the voxel axes are oblique (angles to the nearest world axes "
            f"{', '.join(f'{a:.2f}' for a in angles)} degrees; msbench accepts up to {limit:g}). Axis flips and "
            "permutations cannot make this grid axial: resample the case to an axis-aligned grid (e.g. with "
            f"nibabel.processing.resample_from_to or ANTs), or set {OBLIQUITY_ENV} to accept it as it is."
        )
