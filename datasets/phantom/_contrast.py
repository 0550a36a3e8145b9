"""MR contrasts from tissue fractions and the lesion map: FLAIR, MPRAGE (T1), T2 and PD.

Intensities are relative to white matter (WM = 1, scaled to ``WM_LEVEL``); lesions take a factor of the
local white-matter intensity that grows with their severity. A smooth bias field and Rician noise follow;
outside the brain the images are zero, as in ISBI 2015's skull-stripped preprocessed images.

Grey matter and CSF levels are not fixed: each patient's scanner protocol (:class:`Protocol`) draws them from
ranges, as inversion and echo times differ between sites, so a model cannot learn one tissue level as "normal".
Lesion contrast stays relative to local white matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ._anatomy import Anatomy

#: The ISBI 2015 contrasts, in file-name spelling.
CONTRASTS: tuple[str, ...] = ("flair", "mprage", "pd", "t2")
#: White-matter intensity in the written images.
WM_LEVEL = 500.0
#: Peak log-amplitude of each 1D term of the residual bias field (the ISBI images are N4-corrected).
BIAS_AMPLITUDE = 0.09


@dataclass(frozen=True)
class Contrast:
    """Relative tissue intensities of one contrast.

    Attributes:
        csf: Range of CSF / WM over patients (FLAIR nulls CSF to a protocol-dependent residue).
        gm: Range of GM / WM over patients.
        lesion_base: Lesion / local WM for a lesion of severity 0.
        lesion_gain: Added to ``lesion_base`` at severity 1.
        periventricular_gain: Multiplier on the patient's diffuse periventricular hyperintensity.
        noise: Rician noise sigma / WM.
        slice_blur_mm: Through-plane (z) Gaussian blur sigma, mimicking thick acquired slices.
    """

    csf: tuple[float, float]
    gm: tuple[float, float]
    lesion_base: float
    lesion_gain: float
    periventricular_gain: float
    noise: float
    slice_blur_mm: float = 0.0


CONTRAST_TABLE: dict[str, Contrast] = {
    # ISBI 2015's FLAIR was acquired with 3 mm slices, hence the through-plane blur.
    # FLAIR's GM level is the brain's, not the template's: the MNI152 average blurs the cortex into partial volume.
    "flair": Contrast(
        csf=(0.04, 0.22),
        gm=(1.18, 1.48),
        lesion_base=1.14,
        lesion_gain=0.52,
        periventricular_gain=1.0,
        noise=0.08,
        slice_blur_mm=0.9,
    ),
    "mprage": Contrast(
        csf=(0.2, 0.3), gm=(0.58, 0.7), lesion_base=0.9, lesion_gain=-0.3, periventricular_gain=0.0, noise=0.03
    ),
    "pd": Contrast(
        csf=(1.15, 1.35), gm=(1.12, 1.24), lesion_base=1.12, lesion_gain=0.3, periventricular_gain=0.5, noise=0.035
    ),
    "t2": Contrast(
        csf=(2.1, 2.7), gm=(1.25, 1.45), lesion_base=1.4, lesion_gain=0.8, periventricular_gain=1.2, noise=0.035
    ),
}


@dataclass(frozen=True)
class Protocol:
    """One patient's scanner protocol: the CSF and GM level (relative to WM) of each contrast.

    Attributes:
        csf: Contrast name -> CSF / WM.
        gm: Contrast name -> GM / WM.
    """

    csf: dict[str, float]
    gm: dict[str, float]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Protocol:
        """Levels uniform within each contrast's ranges in :data:`CONTRAST_TABLE`."""
        csf, gm = {}, {}
        for name in CONTRASTS:
            c = CONTRAST_TABLE[name]
            csf[name] = float(rng.uniform(*c.csf))
            gm[name] = float(rng.uniform(*c.gm))
        return cls(csf, gm)


@dataclass(frozen=True)
class PatientLook:
    """Per-patient appearance shared by all time points (anatomy and its normal variants are fixed).

    Attributes:
        periventricular_hyperintensity: Peak relative brightening of normal white matter next to the
            ventricles on FLAIR (caps and bands), which lesions there must be told apart from.
        texture: (K, 5) rows of wave vector (3, rad/mm), amplitude and phase of white-matter texture.
        lesion_texture: The same for the finer texture of lesion signal (lesions are not uniform).
    """

    periventricular_hyperintensity: float
    texture: np.ndarray
    lesion_texture: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator) -> PatientLook:
        periventricular = float(rng.uniform(0.08, 0.18))
        texture = _waves(rng, wavelength_mm=(12.0, 40.0), amplitude=(0.01, 0.025))
        lesion_texture = _waves(rng, wavelength_mm=(3.0, 10.0), amplitude=(0.08, 0.16))
        return cls(periventricular, texture, lesion_texture)


def _waves(rng: np.random.Generator, wavelength_mm: tuple[float, float], amplitude: tuple[float, float]) -> np.ndarray:
    """Six plane waves in random directions: rows of wave vector (rad/mm), amplitude, phase."""
    n = 6
    directions = rng.standard_normal((n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wave = directions * (2 * np.pi / rng.uniform(*wavelength_mm, size=(n, 1)))
    return np.hstack([wave, rng.uniform(*amplitude, size=(n, 1)), rng.uniform(0.0, 2 * np.pi, size=(n, 1))])


def _wave_field(waves: np.ndarray, axes: tuple[np.ndarray, ...], index: tuple[np.ndarray, ...]) -> np.ndarray:
    """1 + the sum of ``waves`` at voxels ``index`` (float32)."""
    field = np.ones(len(index[0]), dtype=np.float32)
    for kx, ky, kz, amplitude, phase in waves.astype(np.float32):
        profiles = [k * a for k, a in zip((kx, ky, kz), axes, strict=True)]
        field += amplitude * np.sin(profiles[0][index[0]] + profiles[1][index[1]] + (profiles[2] + phase)[index[2]])
    return field


def _separable_bias(
    rng: np.random.Generator, axes: tuple[np.ndarray, ...], index: tuple[np.ndarray, ...], amplitude: float
) -> np.ndarray:
    """A multiplicative bias field (exp of smooth 1D profiles along x, y and z) at voxels ``index``."""
    profiles = []
    for a in axes:
        span = float(a.max() - a.min()) or 1.0
        t = (a - a.min()) / span
        profile = np.zeros_like(a)
        for k in (1, 2):
            profile += rng.uniform(-amplitude, amplitude) / k * np.cos(np.pi * k * t + rng.uniform(0, np.pi))
        profiles.append(profile.astype(np.float32))
    return np.exp(profiles[0][index[0]] + profiles[1][index[1]] + profiles[2][index[2]])


@dataclass(frozen=True)
class Canvas:
    """A patient's fixed per-voxel quantities, kept only inside the brain mask (flat float32 vectors).

    Attributes:
        inside: Brain mask on the grid.
        flat: Flat (C-order) indices of ``inside``.
        index: The same as three per-axis index arrays.
        gm: Grey-matter share of the brain tissue in each voxel.
        wm: White-matter share.
        csf: CSF share.
        brain: Brain fraction (partial volume at the brain's edge).
        texture: White-matter texture (1 + small waves).
        lesion_texture: Texture of lesion signal.
        caps: Closeness to the ventricles (1 at the wall), times the white-matter share.
    """

    inside: np.ndarray
    flat: np.ndarray
    index: tuple[np.ndarray, np.ndarray, np.ndarray]
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray
    texture: np.ndarray
    lesion_texture: np.ndarray
    caps: np.ndarray

    @classmethod
    def build(cls, anatomy: Anatomy, look: PatientLook) -> Canvas:
        inside = anatomy.brain_mask
        flat = np.flatnonzero(inside)
        i, j, k = np.unravel_index(flat, inside.shape)
        index = (i, j, k)
        brain = anatomy.brain.ravel()[flat]
        gm = anatomy.gm.ravel()[flat] / brain
        wm = anatomy.wm.ravel()[flat] / brain
        csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
        axes = anatomy.grid.axes_mm()
        texture = _wave_field(look.texture, axes, index)
        lesion_texture = _wave_field(look.lesion_texture, axes, index)
        caps = np.exp(-anatomy.dist_ventricles_mm.ravel()[flat] / np.float32(5.0)) * wm
        return cls(inside, flat, index, gm, wm, csf, brain, texture, lesion_texture, caps)


def synthesize(
    anatomy: Anatomy,
    canvas: Canvas,
    look: PatientLook,
    protocol: Protocol,
    lesion_map: np.ndarray,
    severity: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Render the four contrasts of one scan.

    Args:
        anatomy: The patient's anatomy.
        canvas: The patient's fixed per-voxel quantities.
        look: The patient's fixed appearance.
        protocol: The patient's tissue levels.
        lesion_map: Continuous lesion map in [0, 1].
        severity: Severity of the dominant lesion per voxel.
        rng: The scan's generator (bias field and noise differ between time points).

    Returns:
        Contrast name -> float32 image, zero outside the brain mask.
    """
    grid = anatomy.grid
    axes = grid.axes_mm()
    lesion = lesion_map.ravel()[canvas.flat]
    sev = severity.ravel()[canvas.flat]
    images = {}
    for name in CONTRASTS:
        c = CONTRAST_TABLE[name]
        local_wm = canvas.texture * (
            1.0 + np.float32(c.periventricular_gain * look.periventricular_hyperintensity) * canvas.caps
        )
        csf, gm = np.float32(protocol.csf[name]), np.float32(protocol.gm[name])
        tissue = canvas.csf * csf + canvas.gm * gm + canvas.wm * local_wm
        contrast = np.float32(c.lesion_base) + np.float32(c.lesion_gain) * sev - 1.0
        lesion_value = (1.0 + contrast * canvas.lesion_texture) * local_wm
        values = ((1.0 - lesion) * tissue + lesion * lesion_value) * canvas.brain
        bias = _separable_bias(rng, axes, canvas.index, amplitude=BIAS_AMPLITUDE)
        values *= bias * np.float32(WM_LEVEL * rng.uniform(0.92, 1.08))
        if c.slice_blur_mm > 0:
            volume = np.zeros(grid.shape, dtype=np.float32)
            volume.ravel()[canvas.flat] = values
            volume = ndi.gaussian_filter1d(volume, c.slice_blur_mm / grid.resolution_mm, axis=2, truncate=3.0)
            values = volume.ravel()[canvas.flat]
        sigma = np.float32(c.noise * WM_LEVEL)
        real = values + sigma * rng.standard_normal(values.shape, dtype=np.float32)
        imag = sigma * rng.standard_normal(values.shape, dtype=np.float32)
        image = np.zeros(grid.shape, dtype=np.float32)
        image.ravel()[canvas.flat] = np.sqrt(real * real + imag * imag)
        images[name] = image
    return images
