"""Loading a case's images, and the datasets list/info tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from msbench.datasets import dataset_info, describe_datasets, get_dataset, list_datasets


def test_loading_an_absent_modality_lists_what_the_case_has(tmp_path: Path, tl) -> None:
    (case, *_) = get_dataset("nnunet-raw").load_cases(tl.write_nnunet(tmp_path / "ds"))
    with pytest.raises(KeyError, match=r"no 'pd' image; it has \['flair', 't1'\]"):
        case.load_images(("pd",))


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
