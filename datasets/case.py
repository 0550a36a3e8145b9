"""One scan of one patient: image and mask files, loaded lazily onto one canonical grid.

Array axis order everywhere in msbench is that of the canonical RAS+ grid (:mod:`msbench.datasets.nifti`): the
files' voxel arrays with their axes permuted and flipped so that I grows towards Right, J towards Anterior and K
towards Superior; the axial slice axis is the last one (K) whatever the files' orientation. Images load as
C-contiguous float32, masks as C-contiguous bool. :meth:`Case.to_nifti` takes a canonical array back to the files'
own orientation and affine (how predictions are written).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ._layout import header_grid
from .nifti import (
    AFFINE_ATOL_MM,
    canonical_affine,
    canonical_shape,
    canonical_spacing,
    check_not_oblique,
    from_canonical,
    grid_difference,
    load_nifti,
    read_image,
    read_mask,
    to_canonical,
)

MODALITIES = ("flair", "t1", "t2", "pd")
"""Canonical modality names. ISBI 2015's ``mprage`` is ``t1`` here."""

DEFAULT_MODALITIES: tuple[str, ...] = ("flair",)
"""What a case loads and a method reads when no modality is named: FLAIR, the one every dataset has."""

DEFAULT_REFERENCE = "mask1"
"""The mask scored against when none is named: the first rater (the consensus where a dataset has one)."""

EXTRA_MODALITIES = ("t1post",)
"""Further canonical names: ``t1post`` is the contrast-enhanced T1 (MSSEG-2016 ``GADO``, Lesjak ``T1WKS``)."""


@dataclass(frozen=True)
class Case:
    """One scan (patient, time point) with its image files per modality and its reference masks per rater.

    Attributes:
        case_id: Unique id inside its dataset, e.g. ``training01_01``.
        patient_id: The unit of splitting, e.g. ``training01``.
        timepoint: 1-based time point, or None for cross-sectional data.
        images: Canonical modality name -> image file.
        masks: Reference name -> mask file: ``mask1``/``mask2`` (ISBI raters), ``truth`` (phantom), ``consensus``
            and ``manual1``..``manual7`` (MSSEG-2016), ``consensus`` (3D-MR-MS), ``label`` (nnU-Net raw). Empty for
            prediction-only cases (ISBI 2015 test data).
        dataset: Name of the dataset the case comes from.
        meta: Layout details, strings only: ``variant``, ``center``, ``brain_mask`` (the dataset's brain mask file,
            used by :meth:`load_brain`), ``masks`` (``label_map``: the masks are label maps whose non-zero labels
            are lesion, as nnU-Net's; otherwise every mask voxel must be 0 or 1), ...
    """

    case_id: str
    patient_id: str
    timepoint: int | None
    images: Mapping[str, Path]
    masks: Mapping[str, Path]
    dataset: str = ""
    meta: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def _grid(self) -> _Grid:
        # Masks-only cases (reference statistics) take their grid from the first mask.
        files = [*self.images.values(), *self.masks.values()]
        if not files:
            raise ValueError(f"case {self.case_id!r} has neither images nor masks; it has no grid.")
        if self.meta.get("brain_mask"):
            files.append(Path(self.meta["brain_mask"]))
        first = Path(self.images.get("flair") or files[0])
        img = load_nifti(first)
        shape = tuple(int(s) for s in img.shape[:3])
        affine = np.asarray(img.affine, dtype=np.float64)
        check_not_oblique(first, affine)
        grid = _Grid(
            path=first,
            file_shape=shape,  # type: ignore[arg-type]
            file_affine=affine,
            shape=canonical_shape(affine, shape),
            spacing_mm=canonical_spacing(affine, tuple(float(z) for z in img.header.get_zooms()[:3])),
            affine=canonical_affine(affine, shape),
        )
        # One grid in the world: files may store it in different voxel orders (each is reoriented on its own).
        for path in files:
            if Path(path) == first:
                continue
            other_shape, other_affine = header_grid(Path(path))
            diff = grid_difference(shape, affine, other_shape, other_affine)
            if diff > AFFINE_ATOL_MM:
                raise ValueError(
                    f"case {self.case_id!r}: {path} (shape {other_shape}) and {first} (shape {shape}) are not on one "
                    f"voxel grid (largest affine difference {diff:.4g} mm on the canonical grid); every image and "
                    "mask of a case must share one grid: use the co-registered files or resample them."
                )
        return grid

    @property
    def shape(self) -> tuple[int, ...]:
        """Voxel shape of the canonical (RAS+) grid every array of the case is loaded on."""
        return self._grid.shape

    @property
    def spacing_mm(self) -> tuple[float, ...]:
        """Voxel size in mm, in array axis order of the canonical grid."""
        return self._grid.spacing_mm

    @property
    def affine(self) -> np.ndarray:
        """Voxel-to-world matrix of the canonical grid (RAS+: the axial axis is the last)."""
        return self._grid.affine.copy()

    @property
    def input_affine(self) -> np.ndarray:
        """Voxel-to-world matrix of the case's files, in their own orientation (what predictions are written with)."""
        return self._grid.file_affine.copy()

    def load_image(self, modality: str = "flair") -> np.ndarray:
        """Loads one modality on the canonical grid as a C-contiguous float32 array."""
        if modality not in self.images:
            raise KeyError(
                f"case {self.case_id!r} has no {modality!r} image; it has {sorted(self.images)}. "
                "Choose the method's modalities among those (--modalities)."
            )
        _ = self._grid  # the grid checks run before any array is returned
        data, affine = read_image(self.images[modality])
        return to_canonical(data, affine)

    def load_images(self, modalities: Sequence[str] = DEFAULT_MODALITIES) -> np.ndarray:
        """Loads several modalities stacked as a (C, I, J, K) float32 array on the canonical grid."""
        return np.stack([self.load_image(m) for m in modalities])

    def load_mask(self, reference: str = DEFAULT_REFERENCE) -> np.ndarray:
        """Loads one reference mask on the canonical grid as a C-contiguous bool array (voxels must be 0 or 1)."""
        if reference not in self.masks:
            raise KeyError(f"case {self.case_id!r} has no reference {reference!r}; it has {sorted(self.masks)}.")
        _ = self._grid
        mask, _, affine = read_mask(self.masks[reference], label_map=self.meta.get("masks") == "label_map")
        return to_canonical(mask, affine)

    @property
    def brain_source(self) -> str:
        """Where :meth:`load_brain` takes the brain from: ``dataset`` (the file the dataset ships) or ``nonzero``."""
        return "dataset" if self.meta.get("brain_mask") else "nonzero"

    def load_brain(
        self, modalities: Sequence[str] = DEFAULT_MODALITIES, images: np.ndarray | None = None
    ) -> np.ndarray:
        """The brain as a C-contiguous bool array on the canonical grid: what every pre-processing step calls brain.

        The dataset's own brain mask (``meta["brain_mask"]``: Lesjak 3D-MR-MS, MSSEG-2016) when it ships one, else
        the voxels above 0 in any of ``modalities`` (the inputs are skull stripped: background is 0).

        Args:
            modalities: Input modalities whose non-zero voxels are the brain when the dataset ships no mask.
            images: Those modalities already loaded, (C, I, J, K) or (I, J, K) (saves reading them again).

        Raises:
            ValueError: The brain mask file is not 0/1 or is empty, or no voxel of the inputs is above 0.
        """
        path = self.meta.get("brain_mask")
        if path:
            _ = self._grid
            mask, _, affine = read_mask(path)
            brain = to_canonical(mask, affine)
            if not brain.any():
                raise ValueError(f"{path}: the brain mask of case {self.case_id!r} is empty.")
            return brain
        data = self.load_images(modalities) if images is None else np.asarray(images)
        brain = np.ascontiguousarray((data > 0).any(axis=0) if data.ndim == 4 else data > 0)
        if not brain.any():
            raise ValueError(
                f"case {self.case_id!r}: no voxel above 0 in {', '.join(str(self.images[m]) for m in modalities)}; "
                "msbench expects skull-stripped images with background 0 (or a dataset brain mask)."
            )
        return brain

    def to_input_orientation(self, data: np.ndarray) -> np.ndarray:
        """An (I, J, K) or (C, I, J, K) array on the canonical grid, in the voxel order of the case's files."""
        data = np.asarray(data)
        if tuple(data.shape[-3:]) != tuple(self.shape):
            raise ValueError(
                f"case {self.case_id!r}: array of shape {data.shape} is not on the case's grid {self.shape}."
            )
        return from_canonical(data, self._grid.file_affine)

    def to_nifti(self, data: np.ndarray):
        """A ``nibabel.Nifti1Image`` of a canonical-grid array, in the orientation and affine of the case's files.

        Written so, a prediction overlays the inputs in any viewer and ``msbench evaluate`` pairs it with the
        reference file as it is.
        """
        import nibabel as nib

        image = nib.Nifti1Image(self.to_input_orientation(data), self._grid.file_affine)
        image.header.set_xyzt_units("mm")
        return image

    def save_nifti(self, data: np.ndarray, path: str | Path) -> Path:
        """Writes :meth:`to_nifti` of ``data`` to ``path`` (parent folders created); returns the path."""
        import nibabel as nib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(self.to_nifti(data), str(path))
        return path


@dataclass(frozen=True, eq=False)
class ArrayCase(Case):
    """A case whose images (and brain mask) are arrays on a given grid, not files: a scan resampled in memory.

    It loads exactly what the same arrays, written to NIfTI files of ``file_affine`` (float32 images, uint8 brain
    mask) and read back as a :class:`Case`, would load: its grid is the one such a file's header gives back (affine
    and voxel size at the header's float32 precision). ``images`` name the files the arrays were made from (for
    messages); the arrays are what it loads. It has no reference masks.

    Attributes:
        arrays: Modality -> (I, J, K) float32 image on the canonical grid of ``file_affine``.
        brain: The brain mask on that grid (a dataset's own mask, resampled), or None (then the voxels above 0).
        file_affine: Voxel-to-world matrix of the arrays' grid, axis order canonical (RAS+).
    """

    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    brain: np.ndarray | None = None
    file_affine: np.ndarray = field(default_factory=lambda: np.eye(4))

    @cached_property
    def _grid(self) -> _Grid:
        # nibabel costs ~0.25 s to import (measured: half of msbench.datasets'); only a resampled scan needs it here
        import nibabel as nib

        shape = tuple(int(s) for s in next(iter(self.arrays.values())).shape)
        header = nib.Nifti1Image(np.zeros((1, 1, 1), np.float32), np.asarray(self.file_affine, np.float64)).header
        affine = np.asarray(header.get_best_affine(), dtype=np.float64)  # what a loaded file's ``affine`` is
        zooms = tuple(float(z) for z in header.get_zooms()[:3])
        return _Grid(
            path=Path(next(iter(self.images.values()), self.case_id)),
            file_shape=shape,  # type: ignore[arg-type]
            file_affine=affine,
            shape=canonical_shape(affine, shape),
            spacing_mm=canonical_spacing(affine, zooms),
            affine=canonical_affine(affine, shape),
        )

    @property
    def brain_source(self) -> str:
        return "dataset" if self.brain is not None else "nonzero"

    def load_image(self, modality: str = "flair") -> np.ndarray:
        """A copy of one modality's array (callers may change what they load, as they may a file's)."""
        if modality not in self.arrays:
            raise KeyError(
                f"case {self.case_id!r} has no {modality!r} image; it has {sorted(self.arrays)}. "
                "Choose the method's modalities among those (--modalities)."
            )
        _ = self._grid
        return np.array(self.arrays[modality], dtype=np.float32, order="C")

    def load_brain(
        self, modalities: Sequence[str] = DEFAULT_MODALITIES, images: np.ndarray | None = None
    ) -> np.ndarray:
        """The given brain mask (a copy), else :meth:`Case.load_brain` over the arrays (voxels above 0)."""
        if self.brain is None:
            return super().load_brain(modalities, images)
        if not self.brain.any():
            raise ValueError(f"the brain mask of case {self.case_id!r} is empty.")
        return np.array(self.brain, dtype=bool, order="C")


@dataclass(frozen=True)
class _Grid:
    """The case's files' grid and the canonical grid made from it."""

    path: Path
    file_shape: tuple[int, int, int]
    file_affine: np.ndarray
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    affine: np.ndarray
