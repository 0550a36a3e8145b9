"""synth-ms realism report: table, PNG, real-mask comparison (skipped when ../shared is absent)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from msbench.datasets.phantom import generate_synth_ms, realism_report, reference
from msbench.datasets.phantom import realism as realism_module
from msbench.datasets.phantom.realism import grid_ceiling_dice, ks_to_reference_percentiles, real_lesion_contrast

REAL_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "open_ms_data" / "cross_sectional" / "MNI"
STATISTICS = (
    "lesions per scan",
    "lesion load ml",
    "size p10/p25/p50/p75/p90/p99",
    "lesions < 10 vox",
    "volume in lesions > 1000 vox",
    "KS sizes vs spec percentiles",
    "KS sizes vs real masks",
    "FLAIR lesion / NAWM median",
    "FLAIR lesion p10 / NAWM p90",
    "FLAIR NAWM robust sd / median",
    "FLAIR NAWM neighbour sd (noise)",
    "of ventricles",
    "inter-rater Dice",
    "oracle threshold Dice, load < 3 ml",
    "oracle threshold Dice, load >= 8 ml",
)


def row(report, prefix: str):
    return next(r for r in report.rows if r.statistic.startswith(prefix))


def test_report_without_real_data_has_every_statistic_and_a_png(
    smoke_phantom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(realism_module, "default_real_dir", lambda: tmp_path / "no-shared-here")
    report = realism_report(smoke_phantom)
    assert report.real_dir is None
    text = report.to_text()
    for statistic in STATISTICS:
        assert statistic in text, statistic
    assert all(r.real.startswith("n/a") for r in report.rows)
    assert "absent" in text
    assert report.phantom_sizes_vox.size > 50
    assert report.mask_slice.any(), "the shown slice must carry lesions"
    png = report.write_png(tmp_path / "out" / "realism.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="../shared/data/open_ms_data is absent")
def test_report_compares_with_real_masks(smoke_phantom: Path) -> None:
    report = realism_report(smoke_phantom, real_dir=REAL_DIR)
    assert report.real_dir == REAL_DIR
    # The real column reproduces the spec's own figures from the 28 masks.
    assert row(report, "lesions per scan").real == "79 (17-392)"
    assert row(report, "size p10").real.startswith("2 / 6 / 17 /")
    ks = float(row(report, "KS sizes vs real masks").phantom)
    assert 0.0 < ks < 1.0
    assert report.real_sizes_vox is not None and report.real_sizes_vox.size > 1000
    # patient07's FLAIR and T1 give the white-matter texture on the phantom's grid, beside the phantom's.
    real_noise = float(row(report, "FLAIR NAWM neighbour sd").real.split()[0])
    real_spread = float(row(report, "FLAIR NAWM robust sd").real.split()[0])
    assert 0.0 < real_noise < real_spread
    assert float(row(report, "FLAIR NAWM neighbour sd").phantom.split()[0]) > 0.0
    # patient07's FLAIR with its mask: the spec measured lesion/NAWM 1.34 and an oracle threshold Dice of about
    # 0.2 at 1.3 ml on one real patient; the report measures them itself (its NAWM is the T1's white-matter class).
    assert 1.25 < float(row(report, "FLAIR lesion / NAWM median").real.split()[0]) < 1.45
    assert 0.9 < float(row(report, "FLAIR lesion p10 / NAWM p90").real.split()[0]) < 1.15
    low = row(report, "oracle threshold Dice, load < 3 ml").real
    assert 0.15 < float(low.split()[0]) < 0.25 and "1.3" in low
    assert row(report, "oracle threshold Dice, load >= 8 ml").real == "n/a (no real scan at this load)"
    ceiling = float(row(report, "perfect model on the").real.split()[0])
    assert 0.0 < ceiling < 1.0  # patient07's small lesions are partly under half a smoke-grid voxel


def _write_scan(folder: Path, spacing_mm: float = 2.0) -> None:
    """A cube head by hand: T1 WM 1.0 / GM 0.5 / CSF 0.3 shells; FLAIR WM 100, GM 120, lesion 150 (27 voxels)."""
    import nibabel as nib

    grid = np.indices((24, 24, 24)).transpose(1, 2, 3, 0)
    depth = np.minimum(grid, 23 - grid).min(axis=-1)  # distance to the grid's border, in voxels
    t1 = np.select([depth >= 7, depth >= 4, depth >= 2], [1.0, 0.5, 0.3], 0.0).astype(np.float32)
    flair = np.select([depth >= 7, depth >= 4, depth >= 2], [100.0, 120.0, 20.0], 0.0).astype(np.float32)
    lesion = np.zeros(t1.shape, bool)
    lesion[10:13, 10:13, 10:13] = True
    flair[lesion] = 150.0
    affine = np.diag([spacing_mm] * 3 + [1.0])
    folder.mkdir(parents=True)
    for name, data in (("FLAIR_a.nii.gz", flair), ("T1_a.nii.gz", t1), ("GOLD_STANDARD_a.nii.gz", lesion)):
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), folder / name)


def test_real_lesion_contrast_by_hand(tmp_path: Path) -> None:
    _write_scan(tmp_path / "patient01")
    (tmp_path / "patient02").mkdir()  # a mask-only patient is skipped
    (contrast,) = real_lesion_contrast(tmp_path)
    assert contrast.scan.name == "FLAIR_a.nii.gz"
    assert contrast.load_ml == pytest.approx(27 * 8 / 1000)
    assert contrast.ratio == pytest.approx(1.5)
    assert contrast.p10_over_p90 == pytest.approx(1.5)
    assert contrast.oracle_dice == pytest.approx(1.0)  # FLAIR >= 150 is exactly the lesion


def test_grid_ceiling_by_hand() -> None:
    mask = np.zeros((6, 6, 6), bool)
    mask[0:2, 0:2, 0:2] = True  # 8 of one 3 mm voxel's 27 mm3: under half, a 3 mm model cannot mark it
    assert grid_ceiling_dice(mask, (1.0, 1.0, 1.0), 3.0) == 0.0
    mask[3:6, 3:6, 3:5] = True  # 18 of 27: that voxel is lesion, and comes back as all 27 fine voxels
    assert grid_ceiling_dice(mask, (1.0, 1.0, 1.0), 3.0) == pytest.approx(2 * 18 / (27 + 26))
    assert grid_ceiling_dice(mask, (1.0, 1.0, 1.0), 1.0) == 1.0
    # Anisotropic voxels: 2 mm slices, a 3 mm grid covers 1.5 slices per voxel; the answer keeps the mask's grid.
    assert 0.0 < grid_ceiling_dice(np.ones((6, 6, 4), bool), (1.0, 1.0, 2.0), 3.0) <= 1.0


def test_real_lesion_contrast_refuses_files_on_different_grids(tmp_path: Path) -> None:
    import nibabel as nib

    _write_scan(tmp_path / "patient01")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), tmp_path / "patient01" / "T1_a.nii.gz")
    with pytest.raises(ValueError, match="patient01.*must share one grid"):
        real_lesion_contrast(tmp_path)


def test_missing_inputs_raise_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="synth-ms.json"):
        realism_report(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        realism_report(tmp_path, real_dir=tmp_path / "nowhere")


def test_ks_to_reference_percentiles_is_zero_on_the_reference_and_grows_with_a_shift() -> None:
    u = (np.arange(20000) + 0.5) / 20000
    sample = np.round(reference.interpolate_quantile(reference.LESION_SIZE_QUANTILES_VOX, u))
    assert ks_to_reference_percentiles(sample) < 0.02
    assert ks_to_reference_percentiles(sample * 4) > 0.2
    # Hand case: all lesions of 17 voxels. At v=6 (q=0.25) the ECDF is 0 on both sides (off by 0.25); at
    # v=46 (q=0.75) it is 1 on both sides (off by 0.25); at v=17 it jumps 0 -> 1 around q=0.5 (off by 0).
    assert ks_to_reference_percentiles(np.full(10, 17.0)) == pytest.approx(0.25)


@pytest.mark.slow
def test_full_resolution_phantom_sits_in_the_spec_bands(tmp_path: Path) -> None:
    root = generate_synth_ms(tmp_path / "full", seed=0, progress=False)
    report = realism_report(root)

    def median(prefix: str) -> float:
        return float(re.match(r"[\d.]+", row(report, prefix).phantom).group())

    assert 0.65 <= median("inter-rater Dice") <= 0.82
    assert median("oracle threshold Dice, load >= 8 ml") <= 0.7
    assert median("oracle threshold Dice, load < 3 ml") <= 0.5
    assert 1.2 <= median("FLAIR lesion / NAWM median") <= 1.5
    assert float(row(report, "KS sizes vs spec percentiles").phantom) < 0.1
    percent_small = float(row(report, "lesions < 10 vox").phantom.split()[0])
    assert 25 <= percent_small <= 45


def test_the_reports_reference_column_is_rendered_from_the_reference_module(monkeypatch) -> None:
    column = {row.statistic: row.reference for row in realism_module._rows(realism_module._PhantomStats(), None, 1.0)}
    assert column["inter-rater Dice (mask1 vs mask2)"] == "0.7-0.8"
    assert column["lesions per scan (median, range)"] == "79 (17-392)"
    assert column["size p10/p25/p50/p75/p90/p99 (vox)"] == "2 / 6 / 17 / 46 / 127 / 2254"
    monkeypatch.setattr(reference, "INTER_RATER_DICE", (0.5, 0.6))
    monkeypatch.setattr(reference, "FRACTION_VOLUME_OVER_1000_VOX", 0.5)
    column = {row.statistic: row.reference for row in realism_module._rows(realism_module._PhantomStats(), None, 1.0)}
    assert column["inter-rater Dice (mask1 vs mask2)"] == "0.5-0.6"
    assert column["volume in lesions > 1000 vox"] == "50 %"
