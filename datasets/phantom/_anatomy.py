"""Per-patient anatomy: nilearn's MNI152 tissue maps under a random smooth deformation.

The MNI152 (ICBM 2009a) templates ship inside nilearn's package data, so no network is needed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cc3d
import edt
import numpy as np
from scipy import ndimage as ndi

from ._grid import Grid

#: Lateral ventricles lie inside this MNI box (mm): x, y, z ranges.
_VENTRICLE_BOX_MM = ((-35.0, 35.0), (-50.0, 40.0), (-10.0, 35.0))
#: Infratentorial region: below this MNI z (mm), and either the cerebellum (behind ``_CEREBELLUM_Y_MM``)
#: or the brainstem (within ``_BRAINSTEM_HALF_WIDTH_MM`` of the midline, behind ``_BRAINSTEM_Y_MM``).
_INFRATENTORIAL_Z_MM = -18.0
_CEREBELLUM_Y_MM = -40.0
_BRAINSTEM_Y_MM = -8.0
_BRAINSTEM_HALF_WIDTH_MM = 15.0


@dataclass(frozen=True)
class Template:
    """MNI152 maps on the template's own 1 mm grid (pre-smoothed for coarse output grids)."""

    gm: np.ndarray
    wm: np.ndarray
    brain: np.ndarray
    ventricles: np.ndarray
    origin_mm: tuple[float, float, float]


@dataclass(frozen=True)
class Anatomy:
    """One patient's anatomy on the phantom grid; fractions are float32 in [0, 1].

    Attributes:
        grid: The output grid.
        gm: Grey-matter fraction.
        wm: White-matter fraction.
        csf: Cerebrospinal-fluid fraction (brain minus GM minus WM).
        brain: Brain fraction; the images are zero where it is below 0.5 (skull-stripped).
        ventricles: Lateral-ventricle mask (bool).
        dist_ventricles_mm: Distance to the nearest ventricle voxel.
        dist_gm_mm: Distance to the nearest voxel that is mostly grey matter.
        infratentorial: Brainstem and cerebellum region (bool).
    """

    grid: Grid
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray
    ventricles: np.ndarray
    dist_ventricles_mm: np.ndarray
    dist_gm_mm: np.ndarray
    infratentorial: np.ndarray

    @property
    def brain_mask(self) -> np.ndarray:
        """Voxels kept by skull stripping."""
        return self.brain >= 0.5


def _template_ventricles(csf: np.ndarray, origin_mm: tuple[float, float, float]) -> np.ndarray:
    """Lateral ventricles: the largest CSF component inside the central MNI box."""
    box = np.zeros(csf.shape, dtype=bool)
    sl = tuple(slice(int(lo - o), int(hi - o) + 1) for (lo, hi), o in zip(_VENTRICLE_BOX_MM, origin_mm, strict=True))
    box[sl] = True
    candidates = (csf > 0.6) & box
    labels = cc3d.connected_components(candidates, connectivity=6)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    # Both lateral ventricles are far larger than any sulcal CSF pocket in the box.
    keep = np.flatnonzero(sizes >= 0.25 * sizes.max())
    return np.isin(labels, keep)


@functools.lru_cache(maxsize=4)
def load_template(resolution_mm: float) -> Template:
    """Load nilearn's MNI152 maps, smoothed against aliasing when sampled every ``resolution_mm``.

    Args:
        resolution_mm: The output voxel size the maps will be sampled at.
    """
    from nilearn import datasets  # heavy import, only needed here

    gm_img = datasets.load_mni152_gm_template(resolution=1)
    gm = np.asarray(gm_img.get_fdata(dtype=np.float32))
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32))
    brain = np.asarray(datasets.load_mni152_brain_mask(resolution=1).get_fdata(dtype=np.float32))
    affine = gm_img.affine
    if not np.allclose(affine[:3, :3], np.eye(3)):
        raise ValueError(f"expected nilearn's MNI152 templates on a 1 mm RAS grid, got affine {affine.tolist()}")
    origin = tuple(float(v) for v in affine[:3, 3])
    gm = np.clip(gm, 0.0, 1.0) * brain
    wm = np.clip(wm, 0.0, 1.0) * brain
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    ventricles = _template_ventricles(csf, origin).astype(np.float32)  # type: ignore[arg-type]
    if resolution_mm > 1.0:
        sigma = 0.42 * resolution_mm  # FWHM of about one output voxel
        gm, wm, brain, ventricles = (ndi.gaussian_filter(a, sigma, truncate=2.5) for a in (gm, wm, brain, ventricles))
    return Template(gm=gm, wm=wm, brain=brain, ventricles=ventricles, origin_mm=origin)  # type: ignore[arg-type]


def _smooth_displacement(rng: np.random.Generator, axes: tuple[np.ndarray, ...], amplitude_mm: float) -> list:
    """Three displacement components, each a sum of low-frequency separable sinusoids (mm)."""
    components = []
    for _ in range(3):
        field = np.zeros((len(axes[0]), len(axes[1]), len(axes[2])), dtype=np.float32)
        for _term in range(3):
            wavelengths = rng.uniform(60.0, 160.0, size=3)
            phases = rng.uniform(0.0, 2 * np.pi, size=3)
            factors = [
                np.sin(2 * np.pi * a / w + p).astype(np.float32)
                for a, w, p in zip(axes, wavelengths, phases, strict=True)
            ]
            field += (amplitude_mm / 2.0) * factors[0][:, None, None] * factors[1][None, :, None] * factors[2]
        components.append(field)
    return components


def build_anatomy(grid: Grid, rng: np.random.Generator) -> Anatomy:
    """Warp the MNI152 maps with a random small affine plus elastic deformation onto ``grid``.

    Args:
        grid: Output grid.
        rng: The patient's generator (consumed deterministically).
    """
    tpl = load_template(grid.resolution_mm)
    axes = grid.axes_mm()
    centre = np.array([0.0, -18.0, 15.0])
    angles = np.deg2rad(rng.uniform(-4.0, 4.0, size=3))
    scale = rng.uniform(0.94, 1.06, size=3)
    shift = rng.uniform(-2.0, 2.0, size=3)
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rot = (
        np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    )
    matrix = (rot * scale[None, :]).astype(np.float32)
    displacement = _smooth_displacement(rng, axes, amplitude_mm=3.0)
    rel = [a - c for a, c in zip(axes, centre.astype(np.float32), strict=True)]
    coords = np.empty((3, *grid.shape), dtype=np.float32)
    for i in range(3):
        coords[i] = (
            matrix[i, 0] * rel[0][:, None, None]
            + matrix[i, 1] * rel[1][None, :, None]
            + matrix[i, 2] * rel[2][None, None, :]
            + (centre[i] + shift[i] - tpl.origin_mm[i])
            + displacement[i]
        )
    del displacement

    brain, gm, wm, ventricle_fraction = (
        np.clip(ndi.map_coordinates(v, coords, order=1, mode="constant", cval=0.0), 0.0, 1.0)
        for v in (tpl.brain, tpl.gm, tpl.wm, tpl.ventricles)
    )
    del coords
    gm = np.minimum(gm, brain)
    wm = np.minimum(wm, brain - gm)
    ventricles = ventricle_fraction >= 0.5
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    spacing = (grid.resolution_mm,) * 3
    dist_ventricles = edt.edt(~ventricles, anisotropy=spacing, black_border=False).astype(np.float32)
    dist_gm = edt.edt(~(gm >= 0.5), anisotropy=spacing, black_border=False).astype(np.float32)
    x, y, z = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    behind = (y < _CEREBELLUM_Y_MM) | ((np.abs(x) < _BRAINSTEM_HALF_WIDTH_MM) & (y < _BRAINSTEM_Y_MM))
    infratentorial = np.broadcast_to((z < _INFRATENTORIAL_Z_MM) & behind, grid.shape) & (brain >= 0.5)
    return Anatomy(
        grid=grid,
        gm=gm,
        wm=wm,
        csf=csf,
        brain=brain,
        ventricles=ventricles,
        dist_ventricles_mm=dist_ventricles,
        dist_gm_mm=dist_gm,
        infratentorial=np.ascontiguousarray(infratentorial),
    )
