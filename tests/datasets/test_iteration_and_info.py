"""The case iterator (lazy, typed arrays, grid carried along) and the datasets list/info tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from msbench.datasets import LoadedCase, dataset_info, describe_datasets, get_dataset, iter_cases, list_datasets


def test_iter_cases_yields_float32_channels_bool_mask_spacing_and_affine(tmp_path: Path, tl) -> None:
    cases = get_dataset("nnunet-raw").load_cases(tl.write_nnunet(tmp_path / "ds"))
    loaded = list(iter_cases(cases, ("flair", "t1"), "label"))
    assert [item.case_id for item in loaded] == ["ms_001", "ms_002", "ms_003"]
    first = loaded[0]
    assert isinstance(first, LoadedCase)
    assert first.image.shape == (2, *tl.SHAPE) and first.image.dtype == np.float32
    assert first.image.flags.c_contiguous
    assert first.mask is not None and first.mask.dtype == bool and first.mask.sum() == 9
    assert first.spacing_mm == tl.SPACING and np.allclose(first.affine, tl.affine())
    assert first.modalities == ("flair", "t1") and first.shape == tl.SHAPE
    assert next(iter_cases(cases, ("t1",))).mask is None


def test_iter_cases_reads_one_case_at_a_time(tmp_path: Path, tl) -> None:
    root = tl.write_nnunet(tmp_path / "ds", channels=("FLAIR",))
    cases = get_dataset("nnunet-raw").load_cases(root)
    iterator = iter_cases(cases, ("flair",), "label")
    assert next(iterator).case_id == "ms_001"
    (root / "imagesTr" / "ms_002_0000.nii.gz").write_bytes(b"not a nifti")  # damaged after listing
    with pytest.raises(ValueError, match=r"ms_002_0000\.nii\.gz: cannot read"):
        next(iterator)


def test_iter_cases_unknown_modality_lists_what_the_case_has(tmp_path: Path, tl) -> None:
    cases = get_dataset("nnunet-raw").load_cases(tl.write_nnunet(tmp_path / "ds"))
    with pytest.raises(KeyError, match=r"no 'pd' image; it has \['flair', 't1'\]"):
        next(iter_cases(cases, ("pd",)))


def test_dataset_info_counts_lesions_with_18_connectivity_and_load_in_ml(tmp_path: Path, tl) -> None:
    root = tl.write_nnunet(tmp_path / "ds", cases=("a", "b"), channels=("FLAIR",))
    touching = np.zeros(tl.SHAPE, np.uint8)
    touching[1, 1, 1] = touching[2, 2, 2] = 1  # corner neighbours: one lesion at 26, two at 18
    touching[4, 4, 4] = touching[5, 5, 4] = 1  # edge neighbours: one lesion at 18 and 26
    tl.write_volume(root / "labelsTr" / "b.nii.gz", touching)
    info = dataset_info("nnunet-raw", root)
    assert list(info.columns) == [
        "case",
        "patient",
        "timepoint",
        "modalities",
        "shape",
        "spacing_mm",
        "reference",
        "n_lesions",
        "lesion_load_ml",
    ]
    row = info.set_index("case").loc["b"]
    assert row["n_lesions"] == 3 and row["modalities"] == "flair" and row["shape"] == tl.SHAPE
    assert row["lesion_load_ml"] == pytest.approx(4 * 1.0 * 1.0 * 3.0 / 1000)
    assert info.set_index("case").loc["a", "n_lesions"] == 2  # the cube and the single voxel
    assert dataset_info("nnunet-raw", root, connectivity=26).set_index("case").loc["b", "n_lesions"] == 2


def test_dataset_info_of_a_dataset_without_references(tmp_path: Path, tl) -> None:
    info = dataset_info("isbi2015-test", tl.write_isbi_test(tmp_path, (2,)))
    assert list(info["case"]) == ["test01_01", "test01_02"] and info["n_lesions"].isna().all()
    assert list(info["timepoint"]) == [1, 2]


def test_describe_datasets_lists_every_dataset_with_its_root_status(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MSBENCH_MSSEG2016_ROOT", str(tmp_path))
    monkeypatch.delenv("MSBENCH_ISBI2015_ROOT", raising=False)
    table = describe_datasets().set_index("name")
    assert list(table.index) == list_datasets()
    assert table.loc["msseg2016", "root_status"] == f"$MSBENCH_MSSEG2016_ROOT={tmp_path} (found)"
    assert table.loc["isbi2015", "root_status"] == "$MSBENCH_ISBI2015_ROOT not set"
    assert table.loc["isbi2015", "protocols"] == "isbi2015, rondinella2023"
    assert table.loc["isbi2015-test", "protocols"] == "(prediction only)"
