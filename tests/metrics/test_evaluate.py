"""File and folder evaluation of NIfTI masks: columns, spacing from the header, errors naming the file."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from msbench.benchmark.evaluate import evaluate_paths, evaluate_to_csv, load_mask
from msbench.benchmark.metrics import CSV_COLUMNS, MetricParams, evaluate_case

ZOOMS = (0.5, 1.0, 3.0)


def write(path: Path, data: np.ndarray, zooms=ZOOMS, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(data, np.diag([*zooms[:3], 1.0]) if affine is None else affine)
    image.header.set_zooms(zooms[: data.ndim])
    nib.save(image, str(path))
    return path


def masks(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = np.zeros((12, 10, 8), np.uint8)
    ref[2:6, 2:6, 2:5] = 1
    ref[8:10, 6:9, 5:7] = 1
    pred = ref.copy()
    pred[rng.random(ref.shape) < 0.05] = 1
    return pred, ref


def test_file_pair_uses_header_spacing_and_the_csv_column_order(tmp_path):
    pred, ref = masks()
    write(tmp_path / "p" / "sub-01.nii.gz", pred)
    write(tmp_path / "r" / "sub-01.nii.gz", ref)
    cases, lesions = evaluate_paths(tmp_path / "p" / "sub-01.nii.gz", tmp_path / "r" / "sub-01.nii.gz")
    assert list(cases.columns[: len(CSV_COLUMNS) + 1]) == ["case", *CSV_COLUMNS]
    assert cases["case"].tolist() == ["sub-01"]
    expected = evaluate_case(pred.astype(bool), ref.astype(bool), ZOOMS)
    for key in CSV_COLUMNS:
        np.testing.assert_equal(cases[key].iloc[0], expected[key])
    assert cases["vol_ref_ml"].iloc[0] == pytest.approx(ref.sum() * 1.5 / 1000)
    assert cases["suite_version"].iloc[0] and cases["connectivity"].iloc[0] == 18
    assert set(lesions["case"]) == {"sub-01"}


def test_folders_are_matched_by_name_and_csvs_are_written(tmp_path):
    for name, seed in (("a.nii.gz", 0), ("b.nii", 1)):
        pred, ref = masks(seed)
        write(tmp_path / "pred" / name, pred)
        write(tmp_path / "ref" / name, ref)
    out = tmp_path / "out" / "cases.csv"
    table = evaluate_to_csv(tmp_path / "pred", tmp_path / "ref", out, lesions_out=tmp_path / "les.csv", connectivity=6)
    written = pd.read_csv(out)
    assert written["case"].tolist() == ["a", "b"] == table["case"].tolist()
    assert (written["connectivity"] == 6).all()
    assert set(pd.read_csv(tmp_path / "les.csv")["case"]) == {"a", "b"}


def test_a_file_in_only_one_folder_is_named(tmp_path):
    pred, ref = masks()
    write(tmp_path / "pred" / "a.nii.gz", pred)
    write(tmp_path / "ref" / "a.nii.gz", ref)
    write(tmp_path / "pred" / "extra.nii.gz", pred)
    with pytest.raises(ValueError, match="extra.nii.gz"):
        evaluate_paths(tmp_path / "pred", tmp_path / "ref")


def test_shape_and_affine_mismatches_name_both_files(tmp_path):
    pred, ref = masks()
    p = write(tmp_path / "p.nii.gz", pred[:, :, :6])
    r = write(tmp_path / "r.nii.gz", ref)
    with pytest.raises(ValueError, match="Shape mismatch") as info:
        evaluate_paths(p, r)
    assert str(p) in str(info.value) and str(r) in str(info.value)
    shifted = np.diag([*ZOOMS, 1.0])
    shifted[0, 3] = 2.0
    p = write(tmp_path / "p2.nii.gz", pred, affine=shifted)
    with pytest.raises(ValueError, match="Affine mismatch") as info:
        evaluate_paths(p, r)
    assert str(p) in str(info.value) and str(r) in str(info.value)


@pytest.mark.parametrize(
    "data, match",
    [
        (np.full((4, 4, 4), 2, np.int16), "values"),
        (np.full((4, 4, 4), np.nan, np.float32), "NaN"),
        (np.zeros((4, 4, 4, 2), np.uint8), "3D"),
    ],
)
def test_invalid_masks_raise_naming_the_file(tmp_path, data, match):
    path = write(tmp_path / "bad.nii.gz", data, zooms=(1.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=match) as info:
        load_mask(path)
    assert str(path) in str(info.value)


def test_unreadable_and_missing_files_are_named(tmp_path):
    garbage = tmp_path / "broken.nii.gz"
    garbage.write_bytes(b"not a nifti file")
    with pytest.raises(ValueError, match="broken.nii.gz"):
        load_mask(garbage)
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        evaluate_paths(tmp_path / "missing.nii.gz", garbage)
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="both be NIfTI files or both be folders"):
        evaluate_paths(tmp_path / "d", garbage)


def test_load_mask_returns_c_contiguous_bool_and_spacing(tmp_path):
    pred, _ = masks()
    data, spacing, affine = load_mask(write(tmp_path / "m.nii", pred))
    assert data.dtype == bool and data.flags["C_CONTIGUOUS"]
    assert spacing == ZOOMS and affine.shape == (4, 4)
    np.testing.assert_array_equal(data, pred.astype(bool))


def test_every_row_carries_the_provenance_columns(tmp_path):
    from msbench.benchmark.metrics import provenance_columns

    for name, seed in (("a.nii.gz", 0), ("b.nii.gz", 1)):
        pred, ref = masks(seed)
        write(tmp_path / "pred" / name, pred)
        write(tmp_path / "ref" / name, ref)
    table = evaluate_to_csv(
        tmp_path / "pred", tmp_path / "ref", tmp_path / "cases.csv", connectivity=26, ndsc_reference_load=0.01
    )
    expected = provenance_columns(MetricParams(connectivity=26, ndsc_reference_load=0.01))
    assert {"suite_version", "connectivity", "anima_min_volume_mm3", "slice_coverage"} <= set(expected)
    assert list(table.columns[-len(expected) :]) == list(expected)
    for key, value in expected.items():
        assert (table[key] == value).all(), key


def test_evaluate_help_states_the_conventions():
    from typer.testing import CliRunner

    from msbench.benchmark.cli import app

    result = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    for phrase in ("larger of the two directed 95th percentiles", "medpy pools", "empty prediction", "nDSC"):
        assert phrase in text, phrase


def test_domain_brain_masks_set_ndsc_n_for_files_and_folders(tmp_path):
    pred, ref = masks()
    brain = np.zeros_like(ref)
    brain[1:11, 1:9, 1:7] = 1  # 480 voxels
    for folder, data in (("p", pred), ("r", ref), ("b", brain)):
        write(tmp_path / folder / "sub-01.nii.gz", data)
    expected = evaluate_case(pred.astype(bool), ref.astype(bool), ZOOMS, domain=brain.astype(bool))
    one, _ = evaluate_paths(
        tmp_path / "p/sub-01.nii.gz", tmp_path / "r/sub-01.nii.gz", domain=tmp_path / "b/sub-01.nii.gz"
    )
    many, _ = evaluate_paths(tmp_path / "p", tmp_path / "r", domain=tmp_path / "b")
    for table in (one, many):
        assert (table["domain_voxels"].iloc[0], table["domain_is_mask"].iloc[0]) == (480, 1)
        assert table["ndsc"].iloc[0] == pytest.approx(expected["ndsc"])
    with pytest.raises(ValueError, match="folder of brain masks"):
        evaluate_paths(tmp_path / "p", tmp_path / "r", domain=tmp_path / "b/sub-01.nii.gz")
    (tmp_path / "b2").mkdir()
    with pytest.raises(FileNotFoundError, match="no brain mask for"):
        evaluate_paths(tmp_path / "p", tmp_path / "r", domain=tmp_path / "b2")
    write(tmp_path / "b3" / "sub-01.nii.gz", np.ones((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="not on the reference grid"):
        evaluate_paths(tmp_path / "p", tmp_path / "r", domain=tmp_path / "b3")
