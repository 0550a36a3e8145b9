"""Realism report: the phantom's lesion and contrast statistics next to the reference figures.

When real consensus masks are at hand (``<repo>/../shared/data/open_ms_data/cross_sectional/MNI``), their
lesion statistics are computed here too, and the lesion sizes are compared with a two-sample KS statistic. Real
scans with images (a FLAIR and a T1 in one folder) also give the texture of normal white matter on the phantom's
grid (:mod:`.texture`), label-free, beside the phantom's.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import edt
import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

from msbench.datasets.nifti import read_image
from msbench.datasets.preprocessing import resample_to_shape, shape_for_spacing

from ..masks import dice_score
from . import reference, stats, texture
from ._anatomy import load_template
from ._grid import Grid
from ._raters import truth_mask
from .generate import GENERATOR_VERSION, SUMMARY_NAME, case_files, generate_synth_ms, patient_anatomy, timepoints

#: Lesion volume closer than this to the lateral ventricles counts as periventricular.
PERIVENTRICULAR_MM = 5.0
#: FLAIR contrast is measured in white matter of at least this fraction.
_WM_FRACTION = 0.9
_REAL_MASK_HINTS = ("gold", "mask", "consensus", "seg")


def default_real_dir() -> Path:
    """``<repo>/../shared/data/open_ms_data/cross_sectional/MNI`` (may not exist)."""
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data" / "open_ms_data" / "cross_sectional" / "MNI"


def default_cache_dir() -> Path:
    """Where generated phantoms are cached: ``$MSBENCH_CACHE`` or ``~/.cache/msbench``."""
    return Path(os.environ.get("MSBENCH_CACHE") or Path.home() / ".cache" / "msbench").expanduser()


def default_phantom_dir(seed: int = 0, resolution_mm: float = 1.0, n_patients: int = 5) -> Path:
    """Cache folder of the phantom with these parameters, named after them and the generator version.

    A new generator version gets a new folder, so an outdated cache is never mistaken for the current one.
    """
    patients = "" if n_patients == 5 else f"-n{n_patients}"
    return default_cache_dir() / "synth-ms" / f"seed{seed}-{resolution_mm:g}mm{patients}-v{GENERATOR_VERSION}"


def generate_cached(seed: int = 0, resolution_mm: float = 1.0, *, progress: bool = True) -> Path:
    """The phantom of ``seed`` and grid in the cache (:func:`default_phantom_dir`), generated there on first use.

    Before generating it says where and how much on standard error (2.7 GB at 1 mm, about 100 MB at 3 mm): the
    cache lies outside any folder the user named.
    """
    return generate_synth_ms(
        default_phantom_dir(seed, resolution_mm),
        seed=seed,
        resolution_mm=resolution_mm,
        progress=progress,
        announce=_announce_cache,
    )


def _announce_cache(out_dir: Path, size: int) -> None:
    print(
        f"writing the synth-ms phantom (about {size / 1e9:.1f} GB) to {out_dir}; set MSBENCH_CACHE to move it",
        file=sys.stderr,
        flush=True,
    )


@dataclass(frozen=True)
class Row:
    """One line of the report: a statistic for the phantom, the reference, and real masks."""

    statistic: str
    phantom: str
    reference: str
    real: str = "n/a"


@dataclass(frozen=True)
class RealismReport:
    """The phantom's statistics next to the reference figures (and real masks when present).

    Attributes:
        root: The phantom's folder.
        real_dir: Folder of the real masks compared with, or None.
        rows: The table.
        phantom_sizes_vox: Phantom lesion sizes in 1 mm voxels (truth masks, all scans).
        real_sizes_vox: Real lesion sizes in 1 mm voxels, or None.
        case: The case whose FLAIR slice is shown.
        flair_slice: Mid-axial FLAIR slice of ``case`` (x, y).
        mask_slice: Its truth-mask slice (x, y).
    """

    root: Path
    real_dir: Path | None
    rows: tuple[Row, ...]
    phantom_sizes_vox: np.ndarray = field(repr=False)
    real_sizes_vox: np.ndarray | None = field(repr=False)
    case: str
    flair_slice: np.ndarray = field(repr=False)
    mask_slice: np.ndarray = field(repr=False)

    def to_text(self) -> str:
        """The table as aligned plain text."""
        header = Row("statistic", "phantom", "reference (spec)", "real (masks; images)")
        table = [header, *self.rows]
        widths = [max(len(getattr(r, f)) for r in table) for f in ("statistic", "phantom", "reference", "real")]
        lines = [f"synth-ms realism report: {self.root}"]
        lines.append(f"real data: {self.real_dir if self.real_dir else 'absent (real column n/a)'}")
        for i, r in enumerate(table):
            cells = (r.statistic, r.phantom, r.reference, r.real)
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines) + "\n"

    def write_png(self, path: Path) -> Path:
        """Write the mid-axial FLAIR slice with its mask outline and the lesion-size histograms.

        Args:
            path: Destination ``.png``; parent folders are created.

        Returns:
            ``path``.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, (ax_img, ax_hist) = plt.subplots(1, 2, figsize=(12, 5.5))
        ax_img.imshow(self.flair_slice.T, origin="lower", cmap="gray")
        if self.mask_slice.any():
            ax_img.contour(self.mask_slice.T.astype(float), levels=[0.5], colors="red", linewidths=0.8)
        ax_img.set_title(f"{self.case} FLAIR, mid-axial, truth outline")
        ax_img.axis("off")
        bins = np.logspace(0, np.log10(max(self.phantom_sizes_vox.max(initial=10), 10) * 1.5), 40)
        samples = [("phantom (truth)", self.phantom_sizes_vox)]
        if self.real_sizes_vox is not None:
            samples.append(("real masks", self.real_sizes_vox))
        for label, sizes in samples:
            # Share of lesions per logarithmic bin, so both samples read on one scale whatever their count.
            weights = np.full(sizes.size, 1.0 / max(sizes.size, 1))
            ax_hist.hist(sizes, bins=bins, weights=weights, alpha=0.6, label=f"{label}, n={sizes.size}")
        for q, v in reference.LESION_SIZE_QUANTILES_VOX[1:-1]:
            ax_hist.axvline(v, color="k", lw=0.6, ls=":")
            ax_hist.text(v, ax_hist.get_ylim()[1] * 0.95, f"p{round(q * 100)}", fontsize=7, rotation=90, va="top")
        ax_hist.set_xscale("log")
        ax_hist.set_xlabel("lesion size (1 mm voxels)")
        ax_hist.set_ylabel("share of lesions")
        ax_hist.set_title("lesion sizes (dotted: spec percentiles)")
        ax_hist.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def _fmt_range(values: Sequence[float] | np.ndarray, digits: int = 1) -> str:
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return "n/a"
    if array.size == 1:
        return f"{array[0]:.{digits}f}"
    return f"{np.median(array):.{digits}f} ({array.min():.{digits}f}-{array.max():.{digits}f})"


def _size_rows(sizes: np.ndarray) -> dict[str, str]:
    if sizes.size == 0:
        return {"percentiles": "n/a", "under10": "n/a", "over1000": "n/a"}
    pct = np.percentile(sizes, [10, 25, 50, 75, 90, 99])
    return {
        "percentiles": " / ".join(f"{p:.0f}" for p in pct),
        "under10": f"{100 * np.mean(sizes < 10):.0f} %",
        "over1000": f"{100 * sizes[sizes > 1000].sum() / max(sizes.sum(), 1):.0f} %",
    }


def ks_to_reference_percentiles(sizes: np.ndarray) -> float:
    """KS-type distance to the spec's size percentiles, fair to integer sizes.

    For each spec percentile ``(q, v)``, the phantom's ECDF jumps from ``F(v-)`` to ``F(v)`` at ``v``;
    the distance is how far ``q`` lies outside that interval, and the maximum over percentiles is
    returned.
    """
    sizes = np.sort(np.asarray(sizes, dtype=float))
    if sizes.size == 0:
        return float("nan")
    worst = 0.0
    for q, v in reference.LESION_SIZE_QUANTILES_VOX[1:-1]:
        below = np.searchsorted(sizes, v, side="left") / sizes.size
        upto = np.searchsorted(sizes, v, side="right") / sizes.size
        worst = max(worst, below - q, q - upto, 0.0)
    return worst


@dataclass
class _PhantomStats:
    n_lesions: list[int] = field(default_factory=list)
    load_ml: list[float] = field(default_factory=list)
    sizes: list[np.ndarray] = field(default_factory=list)
    inter_rater: list[float] = field(default_factory=list)
    oracle_low: list[float] = field(default_factory=list)
    oracle_high: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    p10_over_p90: list[float] = field(default_factory=list)
    periventricular: list[float] = field(default_factory=list)
    wm_texture: list[texture.WhiteMatterTexture] = field(default_factory=list)
    best_case: tuple[float, str, np.ndarray, np.ndarray] | None = None


def _load(path: Path) -> np.ndarray:
    return np.asarray(_spatial_image(path).dataobj)


def _spatial_image(path: Path) -> SpatialImage:
    """``nib.load`` narrowed to what it returns for every file read here (NIfTI); anything else is refused."""
    image = nib.load(path)
    if not isinstance(image, SpatialImage):
        raise ValueError(f"{path}: expected a NIfTI volume, got a {type(image).__name__}.")
    return image


def _mid_axial(flair: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The axial slice in the middle third with the most lesion."""
    nz = flair.shape[2]
    lo, hi = nz // 3, 2 * nz // 3
    z = lo + int(np.argmax(truth[:, :, lo:hi].sum(axis=(0, 1))))
    return flair[:, :, z], truth[:, :, z]


def _phantom_stats(root: Path, summary: dict) -> _PhantomStats:
    grid = Grid.for_resolution(summary["resolution_mm"])
    out = _PhantomStats()
    voxel_1mm = grid.resolution_mm**3
    for p, n_tp in enumerate(timepoints(summary["n_patients"]), start=1):
        anatomy = patient_anatomy(summary["seed"], p, grid)
        wm = anatomy.wm >= _WM_FRACTION
        near_ventricles = anatomy.dist_ventricles_mm <= PERIVENTRICULAR_MM
        for t in range(1, n_tp + 1):
            files = case_files(root, p, t)
            flair = _load(files["flair"]).astype(np.float32)
            truth = _load(files["truth"]) > 0
            sizes = stats.lesion_sizes(truth)
            load_ml = float(truth.sum()) * grid.voxel_volume_ml
            out.n_lesions.append(int(sizes.size))
            out.load_ml.append(load_ml)
            out.sizes.append(sizes * voxel_1mm)
            out.inter_rater.append(dice_score(_load(files["mask1"]) > 0, _load(files["mask2"]) > 0))
            out.wm_texture.append(texture.white_matter_texture(flair, _load(files["mprage"])))
            oracle = stats.oracle_threshold_dice(flair, truth, anatomy.brain_mask)
            if load_ml < 3.0:
                out.oracle_low.append(oracle)
            elif load_ml >= 8.0:
                out.oracle_high.append(oracle)
            if truth.any():
                lesion_values = flair[truth]
                nawm_values = flair[wm & ~truth]
                out.ratio.append(float(np.median(lesion_values) / np.median(nawm_values)))
                out.p10_over_p90.append(float(np.percentile(lesion_values, 10) / np.percentile(nawm_values, 90)))
                out.periventricular.append(float((truth & near_ventricles).sum() / truth.sum()))
            if out.best_case is None or load_ml > out.best_case[0]:
                out.best_case = (load_ml, f"training{p:02d}_{t:02d}", *_mid_axial(flair, truth))
    return out


@dataclass
class _RealStats:
    n_lesions: list[int] = field(default_factory=list)
    load_ml: list[float] = field(default_factory=list)
    sizes: list[np.ndarray] = field(default_factory=list)
    periventricular: list[float] = field(default_factory=list)
    wm_texture: list[texture.WhiteMatterTexture] = field(default_factory=list)
    contrast: list[LesionContrast] = field(default_factory=list)


@dataclass(frozen=True)
class LesionContrast:
    """FLAIR contrast and threshold difficulty of one real scan with a lesion mask, on its own grid.

    Attributes:
        scan: The FLAIR file.
        load_ml: Lesion volume of its mask.
        ratio: Median FLAIR of the lesions over the median of normal-appearing white matter (NAWM).
        p10_over_p90: Lesion 10th percentile over the NAWM 90th percentile.
        oracle_dice: The best single global FLAIR threshold's Dice against the mask (chosen with the mask).
        grid_mm: The model grid of ``ceiling_dice``.
        ceiling_dice: Dice of a perfect model on ``grid_mm`` voxels (:func:`grid_ceiling_dice`).
    """

    scan: Path
    load_ml: float
    ratio: float
    p10_over_p90: float
    oracle_dice: float
    grid_mm: float
    ceiling_dice: float


def _overlap_weights(n: int, c: int) -> np.ndarray:
    """(c, n) float32: the share of coarse voxel ``i`` that fine voxel ``j`` covers (the grids' outer edges aligned)."""
    edges = np.arange(c + 1) * (n / c)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n)[None, :]
    return (np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None) / (n / c)).astype(np.float32)


def grid_ceiling_dice(mask: np.ndarray, spacing_mm: tuple[float, ...], grid_mm: float) -> float:
    """The Dice a perfect model working on ``grid_mm`` voxels reaches against ``mask`` on the mask's own grid.

    The model's answer on its grid is the phantom's truth for that grid: voxels at least half lesion (the truth level
    0.5 of :func:`_raters.truth_mask`), each coarse voxel's lesion fraction being the exact volume share of the fine
    voxels it overlaps, as the phantom's partial volume is. ``msbench predict`` hands the mask back to the scan's grid
    by nearest neighbour. Lesions smaller than half a coarse voxel cannot be found at all, so on a scan with small
    lesions this caps every network trained on that grid, while a training-free threshold works on the scan's voxels.
    """
    mask = np.asarray(mask, dtype=bool)
    coarse = shape_for_spacing(mask.shape, spacing_mm, (grid_mm,) * 3)
    fraction = mask.astype(np.float32)
    for axis, (n, c) in enumerate(zip(mask.shape, coarse, strict=True)):
        fraction = np.moveaxis(np.tensordot(_overlap_weights(n, c), fraction, axes=([1], [axis])), 0, axis)
    answer = resample_to_shape(truth_mask(fraction), mask.shape, order=0)
    return dice_score(answer, mask)


def real_lesion_contrast(real_dir: Path, grid_mm: float = 1.0) -> list[LesionContrast]:
    """The FLAIR contrast of every real scan under ``real_dir`` that has a FLAIR, a T1 and a lesion mask in one folder.

    Normal-appearing white matter is the T1's brightest Otsu class (:func:`texture.white_matter`) outside the mask;
    the brain is FLAIR > 0 (the images are skull stripped). Measured on the scan's own grid, as the spec's figures;
    the resolution ceiling on ``grid_mm`` voxels (:func:`grid_ceiling_dice`) too.
    """
    out = []
    for flair_path, t1_path in texture.real_scan_pairs(real_dir):
        masks = [p for p in sorted(flair_path.parent.glob("*.nii*")) if _is_mask_file(p)]
        if not masks:
            continue
        flair, affine = read_image(flair_path)
        t1, _ = read_image(t1_path)
        mask, _ = read_image(masks[0])
        if not flair.shape == t1.shape == mask.shape:
            raise ValueError(
                f"{flair_path.parent}: FLAIR {flair.shape}, T1 {t1.shape} and mask {masks[0].name} {mask.shape} "
                "must share one grid"
            )
        lesion = mask > 0
        brain = flair > 0
        nawm = texture.white_matter(t1, brain & (t1 > 0)) & ~lesion
        if not lesion.any() or not nawm.any():
            continue
        voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
        spacing = tuple(float(z) for z in np.linalg.norm(affine[:3, :3], axis=0))
        out.append(
            LesionContrast(
                scan=flair_path,
                load_ml=float(lesion.sum()) * voxel_ml,
                ratio=float(np.median(flair[lesion]) / np.median(flair[nawm])),
                p10_over_p90=float(np.percentile(flair[lesion], 10) / np.percentile(flair[nawm], 90)),
                oracle_dice=stats.oracle_threshold_dice(flair, lesion, brain),
                grid_mm=float(grid_mm),
                ceiling_dice=grid_ceiling_dice(lesion, spacing, grid_mm),
            )
        )
    return out


def _is_mask_file(path: Path) -> bool:
    """A lesion mask by its name (one of ``_REAL_MASK_HINTS``), as open_ms_data and most challenges name them."""
    return any(h in path.name.lower() for h in _REAL_MASK_HINTS)


def _real_mask_files(real_dir: Path) -> list[Path]:
    files = sorted(p for p in real_dir.rglob("*.nii*") if _is_mask_file(p))
    if not files:
        raise FileNotFoundError(
            f"no lesion masks (*.nii/*.nii.gz named with one of {_REAL_MASK_HINTS}) under {real_dir}; "
            "pass real_dir pointing at e.g. open_ms_data/cross_sectional/MNI"
        )
    return files


def _ventricle_distance(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Distance (mm) to the MNI152 lateral ventricles on a real mask's grid (nearest-neighbour resampled)."""
    tpl = load_template(1.0)
    index = np.indices(shape, dtype=np.float32).reshape(3, -1)
    world = affine[:3, :3].astype(np.float32) @ index + affine[:3, 3:4].astype(np.float32)
    tpl_index = np.rint(world - np.asarray(tpl.origin_mm, dtype=np.float32)[:, None]).astype(np.int64)
    valid = np.all((tpl_index >= 0) & (tpl_index < np.asarray(tpl.ventricles.shape)[:, None]), axis=0)
    ventricles = np.zeros(index.shape[1], dtype=bool)
    ventricles[valid] = tpl.ventricles[tuple(tpl_index[:, valid])] >= 0.5
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    return edt.edt(~ventricles.reshape(shape), anisotropy=spacing, black_border=False)


def _real_stats(real_dir: Path, resolution_mm: float) -> _RealStats:
    out = _RealStats(
        wm_texture=texture.real_texture(real_dir, resolution_mm),
        contrast=real_lesion_contrast(real_dir, resolution_mm),
    )
    distances: dict[tuple, np.ndarray] = {}
    for path in _real_mask_files(real_dir):
        img = _spatial_image(path)
        mask = np.asarray(img.dataobj) > 0
        voxel_mm3 = float(np.prod(img.header.get_zooms()[:3]))
        sizes = stats.lesion_sizes(mask)
        out.n_lesions.append(int(sizes.size))
        out.load_ml.append(float(mask.sum()) * voxel_mm3 / 1000.0)
        out.sizes.append(sizes * voxel_mm3)
        key = (mask.shape, tuple(np.round(img.affine, 3).ravel()))
        if key not in distances:
            distances[key] = _ventricle_distance(img.affine, mask.shape)
        if mask.any():
            out.periventricular.append(float((mask & (distances[key] <= PERIVENTRICULAR_MM)).sum() / mask.sum()))
    return out


def _pct(values: list[float]) -> str:
    return _fmt_range(100 * np.asarray(values, dtype=float), 0) + " %"


def _reference_column() -> dict[str, str]:
    """The report's reference figures, rendered from :mod:`.reference` (the one place they are written)."""
    count, load = dict(reference.LESION_COUNT_QUANTILES), dict(reference.LESION_LOAD_QUANTILES_ML)

    def span(low_high: tuple[float, float]) -> str:
        return f"{low_high[0]:g}-{low_high[1]:g}"

    return {
        "count": f"{count[0.5]:g} ({count[0.0]:g}-{count[1.0]:g})",
        "load": f"{load[0.5]:g} ({load[0.0]:g}-{load[1.0]:g})",
        # the end points 0 and 1 only bound the interpolation; the spec's percentiles lie between them
        "percentiles": " / ".join(f"{v:g}" for q, v in reference.LESION_SIZE_QUANTILES_VOX if 0.0 < q < 1.0),
        "under10": f"{100 * reference.FRACTION_LESIONS_UNDER_10_VOX:.0f} %",
        "over1000": f"{100 * reference.FRACTION_VOLUME_OVER_1000_VOX:.0f} %",
        "ratio": f"{reference.FLAIR_LESION_TO_NAWM_RATIO:.2f}",
        "p10_over_p90": f"{reference.FLAIR_LESION_P10_TO_WM_P90:.2f}",
        "inter_rater": span(reference.INTER_RATER_DICE),
        "oracle_low": f"~{reference.ORACLE_DICE_LOW_LOAD[0]:g} at {reference.ORACLE_LOW_LOAD_ML:g} ml",
        "oracle_high": span(reference.ORACLE_DICE_HIGH_LOAD),
    }


def _rows(ph: _PhantomStats, real: _RealStats | None, resolution_mm: float) -> tuple[Row, ...]:
    sizes = np.concatenate(ph.sizes) if ph.sizes else np.zeros(0)
    size_ph = _size_rows(sizes)
    real_sizes = np.concatenate(real.sizes) if real and real.sizes else None
    size_real = _size_rows(real_sizes) if real_sizes is not None else {}
    ks_real = "n/a"
    if real_sizes is not None and sizes.size and real_sizes.size:
        from scipy.stats import ks_2samp

        ks_real = f"{ks_2samp(sizes, real_sizes).statistic:.3f}"
    real_texture = real.wm_texture if real else []
    contrast = real.contrast if real else []

    def real_contrast(name: str) -> str:
        if real is None:
            return "n/a"
        if not contrast:
            return "n/a (no FLAIR, T1 and mask in one folder)"
        return _fmt_range([getattr(c, name) for c in contrast], 2) + f" (n={len(contrast)})"

    def real_oracle(low_ml: float, high_ml: float) -> str:
        at_load = [c for c in contrast if low_ml <= c.load_ml < high_ml]
        if not at_load:
            return "n/a" if real is None or not contrast else "n/a (no real scan at this load)"
        dice = _fmt_range([c.oracle_dice for c in at_load], 2)
        return f"{dice} (n={len(at_load)}, load {_fmt_range([c.load_ml for c in at_load])} ml)"

    def spread(textures: list[texture.WhiteMatterTexture], name: str) -> str:
        return _fmt_range([getattr(t, name) for t in textures], 3)

    grid = f"{resolution_mm:g} mm grid"
    spec = _reference_column()
    return (
        Row(
            "lesions per scan (median, range)",
            _fmt_range(ph.n_lesions, 0),
            spec["count"],
            _fmt_range(real.n_lesions, 0) if real else "n/a",
        ),
        Row(
            "lesion load ml (median, range)",
            _fmt_range(ph.load_ml),
            spec["load"],
            _fmt_range(real.load_ml) if real else "n/a",
        ),
        Row(
            "size p10/p25/p50/p75/p90/p99 (vox)",
            size_ph["percentiles"],
            spec["percentiles"],
            size_real.get("percentiles", "n/a"),
        ),
        Row("lesions < 10 vox", size_ph["under10"], spec["under10"], size_real.get("under10", "n/a")),
        Row("volume in lesions > 1000 vox", size_ph["over1000"], spec["over1000"], size_real.get("over1000", "n/a")),
        Row("KS sizes vs spec percentiles", f"{ks_to_reference_percentiles(sizes):.3f}", "0 (ideal)", "n/a"),
        Row("KS sizes vs real masks (2-sample)", ks_real, "0 (ideal)", "n/a"),
        Row("FLAIR lesion / NAWM median", _fmt_range(ph.ratio, 2), spec["ratio"], real_contrast("ratio")),
        Row(
            "FLAIR lesion p10 / NAWM p90",
            _fmt_range(ph.p10_over_p90, 2),
            spec["p10_over_p90"],
            real_contrast("p10_over_p90"),
        ),
        Row(
            f"FLAIR NAWM robust sd / median, {grid}",
            spread(ph.wm_texture, "robust_sd"),
            "real scans",
            spread(real_texture, "robust_sd"),
        ),
        Row(
            f"FLAIR NAWM neighbour sd (noise), {grid}",
            spread(ph.wm_texture, "neighbour_sd"),
            "real scans",
            spread(real_texture, "neighbour_sd"),
        ),
        Row(
            f"lesion volume <= {PERIVENTRICULAR_MM:g} mm of ventricles",
            _pct(ph.periventricular),
            "highest near ventricles",
            _pct(real.periventricular) if real else "n/a",
        ),
        Row(
            f"perfect model on the {grid}, Dice on the scan's grid",
            "1 (truth is on this grid)",
            "ceiling for networks",
            real_contrast("ceiling_dice"),
        ),
        Row("inter-rater Dice (mask1 vs mask2)", _fmt_range(ph.inter_rater, 2), spec["inter_rater"], "n/a"),
        Row(
            f"oracle threshold Dice, load < 3 ml (n={len(ph.oracle_low)})",
            _fmt_range(ph.oracle_low, 2),
            spec["oracle_low"],
            real_oracle(0.0, 3.0),
        ),
        Row(
            f"oracle threshold Dice, load >= 8 ml (n={len(ph.oracle_high)})",
            _fmt_range(ph.oracle_high, 2),
            spec["oracle_high"],
            real_oracle(8.0, float("inf")),
        ),
    )


def realism_report(root: Path | None = None, *, real_dir: Path | None = None, seed: int = 0) -> RealismReport:
    """Compute the phantom's realism statistics.

    Args:
        root: A generated phantom (with ``synth-ms.json``); None generates (or reuses) the default
            full-resolution phantom of ``seed`` in :func:`default_phantom_dir`.
        real_dir: Folder of real lesion masks; None uses :func:`default_real_dir` when it exists.
        seed: Seed of the default phantom (ignored when ``root`` is given).

    Returns:
        The :class:`RealismReport`.

    Raises:
        FileNotFoundError: If ``root`` holds no phantom, or an explicit ``real_dir`` holds no masks.
    """
    if real_dir is None:
        candidate = default_real_dir()
        real_dir = candidate if candidate.is_dir() else None
    elif not Path(real_dir).is_dir():
        raise FileNotFoundError(f"real_dir {real_dir} is not a folder; pass a folder of real lesion masks or None")
    if root is None:
        root = generate_cached(seed)
    root = Path(root)
    summary_path = root / SUMMARY_NAME
    if not summary_path.is_file():
        raise FileNotFoundError(
            f"{summary_path} not found: {root} is not a synth-ms phantom; generate one with "
            "`msbench datasets synth --out DIR` or pass root=None"
        )
    summary = json.loads(summary_path.read_text())
    real = _real_stats(Path(real_dir), float(summary["resolution_mm"])) if real_dir is not None else None
    ph = _phantom_stats(root, summary)
    assert ph.best_case is not None  # a phantom has at least one scan
    _, case, flair_slice, mask_slice = ph.best_case
    return RealismReport(
        root=root,
        real_dir=Path(real_dir) if real_dir is not None else None,
        rows=_rows(ph, real, float(summary["resolution_mm"])),
        phantom_sizes_vox=np.concatenate(ph.sizes) if ph.sizes else np.zeros(0),
        real_sizes_vox=np.concatenate(real.sizes) if real and real.sizes else None,
        case=case,
        flair_slice=flair_slice,
        mask_slice=mask_slice,
    )
