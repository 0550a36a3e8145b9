"""Lesions: how many, how large, where, and how they evolve; rasterised as a continuous map.

A lesion is an irregular ellipsoid (its radius wobbles with direction) with a soft rim of
``PENUMBRA_MM``; the continuous map is the partial-volume average of that membership over each voxel,
so lesions smaller than a coarse voxel become faint blobs instead of vanishing. The truth mask is the
map at 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import reference
from ._anatomy import Anatomy

#: Width (mm) of the membership ramp at a lesion's rim.
PENUMBRA_MM = 1.6
#: Directional wobble terms per lesion (irregular outlines).
_WOBBLE_TERMS = 5
#: Location classes of isolated lesions and their shares.
_LOCATION_SHARES = {"periventricular": 0.42, "deep": 0.22, "juxtacortical": 0.22, "infratentorial": 0.14}
#: Periventricular band: white matter within this distance (mm) of the lateral ventricles.
_PERIVENTRICULAR_MM = 8.0
#: Juxtacortical band: white matter within this distance (mm) of the cortex.
_JUXTACORTICAL_MM = 3.0
#: Isolated lesion sizes are drawn between these quantiles of the reference size distribution; larger
#: lesions are built as confluent periventricular clusters, and the rim of wobbly lesions and partial
#: volume add the smallest fragments themselves.
_ISOLATED_QUANTILES = (0.04, 0.96)
#: More isolated lesions are placed than counted, since some merge with their neighbours.
_MERGE_ALLOWANCE = 1.12


@dataclass(frozen=True)
class Lesion:
    """One lesion's geometry, appearance and course over time points.

    Attributes:
        centre_mm: World position of the centre.
        radii_mm: Semi-axes before the per-time-point scale.
        rotation: 3x3 rotation whose columns are the semi-axis directions.
        wobble: (K, 5) rows of direction (3), amplitude, phase of the outline's directional wobble.
        severity: In [0, 1]; sets the contrast (brighter on FLAIR/T2, darker on T1).
        scales: Radius multiplier per time point; 0 where the lesion does not exist yet.
    """

    centre_mm: np.ndarray
    radii_mm: np.ndarray
    rotation: np.ndarray
    wobble: np.ndarray
    severity: float
    scales: np.ndarray


def _random_rotation(rng: np.random.Generator, first_axis: np.ndarray | None = None) -> np.ndarray:
    """A random rotation; with ``first_axis``, its first column points along that direction."""
    if first_axis is None:
        q, r = np.linalg.qr(rng.standard_normal((3, 3)))
        q = q * np.sign(np.diag(r))
    else:
        a = first_axis / np.linalg.norm(first_axis)
        helper = rng.standard_normal(3)
        b = helper - a * (a @ helper)
        b /= np.linalg.norm(b)
        q = np.stack([a, b, np.cross(a, b)], axis=1)
    if np.linalg.det(q) < 0:
        q[:, 2] = -q[:, 2]
    return q


def _gradient_at(volume: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Central-difference gradient of ``volume`` at an integer voxel ``index``."""
    grad = np.zeros(3)
    for axis in range(3):
        lo, hi = index.copy(), index.copy()
        lo[axis] = max(lo[axis] - 1, 0)
        hi[axis] = min(hi[axis] + 1, volume.shape[axis] - 1)
        grad[axis] = float(volume[tuple(hi)]) - float(volume[tuple(lo)])
    return grad


class _Sites:
    """Candidate lesion centres per location class, as voxel indices."""

    def __init__(self, anatomy: Anatomy) -> None:
        wm = anatomy.wm >= 0.55
        infra = anatomy.infratentorial & (anatomy.wm >= 0.4)
        pv = wm & (anatomy.dist_ventricles_mm <= _PERIVENTRICULAR_MM) & ~anatomy.infratentorial
        juxta = wm & (anatomy.dist_gm_mm <= _JUXTACORTICAL_MM) & ~pv & ~anatomy.infratentorial
        deep = wm & ~pv & ~juxta & ~anatomy.infratentorial
        self.by_class = {
            "periventricular": np.argwhere(pv),
            "deep": np.argwhere(deep),
            "juxtacortical": np.argwhere(juxta),
            "infratentorial": np.argwhere(infra),
        }
        self.anatomy = anatomy
        origin = np.array(anatomy.grid.origin_mm)
        self.to_mm = lambda idx: origin + anatomy.grid.resolution_mm * np.asarray(idx, dtype=float)

    def draw(self, rng: np.random.Generator, location: str) -> tuple[np.ndarray, np.ndarray]:
        """A random site of ``location``: (voxel index, world position with sub-voxel jitter)."""
        sites = self.by_class[location]
        if len(sites) == 0:
            sites = self.by_class["deep"]
        idx = sites[rng.integers(len(sites))]
        jitter = rng.uniform(-0.5, 0.5, size=3) * self.anatomy.grid.resolution_mm
        return idx, self.to_mm(idx) + jitter


def _wobble(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    directions = rng.standard_normal((_WOBBLE_TERMS, 3)) * rng.uniform(1.0, 3.0, size=(_WOBBLE_TERMS, 1))
    amplitudes = rng.uniform(0.0, amplitude, size=(_WOBBLE_TERMS, 1)) / np.sqrt(_WOBBLE_TERMS)
    phases = rng.uniform(0.0, 2 * np.pi, size=(_WOBBLE_TERMS, 1))
    return np.hstack([directions, amplitudes, phases])


def _radii_for_volume(rng: np.random.Generator, volume_mm3: float, elongation: float) -> np.ndarray:
    radius = (3.0 * volume_mm3 / (4.0 * np.pi)) ** (1.0 / 3.0)
    a = rng.uniform(1.0, elongation)
    b = rng.uniform(0.8, 1.15)
    return radius * np.array([a, b, 1.0 / (a * b)])


def _course(rng: np.random.Generator, n_timepoints: int, onset: int) -> np.ndarray:
    """Radius multipliers over time: stable, growing or shrinking after ``onset``."""
    scales = np.zeros(n_timepoints)
    steps = np.arange(n_timepoints - onset)
    kind = rng.choice(3, p=[0.6, 0.28, 0.12])
    rate = rng.uniform(0.03, 0.1)
    if kind == 0:
        scales[onset:] = 1.0
    elif kind == 1:
        scales[onset:] = 1.0 + rate * steps
    else:
        scales[onset:] = np.maximum(1.0 - rate * steps, 0.55)
    return scales


def _onset(rng: np.random.Generator, n_timepoints: int) -> int:
    """Time point at which a lesion appears: most exist at baseline, the others are new lesions."""
    if n_timepoints > 1 and rng.random() < 0.15:
        return int(rng.integers(1, n_timepoints))
    return 0


def _isolated_lesions(
    rng: np.random.Generator, sites: _Sites, n_lesions: int, sizes_vox: np.ndarray, n_timepoints: int
) -> list[Lesion]:
    locations = list(_LOCATION_SHARES)
    shares = np.array(list(_LOCATION_SHARES.values()))
    lesions = []
    for size in sizes_vox[:n_lesions]:
        location = locations[rng.choice(len(locations), p=shares / shares.sum())]
        idx, centre = sites.draw(rng, location)
        axis = None
        if location == "periventricular":
            # Ovoid lesions point away from the ventricles (Dawson's fingers).
            axis = _gradient_at(sites.anatomy.dist_ventricles_mm, idx)
            axis = axis if np.linalg.norm(axis) > 0 else None
        elongation = 2.0 if axis is not None else 1.5
        lesions.append(
            Lesion(
                centre_mm=centre,
                radii_mm=_radii_for_volume(rng, float(size), elongation),
                rotation=_random_rotation(rng, axis),
                wobble=_wobble(rng, 0.25),
                severity=float(rng.beta(2.0, 2.0)),
                scales=_course(rng, n_timepoints, _onset(rng, n_timepoints)),
            )
        )
    return lesions


def _confluent_cluster(rng: np.random.Generator, sites: _Sites, volume_mm3: float, n_timepoints: int) -> list[Lesion]:
    """Overlapping blobs walking along the ventricle wall, merging into one confluent lesion."""
    pv_sites = sites.by_class["periventricular"]
    near = pv_sites[sites.anatomy.dist_ventricles_mm[tuple(pv_sites.T)] <= 4.0]
    pool = near if len(near) else pv_sites
    centres_mm = sites.to_mm(pool)
    current = centres_mm[rng.integers(len(pool))]
    growth = rng.uniform(0.0, 0.05)
    severity = float(rng.beta(3.0, 3.0))
    blobs: list[Lesion] = []
    placed = 0.0
    while placed < volume_mm3:
        blob_volume = min(rng.uniform(300.0, 1500.0), max(volume_mm3 - placed, 150.0) / 0.6)
        radii = _radii_for_volume(rng, blob_volume, 1.6)
        blobs.append(
            Lesion(
                centre_mm=current + rng.uniform(-0.5, 0.5, size=3),
                radii_mm=radii,
                rotation=_random_rotation(rng),
                wobble=_wobble(rng, 0.3),
                severity=float(np.clip(severity + rng.normal(0.0, 0.12), 0.0, 1.0)),
                scales=1.0 + growth * np.arange(n_timepoints),
            )
        )
        placed += 0.6 * blob_volume  # neighbouring blobs overlap by about 40 %
        step = np.linalg.norm(centres_mm - current, axis=1)
        reach = float(radii.mean())
        ring = np.flatnonzero((step > 0.6 * reach) & (step < 1.3 * reach))
        current = centres_mm[rng.choice(ring)] if len(ring) else centres_mm[rng.integers(len(pool))]
    return blobs


def plan_lesions(anatomy: Anatomy, rng: np.random.Generator, severity_quantile: float, n_timepoints: int) -> list:
    """Draw one patient's lesions from the reference figures.

    Args:
        anatomy: The patient's anatomy.
        rng: The patient's generator.
        severity_quantile: Where the patient sits in the reference cohort (0 mildest, 1 worst); sets the
            target lesion count and load.
        n_timepoints: Number of time points.

    Returns:
        The list of :class:`Lesion`.
    """
    u_count = float(np.clip(severity_quantile + rng.normal(0.0, 0.06), 0.01, 0.99))
    u_load = float(np.clip(severity_quantile + rng.normal(0.0, 0.06), 0.01, 0.99))
    n_target = int(round(float(reference.interpolate_quantile(reference.LESION_COUNT_QUANTILES, u_count))))
    load_mm3 = 1000.0 * float(reference.interpolate_quantile(reference.LESION_LOAD_QUANTILES_ML, u_load))
    n_isolated = int(round(n_target * _MERGE_ALLOWANCE))
    quantiles = rng.uniform(*_ISOLATED_QUANTILES, size=n_isolated)
    sizes = reference.interpolate_quantile(reference.LESION_SIZE_QUANTILES_VOX, quantiles)
    if sizes.sum() > 0.9 * load_mm3:
        # Mild patients have few, small lesions: shrink the isolated lesions to fit the load.
        sizes = np.maximum(sizes * 0.9 * load_mm3 / sizes.sum(), 1.0)
    sites = _Sites(anatomy)
    lesions = _isolated_lesions(rng, sites, n_isolated, sizes, n_timepoints)
    confluent_mm3 = load_mm3 - sizes.sum()
    if confluent_mm3 > 1200.0:
        n_clusters = int(np.clip(confluent_mm3 // 5000 + 1, 1, 6))
        for share in rng.dirichlet(np.full(n_clusters, 2.0)):
            lesions += _confluent_cluster(rng, sites, share * confluent_mm3, n_timepoints)
    return lesions


def _membership(lesion: Lesion, scale: float, points: tuple[np.ndarray, ...]) -> np.ndarray:
    """Soft membership (0..1) of ``lesion`` at world ``points`` (broadcastable x, y, z arrays)."""
    rel = [p - np.float32(c) for p, c in zip(points, lesion.centre_mm, strict=True)]
    radii = (lesion.radii_mm * scale).astype(np.float32)
    rot = lesion.rotation.astype(np.float32)
    local = [sum(rot[j, k] * rel[j] for j in range(3)) for k in range(3)]
    norm = np.sqrt(local[0] ** 2 + local[1] ** 2 + local[2] ** 2) + 1e-6
    rho = np.sqrt(sum((local[k] / radii[k]) ** 2 for k in range(3)))
    outline = 1.0
    for direction_x, direction_y, direction_z, amplitude, phase in lesion.wobble.astype(np.float32):
        arg = (direction_x * local[0] + direction_y * local[1] + direction_z * local[2]) / norm
        outline = outline + amplitude * np.sin(arg + phase)
    # rho / outline is about 1 on the rim; scaling by the radius turns it into a distance in mm.
    distance_mm = (rho / outline - 1.0) * np.float32(np.exp(np.log(radii).mean()))
    return np.clip(0.5 - distance_mm / np.float32(PENUMBRA_MM), 0.0, 1.0)


def rasterize(lesions: list, time_point: int, anatomy: Anatomy) -> tuple[np.ndarray, np.ndarray]:
    """The continuous lesion map at ``time_point`` and the severity of the lesion dominating each voxel.

    Returns:
        ``(lesion_map, severity)``, float32 arrays on the anatomy's grid; lesion_map is 0 outside the
        brain parenchyma.
    """
    grid = anatomy.grid
    r = grid.resolution_mm
    # Supersample each voxel in steps of about 1 mm (0.5 mm on the 1 mm grid) for partial volume.
    fine_sub = 2 if r <= 1.5 else int(min(np.ceil(r), 4))
    origin = np.array(grid.origin_mm)
    shape = np.array(grid.shape)
    lesion_map = np.zeros(grid.shape, dtype=np.float32)
    severity = np.zeros(grid.shape, dtype=np.float32)
    for lesion in lesions:
        scale = float(lesion.scales[time_point])
        if scale <= 0:
            continue
        reach = lesion.radii_mm.max() * scale * (1.0 + np.abs(lesion.wobble[:, 3]).sum()) + PENUMBRA_MM
        lo = np.maximum(np.floor((lesion.centre_mm - reach - origin) / r).astype(int), 0)
        hi = np.minimum(np.ceil((lesion.centre_mm + reach - origin) / r).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        # Partial volume matters for small lesions; large ones are sampled at voxel centres.
        sub = fine_sub if lesion.radii_mm.min() * scale < 3.0 * r else 1
        points = []
        for axis in range(3):
            n = (hi[axis] - lo[axis]) * sub
            coords = (origin[axis] + r * (lo[axis] + (np.arange(n) + 0.5) / sub - 0.5)).astype(np.float32)
            points.append(coords.reshape([-1 if a == axis else 1 for a in range(3)]))
        fine = _membership(lesion, scale, tuple(points))
        n = hi - lo
        patch = fine.reshape(n[0], sub, n[1], sub, n[2], sub).mean(axis=(1, 3, 5)).astype(np.float32)
        window = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        stronger = patch > lesion_map[window]
        lesion_map[window][stronger] = patch[stronger]
        severity[window][stronger] = lesion.severity
    # Lesions live in parenchyma: none inside the ventricles or outside the brain.
    lesion_map *= np.clip(1.25 * (anatomy.wm + anatomy.gm), 0.0, 1.0)
    return lesion_map, severity
