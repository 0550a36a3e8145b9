"""The real 3D-MR-MS sample of open_ms_data (MNI space) in ../shared, when present; skipped otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from msbench.datasets import MissingFileError, dataset_info, lesjak, load_split

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "open_ms_data"
MNI = SAMPLE / "cross_sectional" / "MNI"

pytestmark = pytest.mark.skipif(not MNI.is_dir(), reason=f"open_ms_data sample not present at {SAMPLE}")


def test_loading_the_sample_says_which_patients_have_masks_only() -> None:
    with pytest.raises(MissingFileError, match=r"patient01/FLAIR_N4_.*regtoMNI\.nii\.gz.*load_masks_only"):
        lesjak.load(SAMPLE)


def test_masks_only_listing_reproduces_the_phantom_spec_reference_figures() -> None:
    info = dataset_info("lesjak-3dms", SAMPLE, masks_only=True, connectivity=26)
    assert len(info) >= 28 and set(info["shape"]) == {(182, 218, 182)}
    assert set(info["spacing_mm"]) == {(1.0, 1.0, 1.0)}
    # shared/spec/phantom.md: lesions per patient median 79, range 17-392; load median 13.9 ml, range 0.3-52 ml
    if len(info) == 28:
        assert info["n_lesions"].median() == 79
        assert (info["n_lesions"].min(), info["n_lesions"].max()) == (17, 392)
    assert info["lesion_load_ml"].median() == pytest.approx(13.9, abs=0.1)
    assert info["lesion_load_ml"].min() == pytest.approx(0.3, abs=0.05)
    assert info["lesion_load_ml"].max() == pytest.approx(52, abs=0.5)


def test_the_committed_30_patient_split_rejects_the_partial_sample() -> None:
    masks = lesjak.load_masks_only(SAMPLE)
    if len(masks) == 30:
        pytest.skip("the sample holds all 30 patients")
    with pytest.raises(ValueError, match="does not match the data on disk"):
        load_split("lesjak-3dms", "kfold5", masks)


def test_patient07_loads_with_four_modalities_on_one_grid(tmp_path: Path) -> None:
    if not (MNI / "patient07" / f"FLAIR{lesjak._MNI_SUFFIX}").is_file():
        pytest.skip("patient07 images absent from the sample")
    (tmp_path / "MNI").mkdir()
    (tmp_path / "MNI" / "patient07").symlink_to(MNI / "patient07")
    (case,) = lesjak.load(tmp_path / "MNI")
    assert set(case.images) == {"flair", "t1", "t1post", "t2"} and case.meta["variant"] == "mni"
    image, mask = case.load_images(("flair",)), case.load_mask("consensus")
    assert image.shape == (1, 182, 218, 182) and image.dtype == np.float32
    assert mask.any() and tuple(case.spacing_mm) == (1.0, 1.0, 1.0)
    # lesions are hyperintense on FLAIR: their median exceeds the brain's
    flair = image[0]
    assert np.median(flair[mask]) > np.median(flair[flair > 0])
