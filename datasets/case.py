"""One scan of one patient: image and mask files, loaded lazily.

Array axis order everywhere in msbench is the NIfTI voxel order (i, j, k) as nibabel returns it; the axial slice axis
is the last one (k). Images load as C-contiguous float32, masks as C-contiguous bool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

MODALITIES = ("flair", "t1", "t2", "pd")
"""Canonical modality names. ISBI 2015's ``mprage`` is ``t1`` here."""

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
        meta: Layout details (``variant``, ``center``, ``brain_mask`` path, ...), strings only.
    """

    case_id: str
    patient_id: str
    timepoint: int | None
    images: Mapping[str, Path]
    masks: Mapping[str, Path]
    dataset: str = ""
    meta: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def _header(self) -> tuple[tuple[int, ...], tuple[float, ...], np.ndarray]:
        import nibabel as nib

        # Masks-only cases (reference statistics) take their grid from the first mask.
        files = [*self.images.values(), *self.masks.values()]
        if not files:
            raise ValueError(f"case {self.case_id!r} has neither images nor masks; it has no grid.")
        path = self.images.get("flair") or files[0]
        img = nib.load(str(path))
        shape = tuple(int(s) for s in img.shape[:3])
        spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
        return shape, spacing, np.asarray(img.affine, dtype=np.float64)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._header[0]

    @property
    def spacing_mm(self) -> tuple[float, ...]:
        """Voxel size in mm, in array axis order."""
        return self._header[1]

    @property
    def affine(self) -> np.ndarray:
        return self._header[2]

    def load_image(self, modality: str = "flair") -> np.ndarray:
        """Loads one modality as a C-contiguous float32 array."""
        if modality not in self.images:
            raise KeyError(
                f"case {self.case_id!r} has no {modality!r} image; it has {sorted(self.images)}. "
                "Choose the method's modalities among those (--modalities)."
            )
        return _read_float32(self.images[modality])

    def load_images(self, modalities: Sequence[str] = ("flair",)) -> np.ndarray:
        """Loads several modalities stacked as a (C, I, J, K) float32 array."""
        return np.stack([self.load_image(m) for m in modalities])

    def load_mask(self, reference: str = "mask1") -> np.ndarray:
        """Loads one reference mask as a C-contiguous bool array."""
        if reference not in self.masks:
            raise KeyError(f"case {self.case_id!r} has no reference {reference!r}; it has {sorted(self.masks)}.")
        path = self.masks[reference]
        data = _read_float32(path)
        if np.isnan(data).any():
            raise ValueError(f"{path}: mask contains NaN values; expected 0/1 labels.")
        return np.ascontiguousarray(data > 0.5)


def _read_float32(path: Path) -> np.ndarray:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = img.get_fdata(dtype=np.float32)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise ValueError(f"{path}: cannot read as NIfTI ({err}).") from err
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume, got shape {data.shape}.")
    return np.ascontiguousarray(data)
