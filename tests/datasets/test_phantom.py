"""synth-ms phantom: ISBI 2015 layout, determinism, lesions, raters, evolution and difficulty."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from msbench.datasets.masks import dice_score
from msbench.datasets.phantom import (
    GENERATOR_VERSION,
    SUMMARY_NAME,
    case_files,
    expected_files,
    generate_synth_ms,
    timepoints,
)
from msbench.datasets.phantom import stats as phantom_stats
from msbench.datasets.phantom._anatomy import build_anatomy
from msbench.datasets.phantom._contrast import CONTRAST_TABLE, CONTRASTS
from msbench.datasets.phantom._grid import Grid
from msbench.datasets.phantom._lesions import plan_lesions
from msbench.datasets.phantom.generate import patient_anatomy, patient_protocol, patient_rng

SMOKE_RESOLUTION_MM = 3.0


def load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_cases(root: Path) -> list[tuple[int, int]]:
    summary = json.loads((root / SUMMARY_NAME).read_text())
    return [(p, t) for p, n in enumerate(timepoints(summary["n_patients"]), start=1) for t in range(1, n + 1)]


@pytest.fixture(scope="module")
def one_patient(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synth_ms(
        tmp_path_factory.mktemp("one") / "phantom", seed=7, resolution_mm=4.0, n_patients=1, progress=False
    )


def test_isbi_training_layout_is_exact(smoke_phantom: Path) -> None:
    expected = {"synth-ms.json"}
    for p, n_tp in enumerate((4, 4, 5, 4, 4), start=1):
        for t in range(1, n_tp + 1):
            stem = f"training{p:02d}_{t:02d}"
            folder = f"training/training{p:02d}"
            expected |= {f"{folder}/preprocessed/{stem}_{c}_pp.nii" for c in ("flair", "mprage", "pd", "t2")}
            expected |= {f"{folder}/masks/{stem}_{m}.nii" for m in ("mask1", "mask2", "truth")}
    written = {str(p.relative_to(smoke_phantom)) for p in smoke_phantom.rglob("*") if p.is_file()}
    assert written == expected
    assert timepoints(5) == [4, 4, 5, 4, 4]
    assert set(expected_files(smoke_phantom, 5)) == {smoke_phantom / e for e in expected - {"synth-ms.json"}}


def test_case_files_spell_isbi_names() -> None:
    files = case_files(Path("/r"), 3, 5)
    assert files["flair"] == Path("/r/training/training03/preprocessed/training03_05_flair_pp.nii")
    assert files["mask2"] == Path("/r/training/training03/masks/training03_05_mask2.nii")


def test_dtypes_affine_and_summary(smoke_phantom: Path) -> None:
    summary = json.loads((smoke_phantom / SUMMARY_NAME).read_text())
    grid = Grid.for_resolution(SMOKE_RESOLUTION_MM)
    assert summary["version"] == GENERATOR_VERSION
    assert (summary["seed"], summary["resolution_mm"], summary["n_patients"]) == (0, 3.0, 5)
    assert summary["shape"] == [61, 73, 61] == list(grid.shape)
    assert len(summary["cases"]) == 21
    expected_affine = np.diag([3.0, 3.0, 3.0, 1.0])
    expected_affine[:3, 3] = [-89.0, -125.0, -71.0]
    for path in expected_files(smoke_phantom, 5):
        img = nib.load(path)
        assert img.shape == tuple(summary["shape"])
        np.testing.assert_allclose(img.affine, expected_affine)
        want = np.uint8 if path.parent.name == "masks" else np.float32
        assert img.get_data_dtype() == want, path
    for case in summary["cases"]:
        truth = load(case_files(smoke_phantom, int(case["patient"][-2:]), case["time_point"])["truth"])
        sizes = phantom_stats.lesion_sizes(truth > 0)
        assert case["n_lesions"] == sizes.size
        assert case["load_ml"] == pytest.approx(sizes.sum() * 0.027, abs=1e-3)


def test_full_resolution_grid_is_isbi() -> None:
    grid = Grid.for_resolution(1.0)
    assert grid.shape == (181, 217, 181)
    np.testing.assert_allclose(grid.affine[:3, 3], [-90.0, -126.0, -72.0])
    with pytest.raises(ValueError, match="resolution_mm"):
        Grid.for_resolution(0.5)


def test_same_seed_same_bytes_other_seed_differs(one_patient: Path, tmp_path: Path) -> None:
    again = generate_synth_ms(tmp_path / "again", seed=7, resolution_mm=4.0, n_patients=1, progress=False)
    for a in [*expected_files(one_patient, 1), one_patient / SUMMARY_NAME]:
        b = again / a.relative_to(one_patient)
        assert sha256(a) == sha256(b), a.name
    other = generate_synth_ms(tmp_path / "other", seed=8, resolution_mm=4.0, n_patients=1, progress=False)
    for name in ("flair", "truth"):
        assert sha256(case_files(one_patient, 1, 1)[name]) != sha256(case_files(other, 1, 1)[name])


def test_existing_phantom_is_reused_and_mismatch_is_an_error(one_patient: Path, tmp_path: Path) -> None:
    flair = case_files(one_patient, 1, 1)["flair"]
    before = flair.stat().st_mtime_ns
    assert generate_synth_ms(one_patient, seed=7, resolution_mm=4.0, n_patients=1, progress=False) == one_patient
    assert flair.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match=str(one_patient)):
        generate_synth_ms(one_patient, seed=8, resolution_mm=4.0, n_patients=1, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a synth-ms phantom"):
        generate_synth_ms(foreign, resolution_mm=4.0, n_patients=1, progress=False)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir()), "temporary build folder left behind"


def test_invalid_arguments_name_the_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_patients"):
        generate_synth_ms(tmp_path / "x", n_patients=0, progress=False)
    with pytest.raises(TypeError, match="seed"):
        generate_synth_ms(tmp_path / "x", seed=-1, progress=False)
    with pytest.raises(ValueError, match="resolution_mm"):
        generate_synth_ms(tmp_path / "x", resolution_mm=0.3, progress=False)


def test_lesions_are_hyperintense_on_flair_and_inside_white_matter(smoke_phantom: Path) -> None:
    grid = Grid.for_resolution(SMOKE_RESOLUTION_MM)
    ratios, in_wm = [], []
    for p in range(1, 6):
        anatomy = patient_anatomy(0, p, grid)
        for t in range(1, timepoints(5)[p - 1] + 1):
            files = case_files(smoke_phantom, p, t)
            flair, mprage = load(files["flair"]), load(files["mprage"])
            truth = load(files["truth"]) > 0
            brain = flair > 0
            for name in ("truth", "mask1", "mask2"):
                assert not np.any((load(files[name]) > 0) & ~brain), f"{name} outside the brain"
            if not truth.any():
                continue
            nawm = (anatomy.wm >= 0.9) & ~truth
            ratios.append(np.median(flair[truth]) / np.median(flair[nawm]))
            assert np.median(mprage[truth]) < np.median(mprage[nawm]), "lesions must be hypo-intense on T1"
            in_wm.append(np.mean(anatomy.wm[truth] + anatomy.gm[truth] >= 0.5))
            assert np.mean(anatomy.wm[truth] >= 0.3) > 0.8
    assert len(ratios) >= 15, "lesions must exist in the masks at 3 mm"
    assert 1.15 < np.median(ratios) < 1.6
    assert min(in_wm) > 0.95


def test_contrasts_order_tissues_like_mri(smoke_phantom: Path) -> None:
    anatomy = patient_anatomy(0, 1, Grid.for_resolution(SMOKE_RESOLUTION_MM))
    files = case_files(smoke_phantom, 1, 1)
    truth = load(files["truth"]) > 0
    brain = load(files["flair"]) > 0
    csf = (anatomy.csf >= 0.9) & brain
    gm = (anatomy.gm >= 0.8) & ~truth
    wm = (anatomy.wm >= 0.9) & ~truth

    def medians(name: str) -> tuple[float, float, float]:
        image = load(files[name])
        return tuple(float(np.median(image[m])) for m in (csf, gm, wm))

    csf_v, gm_v, wm_v = medians("flair")
    assert csf_v < wm_v < gm_v, "FLAIR: CSF dark, GM brighter than WM"
    csf_v, gm_v, wm_v = medians("mprage")
    assert csf_v < gm_v < wm_v, "T1: the reverse"
    csf_v, gm_v, wm_v = medians("t2")
    assert wm_v < gm_v < csf_v, "T2: CSF bright"


def test_each_patient_draws_its_own_tissue_levels_inside_the_ranges() -> None:
    protocols = [patient_protocol(0, p) for p in range(1, 40)]
    for name in CONTRASTS:
        c = CONTRAST_TABLE[name]
        for level, (low, high) in (("csf", c.csf), ("gm", c.gm)):
            values = np.array([getattr(protocol, level)[name] for protocol in protocols])
            assert low <= values.min() and values.max() <= high, f"{name} {level} outside its range"
            # Spread over most of the range, not one level for everyone.
            assert values.max() - values.min() > 0.7 * (high - low), f"{name} {level} barely varies"
    # Whatever the draw, the tissues keep their MR order: FLAIR CSF < WM (= 1) < GM, T1 CSF < GM < WM.
    assert CONTRAST_TABLE["flair"].csf[1] < 1.0 < CONTRAST_TABLE["flair"].gm[0]
    assert CONTRAST_TABLE["mprage"].csf[1] < CONTRAST_TABLE["mprage"].gm[0] and CONTRAST_TABLE["mprage"].gm[1] < 1.0


def test_written_flair_follows_the_patients_protocol(smoke_phantom: Path) -> None:
    """Patients with a brighter drawn grey matter show a brighter grey matter on their FLAIR."""
    drawn, measured = [], []
    for patient in range(1, 6):
        anatomy = patient_anatomy(0, patient, Grid.for_resolution(SMOKE_RESOLUTION_MM))
        files = case_files(smoke_phantom, patient, 1)
        flair, truth = load(files["flair"]), load(files["truth"]) > 0
        gm = (anatomy.gm >= 0.8) & ~truth & (flair > 0)
        wm = (anatomy.wm >= 0.9) & ~truth & (flair > 0)
        measured.append(np.median(flair[gm]) / np.median(flair[wm]))
        drawn.append(patient_protocol(0, patient).gm["flair"])
    assert np.corrcoef(drawn, measured)[0, 1] > 0.9, (drawn, measured)


def test_two_raters_differ_with_realistic_agreement(smoke_phantom: Path) -> None:
    dices = []
    for p, t in all_cases(smoke_phantom):
        files = case_files(smoke_phantom, p, t)
        m1, m2, truth = (load(files[k]) > 0 for k in ("mask1", "mask2", "truth"))
        if truth.sum() * 0.027 >= 1.0:
            assert not np.array_equal(m1, m2)
            dices.append(dice_score(m1, m2))
    assert len(dices) >= 10
    # 3 mm voxels make boundaries coarse; the full-resolution band (0.7-0.8) is checked by the slow test.
    assert 0.6 <= np.median(dices) <= 0.85


def test_time_points_evolve_with_fixed_anatomy(smoke_phantom: Path) -> None:
    summary = json.loads((smoke_phantom / SUMMARY_NAME).read_text())
    for p, n_tp in enumerate(timepoints(5), start=1):
        files = [case_files(smoke_phantom, p, t) for t in range(1, n_tp + 1)]
        brains = [load(f["flair"]) > 0 for f in files]
        assert all(np.array_equal(brains[0], b) for b in brains[1:]), "anatomy must stay fixed"
        loads = [c["load_ml"] for c in summary["cases"] if c["patient"] == f"training{p:02d}"]
        if loads[0] > 0.5:
            assert not np.array_equal(load(files[0]["truth"]), load(files[-1]["truth"]))
    rng = patient_rng(0, 2)
    anatomy = build_anatomy(Grid.for_resolution(SMOKE_RESOLUTION_MM), rng)
    lesions = plan_lesions(anatomy, rng, 0.5, 4)
    scales = np.array([lesion.scales for lesion in lesions])
    assert np.any((scales[:, 0] == 0) & (scales[:, -1] > 0)), "new lesions appear"
    assert np.any(scales[:, -1] > scales[:, 0] * 1.05), "some lesions grow"
    assert np.any((scales[:, 0] > 0) & (scales[:, -1] < scales[:, 0] * 0.95)), "a few shrink"
    assert np.mean(scales[:, -1] < scales[:, 0] * 0.95) < 0.25


def test_an_oracle_global_threshold_does_not_solve_it(smoke_phantom: Path) -> None:
    dices = []
    for p, t in all_cases(smoke_phantom):
        files = case_files(smoke_phantom, p, t)
        flair, truth = load(files["flair"]), load(files["truth"]) > 0
        if truth.any():
            dices.append(phantom_stats.oracle_threshold_dice(flair, truth, flair > 0))
    assert max(dices) < 0.85
    assert np.median(dices) < 0.7


def test_oracle_threshold_dice_on_a_hand_made_case() -> None:
    image = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).reshape(1, 2, 3)
    truth = np.array([0, 0, 0, 1, 0, 1], dtype=bool).reshape(1, 2, 3)
    within = np.ones_like(truth)
    # Best threshold 4: selects {4, 5, 6}, TP 2 -> Dice 2*2 / (3 + 2) = 0.8 (threshold 6 gives 2/3).
    assert phantom_stats.oracle_threshold_dice(image, truth, within) == pytest.approx(0.8)
    assert np.isnan(phantom_stats.oracle_threshold_dice(image, np.zeros_like(truth), within))
