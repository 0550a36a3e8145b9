"""White-matter texture: noise told apart from structure, on volumes whose answer is known by construction."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from msbench.datasets.phantom.texture import load_on_grid, real_scan_pairs, white_matter_texture

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "open_ms_data" / "cross_sectional" / "MNI"


def _head(noise_sd: float, field_sd: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 64^3 ball: white-matter core (T1 1.0), grey shell (T1 0.6), CSF shell (T1 0.3); FLAIR WM = 100."""
    rng = np.random.default_rng(seed)
    r = np.sqrt(sum((np.indices((64,) * 3) - 31.5) ** 2))
    t1 = np.select([r < 22, r < 26, r < 30], [1.0, 0.6, 0.3], 0.0).astype(np.float32)
    field = ndi.gaussian_filter(rng.standard_normal(t1.shape), 4.0)
    field *= field_sd / field[r < 22].std()
    flair = np.where(t1 > 0, 100.0 * (1.0 + field) + 100.0 * noise_sd * rng.standard_normal(t1.shape), 0.0)
    return flair.astype(np.float32), t1


def test_white_noise_gives_its_sd_in_both_numbers() -> None:
    texture = white_matter_texture(*_head(noise_sd=0.05, field_sd=0.0))
    assert texture.neighbour_sd == pytest.approx(0.05, rel=0.05)
    assert texture.robust_sd == pytest.approx(0.05, rel=0.05)
    assert texture.n_voxels > 30_000


def test_smooth_structure_raises_the_spread_but_not_the_neighbour_sd() -> None:
    texture = white_matter_texture(*_head(noise_sd=0.02, field_sd=0.08))
    assert texture.robust_sd == pytest.approx(np.hypot(0.02, 0.08), rel=0.15)
    # A sigma-4 field changes by about 0.08 / (2 * 4) between neighbours; with 0.02 of noise that stays near 0.02.
    assert 0.018 < texture.neighbour_sd < 0.03


def test_shape_mismatch_and_no_white_matter_are_refused() -> None:
    flair, t1 = _head(0.05, 0.0)
    with pytest.raises(ValueError, match="differs from T1 shape"):
        white_matter_texture(flair, t1[:-1])
    with pytest.raises(ValueError, match="no white matter"):
        white_matter_texture(flair, (t1 > 0).astype(np.float32))


def test_pairs_need_a_flair_and_a_plain_t1_in_one_folder(tmp_path: Path) -> None:
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    for folder, names in {
        "p1": ["FLAIR_x.nii.gz", "T1_x.nii.gz", "T1POST_x.nii.gz"],
        "p2": ["FLAIR_x.nii.gz", "T1POST_x.nii.gz"],
        "p3": ["GOLD_STANDARD.nii.gz"],
    }.items():
        (tmp_path / folder).mkdir()
        for name in names:
            nib.save(img, tmp_path / folder / name)
    assert real_scan_pairs(tmp_path) == [(tmp_path / "p1" / "FLAIR_x.nii.gz", tmp_path / "p1" / "T1_x.nii.gz")]


def test_load_on_grid_resamples_by_voxel_size_and_names_a_bad_file(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((30, 30, 12), np.float32), np.diag([1.0, 1.0, 2.5, 1.0])), tmp_path / "a.nii")
    assert load_on_grid(tmp_path / "a.nii", 3.0).shape == (10, 10, 10)
    (tmp_path / "bad.nii").write_bytes(b"not a nifti")
    with pytest.raises(ValueError, match="bad.nii"):
        load_on_grid(tmp_path / "bad.nii", 3.0)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/open_ms_data is absent")
def test_real_scan_on_a_coarse_grid_has_less_noise_than_structure() -> None:
    """Label-free fact the phantom is held to: on 3 mm voxels, real white matter's spread is mostly structure."""
    pairs = real_scan_pairs(REAL)
    assert pairs, "open_ms_data is present but has no FLAIR/T1 pair"
    flair, t1 = pairs[0]
    texture = white_matter_texture(load_on_grid(flair, 3.0), load_on_grid(t1, 3.0))
    assert texture.neighbour_sd < 0.6 * texture.robust_sd
