"""The phantom's voxel grid: the ISBI 2015 MNI grid at 1 mm, coarser on request.

Arrays are indexed ``[x, y, z]`` (RAS+ world axes, the NIfTI voxel order), ``z`` is axial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Shape of the ISBI 2015 preprocessed images (1 mm MNI space).
ISBI_SHAPE: tuple[int, int, int] = (181, 217, 181)
#: World position (mm) of the centre of voxel (0, 0, 0) on the 1 mm ISBI grid.
ISBI_ORIGIN_MM: tuple[float, float, float] = (-90.0, -126.0, -72.0)


@dataclass(frozen=True)
class Grid:
    """A regular RAS+ grid covering the ISBI 2015 field of view.

    Attributes:
        resolution_mm: Isotropic voxel size in mm.
        shape: Number of voxels along x, y, z.
        origin_mm: World position (mm) of the centre of voxel (0, 0, 0).
    """

    resolution_mm: float
    shape: tuple[int, int, int]
    origin_mm: tuple[float, float, float]

    @classmethod
    def for_resolution(cls, resolution_mm: float) -> Grid:
        """Build the grid covering the ISBI field of view with voxels of ``resolution_mm``.

        Args:
            resolution_mm: Isotropic voxel size in mm, at least 1.

        Raises:
            ValueError: If ``resolution_mm`` is not a finite number in [1, 8].
        """
        if not (isinstance(resolution_mm, int | float) and math.isfinite(resolution_mm)):
            raise TypeError(f"resolution_mm must be a number, got {resolution_mm!r}")
        if not 1.0 <= resolution_mm <= 8.0:
            raise ValueError(
                f"resolution_mm must lie in [1, 8] mm (1 is the ISBI grid), got {resolution_mm}; "
                "pass e.g. 1.0 for full resolution or 3.0 for a quick phantom"
            )
        r = float(resolution_mm)
        shape = tuple(int(math.ceil(n / r)) for n in ISBI_SHAPE)
        # A coarse voxel covers the first r fine voxels, so its centre sits (r - 1) / 2 mm further in.
        origin = tuple(o + (r - 1.0) / 2.0 for o in ISBI_ORIGIN_MM)
        return cls(resolution_mm=r, shape=shape, origin_mm=origin)  # type: ignore[arg-type]

    @property
    def affine(self) -> np.ndarray:
        """The 4x4 voxel-to-world affine (float64)."""
        aff = np.diag([self.resolution_mm] * 3 + [1.0])
        aff[:3, 3] = self.origin_mm
        return aff

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        return self.resolution_mm**3 / 1000.0

    def axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World coordinates (mm, float32) of the voxel centres along x, y and z."""
        return tuple(  # type: ignore[return-value]
            (o + self.resolution_mm * np.arange(n)).astype(np.float32)
            for o, n in zip(self.origin_mm, self.shape, strict=True)
        )
