"""``msbench predict``: a stored model on a user's own scans, of any grid and orientation, and bad input refused."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.processing import resample_from_to
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.metrics import evaluate_case

runner = CliRunner()
PATIENT = Path(__file__).resolve().parents[2] / "shared/data/open_ms_data/cross_sectional/MNI/patient07"
FLAIR = PATIENT / "FLAIR_N4_noneck_reduced_winsor_regtoFLAIR_brain_N4_regtoMNI.nii.gz"


def _run(results: Path, phantom: Path, method: str, *extra: str) -> None:
    args = ["run", "--method", method, "--data-root", str(phantom), "--results", str(results), "--no-progress"]
    result = runner.invoke(app, [*args, "--no-baseline", *extra])
    assert result.exit_code == 0, result.output


def _predict(results: Path, run: str, out: Path, *images: str, extra: tuple[str, ...] = ()):
    args = ["predict", *images, "--run", run, "--results", str(results), "--out", str(out), "--device", "cpu"]
    return runner.invoke(app, [*args, *extra])


def _moved(src: Path, dest: Path, zoom: float) -> Path:
    """The file resampled to ``zoom`` times its voxel size, then stored with flipped and permuted voxel axes."""
    image = nib.load(str(src))
    spacing = np.array(image.header.get_zooms()[:3]) * zoom
    shape = np.ceil(np.array(image.shape[:3]) / zoom).astype(int)
    target = (tuple(shape), image.affine @ np.diag([*(spacing / image.header.get_zooms()[:3]), 1.0]))
    resampled = resample_from_to(image, target, order=1)
    flipped = nib.orientations.apply_orientation(np.asanyarray(resampled.dataobj), np.array([[1, -1], [2, 1], [0, 1]]))
    transform = nib.orientations.inv_ornt_aff(np.array([[1, -1], [2, 1], [0, 1]]), resampled.shape)
    moved = nib.Nifti1Image(flipped.astype(np.float32), resampled.affine @ transform)
    nib.save(moved, str(dest))
    return dest


def test_a_stored_network_predicts_a_test_scan_as_the_run_did(tmp_path, smoke_phantom, smoke_cases, tiny_basicunet):
    _run(tmp_path, smoke_phantom, tiny_basicunet, "--folds", "0")
    (run_dir,) = (tmp_path / "runs").iterdir()
    case = next(c for c in smoke_cases if c.case_id == "training01_01")  # fold 0's test patient
    result = _predict(tmp_path, tiny_basicunet, tmp_path / "out", str(case.images["flair"]))
    assert result.exit_code == 0, result.output
    written = nib.load(tmp_path / "out" / "training01_01_flair_pp_mask.nii.gz")
    stored = nib.load(run_dir / "jobs" / "fold0-seed0" / "predictions" / "training01_01.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), np.asanyarray(stored.dataobj))
    probability = nib.load(tmp_path / "out" / "training01_01_flair_pp_probability.nii.gz")
    assert probability.shape == case.shape and np.asanyarray(probability.dataobj).max() <= 1.0


def test_a_reoriented_resampled_scan_gets_a_mask_on_its_own_grid(tmp_path, smoke_phantom, smoke_cases):
    _run(tmp_path, smoke_phantom, "threshold", "--folds", "0")
    case = next(c for c in smoke_cases if c.case_id == "training01_02")
    scan = _moved(case.images["flair"], tmp_path / "moved_flair.nii.gz", zoom=1.5)
    truth = _moved(case.masks["mask1"], tmp_path / "moved_mask.nii.gz", zoom=1.5)
    result = _predict(tmp_path, "threshold", tmp_path / "out", str(scan))
    assert result.exit_code == 0, result.output
    written, given = nib.load(tmp_path / "out" / "moved_flair_mask.nii.gz"), nib.load(scan)
    assert written.shape == given.shape
    np.testing.assert_allclose(written.affine, given.affine, atol=1e-6)
    assert nib.aff2axcodes(written.affine) == nib.aff2axcodes(given.affine) != ("R", "A", "S")
    mask = np.asanyarray(written.dataobj) > 0
    reference = np.asanyarray(nib.load(truth).dataobj) >= 0.5
    spacing = given.header.get_zooms()[:3]
    original = nib.load(next((tmp_path / "runs").glob("*/jobs/fold0-seed0/predictions/training01_02.nii.gz")))
    dice_here = evaluate_case(mask, reference, spacing)["dice"]
    dice_run = evaluate_case(np.asanyarray(original.dataobj) > 0, case.load_mask("mask1"), case.spacing_mm)["dice"]
    assert dice_here > 0.5 * dice_run > 0  # the same threshold found the lesions on the other grid too


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d, good: str(d / "absent.nii.gz"), "does not exist"),
        (lambda d, good: str(_write(d / "four_d.nii.gz", np.zeros((4, 4, 4, 2), np.float32))), "expected a 3D"),
        (lambda d, good: str(_write(d / "nan.nii.gz", np.full((4, 4, 4), np.nan, np.float32))), "non-finite"),
        (lambda d, good: str(_text(d / "broken.nii.gz")), "cannot read as NIfTI"),
        (lambda d, good: f"t1={good}", "missing ['flair']"),
    ],
)
def test_bad_input_is_refused_naming_the_file_before_anything_is_written(
    tmp_path, smoke_phantom, smoke_cases, make, message
):
    _run(tmp_path, smoke_phantom, "threshold", "--folds", "0")
    bad = make(tmp_path, smoke_cases[0].images["flair"])
    result = _predict(tmp_path, "threshold", tmp_path / "out", bad)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert message in text
    assert not (tmp_path / "out").exists()


def test_several_folds_need_a_choice_and_an_ensemble_averages_them(tmp_path, smoke_phantom, smoke_cases):
    _run(tmp_path, smoke_phantom, "threshold", "--folds", "0,1")
    scan = str(smoke_cases[0].images["flair"])
    unclear = _predict(tmp_path, "threshold", tmp_path / "a", scan)
    assert unclear.exit_code == 2 and "choose one with --fold" in " ".join(unclear.output.split())
    assert _predict(tmp_path, "threshold", tmp_path / "b", scan, extra=("--fold", "1")).exit_code == 0
    assert _predict(tmp_path, "threshold", tmp_path / "c", scan, extra=("--ensemble",)).exit_code == 0
    missing = _predict(tmp_path, "threshold", tmp_path / "d", scan, extra=("--fold", "4"))
    assert missing.exit_code == 2 and "no finished job for --fold 4" in " ".join(missing.output.split())


@pytest.mark.skipif(not FLAIR.is_file(), reason="../shared/data/open_ms_data absent")
def test_the_real_open_ms_data_flair_gets_a_mask_on_its_grid(tmp_path, smoke_phantom):
    _run(tmp_path, smoke_phantom, "threshold", "--folds", "0")
    result = _predict(tmp_path, "threshold", tmp_path / "out", str(FLAIR))
    assert result.exit_code == 0, result.output
    name = FLAIR.name.removesuffix(".nii.gz")
    written, given = nib.load(tmp_path / "out" / f"{name}_mask.nii.gz"), nib.load(FLAIR)
    assert written.shape == given.shape[:3]
    np.testing.assert_allclose(written.affine, given.affine, atol=1e-5)
    mask = np.asanyarray(written.dataobj) > 0
    image = np.asanyarray(given.dataobj)
    assert mask.any() and not (mask & (image == 0)).any()  # lesions called inside the scan's own brain


def _write(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return path


def _text(path: Path) -> Path:
    path.write_text("not a nifti file")
    return path
