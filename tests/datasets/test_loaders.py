"""Every loader on tiny layouts written here: what it finds, and each error naming the file at fault."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from msbench.datasets import (
    DatasetNotFoundError,
    MissingFileError,
    get_dataset,
    isbi2015,
    lesjak,
    load_split,
    msseg2016,
    nnunet_raw,
)


def test_isbi2015_training_layout_lists_21_cases_with_four_modalities_and_both_raters(tmp_path: Path, tl) -> None:
    cases = get_dataset("isbi2015").load_cases(tl.write_isbi_training(tmp_path))
    assert len(cases) == 21
    assert [c.case_id for c in cases[:5]] == [f"training01_0{t}" for t in (1, 2, 3, 4)] + ["training02_01"]
    third = [c for c in cases if c.patient_id == "training03"]
    assert [c.timepoint for c in third] == [1, 2, 3, 4, 5]
    case = cases[0]
    assert set(case.images) == {"flair", "t1", "t2", "pd"}
    assert case.images["t1"].name == "training01_01_mprage_pp.nii"
    assert list(case.masks) == ["mask1", "mask2"]
    assert case.shape == tl.SHAPE and case.spacing_mm == tl.SPACING
    assert case.load_mask("mask2").dtype == bool
    for protocol in ("isbi2015", "rondinella2023"):
        assert len(load_split("isbi2015", protocol, cases).folds) == 5


def test_isbi2015_missing_modality_names_the_expected_file(tmp_path: Path, tl) -> None:
    tl.write_isbi_training(tmp_path)
    (tmp_path / "training/training02/preprocessed/training02_03_t2_pp.nii").unlink()
    with pytest.raises(MissingFileError, match=r"training02/preprocessed/training02_03_t2_pp\.nii"):
        isbi2015.load_training(tmp_path)


def test_isbi2015_missing_rater_mask_names_the_expected_file(tmp_path: Path, tl) -> None:
    tl.write_isbi_training(tmp_path)
    (tmp_path / "training/training05/masks/training05_04_mask2.nii").unlink()
    with pytest.raises(FileNotFoundError, match=r"training05_04_mask2\.nii"):
        isbi2015.load_training(tmp_path)


def test_isbi2015_shape_mismatch_between_image_and_mask_names_both_files(tmp_path: Path, tl) -> None:
    tl.write_isbi_training(tmp_path)
    bad = tmp_path / "training/training01/masks/training01_02_mask1.nii"
    tl.write_volume(bad, np.zeros((8, 9, 6), np.uint8))
    with pytest.raises(ValueError, match=r"training01_02_mask1\.nii has shape \(8, 9, 6\).*training01_02_flair_pp"):
        isbi2015.load_training(tmp_path)


def test_isbi2015_affine_mismatch_names_both_files(tmp_path: Path, tl) -> None:
    tl.write_isbi_training(tmp_path)
    bad = tmp_path / "training/training01/preprocessed/training01_01_pd_pp.nii"
    tl.write_volume(bad, aff=tl.affine((1.0, 1.0, 2.0)))
    with pytest.raises(ValueError, match=r"training01_01_pd_pp\.nii and .*training01_01_flair_pp\.nii have different"):
        isbi2015.load_training(tmp_path)


def test_isbi2015_without_training_folder_shows_the_layout(tmp_path: Path, tl) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"Expected layout") as info:
        isbi2015.load_training(tmp_path)
    assert str(tmp_path / "training") in str(info.value)


def test_synth_ms_truth_masks_are_picked_up(tmp_path: Path, tl) -> None:
    cases = get_dataset("synth-ms").load_cases(tl.write_isbi_training(tmp_path, truth=True))
    assert list(cases[0].masks) == ["mask1", "mask2", "truth"]
    assert len(load_split("synth-ms", "rondinella2023", cases).folds) == 5


def test_isbi2015_test_layout_has_cases_without_references(tmp_path: Path, tl) -> None:
    spec = get_dataset("isbi2015-test")
    cases = spec.load_cases(tl.write_isbi_test(tmp_path))
    assert [c.case_id for c in cases] == ["test01_01", "test01_02", "test02_01", "test02_02", "test02_03"]
    assert all(c.masks == {} and set(c.images) == {"flair", "t1", "t2", "pd"} for c in cases)
    with pytest.raises(ValueError, match="no reference masks"):
        _ = spec.primary_reference
    with pytest.raises(ValueError, match="predictions only"):
        _ = spec.default_protocol


def test_msseg2016_training_layout_with_consensus_and_seven_experts(tmp_path: Path, tl) -> None:
    cases = get_dataset("msseg2016").load_cases(tl.write_msseg(tmp_path))
    assert len(cases) == 15
    assert cases[5].case_id == "center07_patient01" and cases[5].patient_id == "center07_patient01"
    assert list(cases[0].masks) == ["consensus", *(f"manual{k}" for k in range(1, 8))]
    assert cases[0].images["t1post"].name == "GADO_preprocessed.nii.gz"
    assert cases[0].images["pd"].name == "DP_preprocessed.nii.gz"
    assert cases[0].meta["center"] == "Center_01"
    split = load_split("msseg2016", "kfold5", cases)
    assert sorted(c for f in split.folds for c in f.test) == sorted(c.case_id for c in cases)


def test_msseg2016_missing_manual_segmentation_names_the_file(tmp_path: Path, tl) -> None:
    tl.write_msseg(tmp_path)
    (tmp_path / "Training/Center_08/Patient_02/Masks/ManualSegmentation_4.nii.gz").unlink()
    with pytest.raises(MissingFileError, match=r"Center_08/Patient_02/Masks/ManualSegmentation_4\.nii\.gz"):
        msseg2016.load_training(tmp_path)


def test_msseg2016_testing_layout(tmp_path: Path, tl) -> None:
    cases = get_dataset("msseg2016-test").load_cases(tl.write_msseg(tmp_path, "Testing", ("01", "03"), n=2))
    assert [c.case_id for c in cases] == [
        "center01_patient01",
        "center01_patient02",
        "center03_patient01",
        "center03_patient02",
    ]
    assert all(c.dataset == "msseg2016-test" for c in cases)


@pytest.mark.parametrize("prefixed", [False, True])
def test_lesjak_coregistered_layout_both_spellings(tmp_path: Path, tl, prefixed: bool) -> None:
    cases = lesjak.load(tl.write_lesjak(tmp_path / "coregistered", prefixed=prefixed))
    assert [c.case_id for c in cases] == [f"patient{i:02d}" for i in range(1, 31)]
    assert set(cases[0].images) == {"flair", "t1", "t1post", "t2"}
    assert cases[0].meta["variant"] == "coregistered"
    assert cases[0].meta["brain_mask"].endswith("brainmask.nii.gz")
    assert len(load_split("lesjak-3dms", "kfold5", cases).folds) == 5


def test_lesjak_raw_layout_offers_flair_only_and_lists_the_unregistered_files(tmp_path: Path, tl) -> None:
    cases = lesjak.load(tl.write_lesjak(tmp_path / "raw", "raw", n=2))
    assert list(cases[0].images) == ["flair"] and cases[0].meta["variant"] == "raw"
    assert cases[0].meta["unregistered"].count("patient01/T") == 3
    tl.write_lesjak(tmp_path / "elsewhere", "raw", n=1)  # a folder not named raw: T1W is off FLAIR's grid
    assert lesjak.load(tmp_path / "elsewhere")[0].meta["variant"] == "raw"


def test_lesjak_mni_layout_from_the_open_ms_data_root(tmp_path: Path, tl) -> None:
    tl.write_lesjak(tmp_path / "cross_sectional" / "MNI", "mni", n=3)
    cases = get_dataset("lesjak-3dms").load_cases(tmp_path)
    assert [c.meta["variant"] for c in cases] == ["mni"] * 3
    assert cases[0].masks["consensus"].name == tl.MNI_MASK


def test_lesjak_several_variants_must_be_chosen(tmp_path: Path, tl) -> None:
    tl.write_lesjak(tmp_path / "cross_sectional" / "MNI", "mni", n=1)
    tl.write_lesjak(tmp_path / "cross_sectional" / "raw", "raw", n=1)
    with pytest.raises(DatasetNotFoundError, match="several variants"):
        lesjak.load(tmp_path)
    assert lesjak.load(tmp_path, variant="raw")[0].meta["variant"] == "raw"


def test_lesjak_masks_only_patients_are_named_and_listable(tmp_path: Path, tl) -> None:
    folder = tl.write_lesjak(tmp_path / "MNI", "mni", n=3)
    for path in (folder / "patient02").glob("*_regtoMNI.nii.gz"):
        if path.name != tl.MNI_MASK:
            path.unlink()
    with pytest.raises(MissingFileError, match=r"patient02/FLAIR_N4.*1 of 3 patients.*load_masks_only"):
        lesjak.load(folder)
    masks = lesjak.load_masks_only(folder)
    assert [c.case_id for c in masks] == ["patient01", "patient02", "patient03"]
    assert masks[1].images == {} and masks[1].shape == tl.SHAPE


def test_lesjak_missing_modality_names_the_file(tmp_path: Path, tl) -> None:
    folder = tl.write_lesjak(tmp_path / "coregistered", n=2)
    (folder / "patient02" / "T2W.nii.gz").unlink()
    with pytest.raises(MissingFileError, match=r"patient02/T2W\.nii\.gz"):
        lesjak.load(folder)


def test_nnunet_raw_layout_maps_channels_and_patients(tmp_path: Path, tl) -> None:
    root = tl.write_nnunet(tmp_path / "Dataset501_MS")
    cases = get_dataset("nnunet-raw").load_cases(root)
    assert [c.case_id for c in cases] == ["ms_001", "ms_002", "ms_003"]
    assert list(cases[0].images) == ["flair", "t1"] and list(cases[0].masks) == ["label"]
    assert [c.patient_id for c in cases] == ["ms_001", "ms_002", "ms_003"]
    (root / nnunet_raw.PATIENT_MAP).write_text(json.dumps({"ms_001": "p1", "ms_002": "p1", "ms_003": "p2"}))
    assert [c.patient_id for c in nnunet_raw.load(root)] == ["p1", "p1", "p2"]


def test_nnunet_raw_every_nonzero_label_is_lesion(tmp_path: Path, tl) -> None:
    root = tl.write_nnunet(tmp_path / "ds", cases=("a",), channels=("FLAIR",))
    labels = np.zeros(tl.SHAPE, np.uint8)
    labels[0, 0, 0], labels[1, 1, 1] = 1, 2
    tl.write_volume(root / "labelsTr" / "a.nii.gz", labels)
    assert nnunet_raw.load(root)[0].load_mask("label").sum() == 2


def test_nnunet_raw_errors_name_the_file(tmp_path: Path, tl) -> None:
    root = tl.write_nnunet(tmp_path / "ds")
    (root / "imagesTr" / "ms_002_0001.nii.gz").unlink()
    with pytest.raises(MissingFileError, match=r"imagesTr/ms_002_0001\.nii\.gz: expected channel 1 \(t1\)"):
        nnunet_raw.load(root)
    tl.write_volume(root / "imagesTr" / "ms_002_0001.nii.gz")
    tl.write_volume(root / "imagesTr" / "ms_002_0005.nii.gz")
    with pytest.raises(ValueError, match=r"ms_002_0005\.nii\.gz: expected <case>_XXXX"):
        nnunet_raw.load(root)
    (root / "imagesTr" / "ms_002_0005.nii.gz").unlink()
    (root / "labelsTr" / "ms_003.nii.gz").unlink()
    with pytest.raises(MissingFileError, match=r"labelsTr/ms_003\.nii\.gz"):
        nnunet_raw.load(root)


def test_nnunet_raw_patient_map_must_cover_every_case(tmp_path: Path, tl) -> None:
    root = tl.write_nnunet(tmp_path / "ds")
    with pytest.raises(ValueError, match=r"no patient for cases \['ms_003'\]"):
        nnunet_raw.load(root, patients={"ms_001": "a", "ms_002": "a"})


def test_nnunet_raw_bad_dataset_json_names_the_file(tmp_path: Path, tl) -> None:
    root = tl.write_nnunet(tmp_path / "ds")
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "FLAIR"}, "labels": {"background": 0}}))
    with pytest.raises(ValueError, match=r"dataset\.json: expected \"labels\""):
        nnunet_raw.load(root)
    shutil.rmtree(root / "imagesTr")
    (root / "dataset.json").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"dataset\.json"):
        nnunet_raw.load(root)


def test_every_registered_dataset_has_an_env_var_layout_and_loader() -> None:
    from msbench.datasets import list_datasets

    names = list_datasets()
    assert {"isbi2015", "isbi2015-test", "msseg2016", "lesjak-3dms", "nnunet-raw", "synth-ms"} <= set(names)
    for name in names:
        spec = get_dataset(name)
        assert spec.env_var.startswith("MSBENCH_") and spec.env_var.endswith("_ROOT")
        module, attr = spec.loader.split(":")
        assert callable(getattr(__import__(module, fromlist=[attr]), attr))
    assert "rondinella2023" in get_dataset("synth-ms").protocols


LONGITUDINAL = ("training01_01", "training01_02", "training02_01", "training02_02", "training03_01")


def test_nnunet_raw_refuses_longitudinal_names_without_a_patient_mapping(tmp_path: Path, tl, monkeypatch) -> None:
    monkeypatch.setenv(nnunet_raw.PATIENT_REGEX_ENV, "")  # the user's own setting must not leak in
    root = tl.write_nnunet(tmp_path / "ds", cases=LONGITUDINAL, channels=("FLAIR",))
    with pytest.raises(ValueError, match=r"imagesTr: the case ids look longitudinal .*training01_01.*--patient-regex"):
        nnunet_raw.load(root)
    sessions = tl.write_nnunet(tmp_path / "bids", cases=("sub-01_ses-1", "sub-01_ses-2"), channels=("FLAIR",))
    with pytest.raises(ValueError, match="look longitudinal"):
        nnunet_raw.load(sessions)  # one patient, but its time points are marked
    plain = tl.write_nnunet(tmp_path / "plain", cases=("ms_001", "ms_002", "ms_010"), channels=("FLAIR",))
    assert [c.patient_id for c in nnunet_raw.load(plain)] == ["ms_001", "ms_002", "ms_010"]  # a numbering


def test_nnunet_raw_patient_regex_from_the_argument_the_file_or_the_environment(
    tmp_path: Path, tl, monkeypatch
) -> None:
    monkeypatch.setenv(nnunet_raw.PATIENT_REGEX_ENV, "")  # the user's own setting must not leak in
    root = tl.write_nnunet(tmp_path / "ds", cases=LONGITUDINAL, channels=("FLAIR",))
    cases = nnunet_raw.load(root, patient_regex=r"(?P<patient>training\d+)_(?P<timepoint>\d+)")
    assert [(c.patient_id, c.timepoint) for c in cases] == [
        ("training01", 1),
        ("training01", 2),
        ("training02", 1),
        ("training02", 2),
        ("training03", 1),
    ]
    assert [c.patient_id for c in nnunet_raw.load(root, patient_regex="(.+)")] == list(LONGITUDINAL)  # on purpose
    monkeypatch.setenv(nnunet_raw.PATIENT_REGEX_ENV, r"(training\d+)_\d+")
    assert [c.patient_id for c in nnunet_raw.load(root)][:3] == ["training01", "training01", "training02"]
    (root / nnunet_raw.PATIENT_MAP).write_text(json.dumps({c: "p" + c[-4] for c in LONGITUDINAL}))
    assert nnunet_raw.load(root)[0].patient_id == "p1"  # the dataset's own file wins over the environment
    with pytest.raises(ValueError, match="not both"):
        nnunet_raw.load(root, patients={c: c for c in LONGITUDINAL}, patient_regex="(.+)")
    with pytest.raises(ValueError, match=r"does not match .*\['training03_01'\]"):
        nnunet_raw.load(root, patient_regex=r"(training0[12])_\d+")
    with pytest.raises(ValueError, match="has no group"):
        nnunet_raw.load(root, patient_regex=r"training\d+_\d+")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        nnunet_raw.load(root, patient_regex=r"(training")


def test_patient_regex_option_of_the_cli(tmp_path: Path, tl, monkeypatch) -> None:
    from typer.testing import CliRunner

    from msbench.benchmark.cli import app

    monkeypatch.setenv(nnunet_raw.PATIENT_REGEX_ENV, "")  # the user's own setting must not leak in
    root = tl.write_nnunet(tmp_path / "ds", cases=LONGITUDINAL, channels=("FLAIR",))
    refused = CliRunner().invoke(app, ["datasets", "split", "nnunet-raw", "--root", str(root), "--out", str(tmp_path)])
    assert refused.exit_code == 2 and "look longitudinal" in refused.output
    args = ["datasets", "split", "nnunet-raw", "--root", str(root), "--out", str(tmp_path / "s"), "--k", "3"]
    done = CliRunner().invoke(app, [*args, "--patient-regex", r"(training\d+)_\d+"])
    assert done.exit_code == 0, done.output
    split = json.loads(next((tmp_path / "s").glob("*.json")).read_text())
    assert "training01_01" in json.dumps(split)
    wrong = CliRunner().invoke(app, ["datasets", "info", "isbi2015", "--patient-regex", "(.+)"])
    assert wrong.exit_code == 2 and "applies to --dataset nnunet-raw only" in wrong.output


def test_patient_regex_travels_in_the_request_not_the_environment(tmp_path: Path, tl, monkeypatch) -> None:
    """``--patient-regex`` reaches the loader through ``RunRequest`` (and the manifest), never ``os.environ``."""
    from typer.testing import CliRunner

    from msbench.benchmark.cli import app
    from msbench.benchmark.plan import RunRequest, prepare_run

    monkeypatch.delenv(nnunet_raw.PATIENT_REGEX_ENV, raising=False)
    regex = r"(training\d+)_\d+"
    root = tl.write_nnunet(tmp_path / "ds", cases=LONGITUDINAL, channels=("FLAIR",))
    args = ["datasets", "split", "nnunet-raw", "--root", str(root), "--out", str(tmp_path / "s"), "--k", "3"]
    assert CliRunner().invoke(app, [*args, "--patient-regex", regex]).exit_code == 0
    assert nnunet_raw.PATIENT_REGEX_ENV not in os.environ
    (split,) = (tmp_path / "s").glob("*.json")
    request = RunRequest("threshold", "nnunet-raw", tmp_path / "results", data_root=root, protocol=str(split))
    setup = prepare_run(replace(request, patient_regex=regex), fingerprint=False)
    assert [c.patient_id for c in setup.cases][:3] == ["training01", "training01", "training02"]
    with pytest.raises(ValueError, match="look longitudinal"):
        prepare_run(request, fingerprint=False)
    with pytest.raises(ValueError, match="applies to --dataset nnunet-raw only"):
        get_dataset("isbi2015").load_cases(tmp_path, patient_regex=regex)
