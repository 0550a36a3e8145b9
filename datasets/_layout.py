"""Shared checks of the loaders: expected files, modality names and one voxel grid per case (headers only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .nifti import AFFINE_ATOL_MM, grid_difference

MODALITY_ALIASES = {
    "flair": "flair",
    "t2flair": "flair",
    "3dflair": "flair",
    "t1": "t1",
    "t1w": "t1",
    "mprage": "t1",
    "3dt1": "t1",
    "t2": "t2",
    "t2w": "t2",
    "pd": "pd",
    "dp": "pd",
    "pdw": "pd",
    "t1post": "t1post",
    "t1wks": "t1post",
    "t1ce": "t1post",
    "t1gd": "t1post",
    "t1c": "t1post",
    "gado": "t1post",
    "3dt1gado": "t1post",
}
"""Lower-cased layout names (separators removed) -> canonical modality name."""


class MissingFileError(FileNotFoundError, ValueError):
    """A file the layout promises is absent. Caught as FileNotFoundError or as ValueError."""


def canonical_modality(name: str) -> str:
    """Canonical name of a layout's modality label (``FLAIR`` -> ``flair``, ``T1W`` -> ``t1``, ``DP`` -> ``pd``).

    Unknown names are kept, lower-cased, so that nothing a user provides is dropped.
    """
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    return MODALITY_ALIASES.get(key, key)


def require_file(path: Path, what: str) -> Path:
    """The path if it is a file, else a MissingFileError naming it and what it should hold."""
    if not path.is_file():
        raise MissingFileError(f"{path}: expected {what}, but the file does not exist.")
    return path


def find_first(candidates: list[Path], what: str) -> Path:
    """The first existing file among spellings of one file, else an error naming the first spelling."""
    for path in candidates:
        if path.is_file():
            return path
    others = f" (also tried {', '.join(p.name for p in candidates[1:])})" if len(candidates) > 1 else ""
    raise MissingFileError(f"{candidates[0]}: expected {what}, but the file does not exist{others}.")


def header_grid(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape (first three axes) and affine of a NIfTI file, read from its header alone."""
    import nibabel as nib
    from nibabel.spatialimages import SpatialImage

    try:
        img = nib.load(str(path))
    except FileNotFoundError as err:
        raise MissingFileError(f"{path}: the file does not exist.") from err
    except Exception as err:
        raise ValueError(f"{path}: cannot read as NIfTI ({err}).") from err
    if not isinstance(img, SpatialImage):
        raise ValueError(f"{path}: cannot read as NIfTI (nibabel reads it as a {type(img).__name__}).")
    shape = tuple(int(s) for s in img.shape)
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 1):
        raise ValueError(f"{path}: expected a 3D volume, got shape {shape}.")
    return shape[:3], np.asarray(img.affine, dtype=np.float64)


def check_same_grid(case_id: str, images: Mapping[str, Path], masks: Mapping[str, Path]) -> None:
    """Raises ValueError naming both files when an image or mask does not share the first image's grid.

    Only headers are read. The first image (or the first mask when there are no images) is the reference grid; a
    file may store the same grid in another voxel order (``msbench.datasets.nifti.grid_difference``).
    """
    files = [*images.values(), *masks.values()]
    if not files:
        return
    first = files[0]
    shape0, affine0 = header_grid(first)
    for path in files[1:]:
        shape, affine = header_grid(path)
        diff = grid_difference(shape0, affine0, shape, affine)
        if diff == float("inf"):
            raise ValueError(
                f"case {case_id}: {path} has shape {shape} but {first} has shape {shape0}; "
                "every image and mask of a case must share one voxel grid (resample or re-export the file)."
            )
        if diff > AFFINE_ATOL_MM:
            raise ValueError(
                f"case {case_id}: {path} and {first} have different affines (largest difference {diff:.4g} mm); "
                "every image and mask of a case must share one voxel grid (use the co-registered files)."
            )
