"""Committed splits: regenerated from their generators, protocol rules, fingerprints, user-made K-fold files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msbench.datasets import Case, load_split, make_kfold_split
from msbench.datasets.committed_splits import COMMITTED_SPLITS, ISBI2015_TRAINING_CASE_IDS
from msbench.datasets.splits import SPLITS_DIR


def fake_cases(ids, patient=lambda c: c, dataset: str = "x") -> list[Case]:
    """Cases with ids only: split logic never opens files."""
    return [Case(c, patient(c), None, {}, {}, dataset) for c in ids]


def isbi_cases(dataset: str = "isbi2015") -> list[Case]:
    return fake_cases(ISBI2015_TRAINING_CASE_IDS, lambda c: c.rsplit("_", 1)[0], dataset)


@pytest.mark.parametrize("split", COMMITTED_SPLITS, ids=lambda s: f"{s.dataset}__{s.protocol}")
def test_committed_file_equals_its_generator_output(split) -> None:
    assert split.path.read_text() == split.text()


def test_every_committed_file_has_a_generator() -> None:
    on_disk = {p.name for p in SPLITS_DIR.glob("*.json")}
    assert on_disk == {s.path.name for s in COMMITTED_SPLITS}


@pytest.mark.parametrize("dataset", ["isbi2015", "synth-ms"])
def test_isbi2015_protocol_is_patient_level_with_one_validation_patient(dataset: str) -> None:
    split = load_split(dataset, "isbi2015", isbi_cases(dataset))
    assert not split.leaks_timepoints
    tested = []
    for fold in split.folds:
        patients = {role: {c.rsplit("_", 1)[0] for c in getattr(fold, role)} for role in ("train", "val", "test")}
        assert len(patients["test"]) == 1 and len(patients["val"]) == 1 and len(patients["train"]) == 3
        assert not (patients["test"] & (patients["train"] | patients["val"]))
        tested += patients["test"]
    assert sorted(tested) == [f"training0{p}" for p in range(1, 6)]


@pytest.mark.parametrize("dataset", ["isbi2015", "synth-ms"])
def test_rondinella2023_is_17_train_3_val_1_test_at_time_point_4_and_leaks(dataset: str) -> None:
    split = load_split(dataset, "rondinella2023", isbi_cases(dataset))
    assert split.leaks_timepoints
    assert [f.test for f in split.folds] == [(f"training0{p}_04",) for p in range(1, 6)]
    for fold in split.folds:
        assert (len(fold.train), len(fold.val), len(fold.test)) == (17, 3, 1)
        patient = fold.test[0].rsplit("_", 1)[0]
        assert {c.rsplit("_", 1)[0] for c in fold.val}.isdisjoint({patient})
        assert f"{patient}_01" in fold.train


@pytest.mark.parametrize(("dataset", "n"), [("msseg2016", 15), ("lesjak-3dms", 30)])
def test_kfold5_splits_test_every_patient_once_with_validation_patients(dataset: str, n: int) -> None:
    split = next(s for s in COMMITTED_SPLITS if s.dataset == dataset)
    loaded = load_split(dataset, "kfold5", fake_cases(split.case_ids))
    assert len(split.case_ids) == n and len(loaded.folds) == 5
    assert sorted(c for f in loaded.folds for c in f.test) == sorted(split.case_ids)
    for fold in loaded.folds:
        assert len(fold.val) == max(1, n // 10) and not set(fold.val) & set(fold.test)


def test_a_split_that_does_not_match_the_data_on_disk_is_an_error() -> None:
    cases = isbi_cases()[:-1]
    with pytest.raises(ValueError, match=r"does not match the data on disk.*Missing on disk: \['training05_04'\]"):
        load_split("isbi2015", "isbi2015", cases)
    extra = [*isbi_cases(), *fake_cases(["training06_01"])]
    with pytest.raises(ValueError, match=r"not in the split: \['training06_01'\]"):
        load_split("isbi2015", "isbi2015", extra)


def test_unknown_protocol_explains_how_to_make_a_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MSBENCH_SPLITS_DIR", raising=False)
    with pytest.raises(KeyError, match=r"make_kfold_split\('nnunet-raw'"):
        load_split("nnunet-raw", "kfold5", fake_cases(["a", "b"]))


def test_make_kfold_split_writes_a_file_loaded_by_path_or_env(tmp_path: Path, monkeypatch) -> None:
    cases = fake_cases([f"s{i:02d}" for i in range(12)], lambda c: f"p{int(c[1:]) // 2}", "nnunet-raw")
    path = make_kfold_split("nnunet-raw", cases, k=3, seed=7, out=tmp_path)
    assert path == tmp_path / "nnunet-raw__kfold3.json"
    by_path = load_split("nnunet-raw", path, cases)
    assert by_path.protocol == "kfold3" and len(by_path.folds) == 3
    for fold in by_path.folds:
        test_patients = {c.patient_id for c in fold.select(cases, "test")}
        assert len(test_patients) == 2
        assert not test_patients & {c.patient_id for c in [*fold.select(cases, "train"), *fold.select(cases, "val")]}
    monkeypatch.setenv("MSBENCH_SPLITS_DIR", str(tmp_path))
    assert load_split("nnunet-raw", "kfold3", cases).sha256 == by_path.sha256
    with pytest.raises(ValueError, match="does not match the data on disk"):
        load_split("nnunet-raw", "kfold3", cases[:-1])
    with pytest.raises(ValueError, match="made for dataset 'nnunet-raw', not 'lesjak-3dms'"):
        load_split("lesjak-3dms", str(path), cases)


def test_make_kfold_split_is_deterministic_and_protects_an_existing_file(tmp_path: Path) -> None:
    cases = fake_cases([f"c{i}" for i in range(10)])
    first = make_kfold_split("x", cases, seed=1, out=tmp_path / "a.json").read_text()
    assert make_kfold_split("x", cases, seed=1, out=tmp_path / "b.json").read_text() == first
    assert make_kfold_split("x", cases, seed=2, out=tmp_path / "c.json").read_text() != first
    make_kfold_split("x", cases, seed=1, out=tmp_path / "a.json")  # same content: fine
    with pytest.raises(FileExistsError, match="a.json"):
        make_kfold_split("x", cases, seed=2, out=tmp_path / "a.json")
    with pytest.raises(ValueError, match=r"k=11 folds for 10 patients"):
        make_kfold_split("x", cases, k=11, out=tmp_path)
    with pytest.raises(ValueError, match=r"leave no training patient"):
        make_kfold_split("x", cases[:3], k=2, out=tmp_path)


def test_a_file_that_puts_a_test_patient_in_training_must_declare_the_leak(tmp_path: Path) -> None:
    cases = fake_cases([f"c{i}" for i in range(10)], lambda c: f"p{int(c[1:]) // 2}")
    path = make_kfold_split("x", cases, out=tmp_path / "s.json")
    data = json.loads(path.read_text())
    fold = data["folds"][0]
    fold["train"].append(fold["test"].pop())  # one scan of a test patient now trains
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"fold 0 trains or validates on test patients \['p\d'\]"):
        load_split("x", str(path), cases)
    data["leaks_timepoints"] = True
    path.write_text(json.dumps(data))
    assert load_split("x", str(path), cases).leaks_timepoints
