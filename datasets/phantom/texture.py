"""Label-free texture of normal white matter on FLAIR: the phantom against real scans, on the phantom's grid.

A method trained on the phantom is handed a real scan resampled to the phantom's voxel size (``msbench predict``
and the cross-dataset protocol do this), so the two are compared on that grid. White matter is found the same way
on both sides, without any lesion mask: the brightest of three Otsu classes of the T1 image, eroded by a voxel.

Two numbers separate noise from structure:

- the **robust sd** of FLAIR in white matter (1.4826 x the median absolute deviation, relative to the median): all
  the spread a threshold has to cope with;
- the **neighbour sd** (1.4826 x the median absolute difference of face neighbours inside white matter, over
  sqrt(2)): for white noise it equals the noise sd, while structure wider than a voxel barely adds to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from msbench.datasets.nifti import read_image
from msbench.datasets.preprocessing import resample_to_shape, shape_for_spacing

_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class WhiteMatterTexture:
    """FLAIR spread in normal white matter, relative to its median.

    Attributes:
        robust_sd: Robust sd of the intensity.
        neighbour_sd: Robust sd of face-neighbour differences over sqrt(2) (the white-noise part).
        n_voxels: White-matter voxels measured.
    """

    robust_sd: float
    neighbour_sd: float
    n_voxels: int


def white_matter(t1: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Voxels of the brightest of three Otsu classes of ``t1`` inside ``brain``, eroded by one voxel."""
    from skimage.filters import threshold_multiotsu

    core = ndi.binary_erosion(brain)
    values = t1[core]
    if values.size < 3 or np.ptp(values) == 0:
        return np.zeros_like(core)
    upper = threshold_multiotsu(values, classes=3)[-1]
    return ndi.binary_erosion(core & (t1 > upper))


def white_matter_texture(flair: np.ndarray, t1: np.ndarray) -> WhiteMatterTexture:
    """The FLAIR texture of normal white matter, white matter taken from ``t1`` (same grid, skull stripped).

    Raises:
        ValueError: If the two images differ in shape, or no white matter is found.
    """
    flair = np.asarray(flair, dtype=np.float32)
    t1 = np.asarray(t1, dtype=np.float32)
    if flair.shape != t1.shape:
        raise ValueError(f"FLAIR shape {flair.shape} differs from T1 shape {t1.shape}")
    wm = white_matter(t1, (flair > 0) & (t1 > 0))
    if not wm.any():
        raise ValueError("no white matter found: the T1 image has no three intensity classes inside the brain")
    relative = flair / np.float32(np.median(flair[wm]))
    values = relative[wm]
    robust_sd = _MAD_TO_SD * float(np.median(np.abs(values - np.median(values))))
    differences = []
    for axis in range(3):
        ahead = [slice(None)] * 3
        behind = [slice(None)] * 3
        ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
        both = wm[tuple(ahead)] & wm[tuple(behind)]
        differences.append((relative[tuple(ahead)] - relative[tuple(behind)])[both])
    steps = np.concatenate(differences)
    neighbour_sd = _MAD_TO_SD * float(np.median(np.abs(steps))) / np.sqrt(2.0)
    return WhiteMatterTexture(robust_sd, neighbour_sd, int(wm.sum()))


def real_scan_pairs(real_dir: Path) -> list[tuple[Path, Path]]:
    """(FLAIR, T1) image pairs under ``real_dir``: a folder holding ``FLAIR*.nii*`` and ``T1_*.nii*`` or ``T1.nii*``.

    Lesjak's 3D-MR-MS names them ``FLAIR_N4_...`` and ``T1_N4_...`` (``T1POST_...`` is the contrast-enhanced T1).
    Folders with masks only are skipped.
    """
    pairs = []
    for flair in sorted(Path(real_dir).rglob("FLAIR*.nii*")):
        t1 = sorted(p for p in flair.parent.glob("T1*.nii*") if p.name.startswith(("T1_", "T1.")))
        if t1:
            pairs.append((flair, t1[0]))
    return pairs


def load_on_grid(path: Path, resolution_mm: float) -> np.ndarray:
    """An image resampled linearly to isotropic ``resolution_mm`` voxels, as ``msbench predict`` hands it to a model.

    Raises:
        FileNotFoundError, ValueError: If the file is absent or cannot be read as a 3D NIfTI (the message names it).
    """
    data, affine = read_image(path)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return resample_to_shape(data, shape_for_spacing(data.shape, spacing, (resolution_mm,) * 3), order=1)


def real_texture(real_dir: Path, resolution_mm: float) -> list[WhiteMatterTexture]:
    """The white-matter texture of every real (FLAIR, T1) pair under ``real_dir`` on a ``resolution_mm`` grid."""
    return [
        white_matter_texture(load_on_grid(flair, resolution_mm), load_on_grid(t1, resolution_mm))
        for flair, t1 in real_scan_pairs(real_dir)
    ]
