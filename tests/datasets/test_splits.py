"""Committed splits: assignments written out by hand, protocol rules, fingerprints, user-made K-fold files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from msbench.datasets import Case, load_split, make_kfold_split
from msbench.datasets.committed_splits import COMMITTED_SPLITS, ISBI2015_TRAINING_CASE_IDS
from msbench.datasets.splits import SPLITS_DIR, case_fingerprint


def fake_cases(ids, patient=lambda c: c, dataset: str = "x") -> list[Case]:
    """Cases with ids only: split logic never opens files."""
    return [Case(c, patient(c), None, {}, {}, dataset) for c in ids]


def isbi_cases(dataset: str = "isbi2015") -> list[Case]:
    return fake_cases(ISBI2015_TRAINING_CASE_IDS, lambda c: c.rsplit("_", 1)[0], dataset)


ISBI_FOLDS_BY_HAND = [
    # (test patient, validation patient); the other three patients train, every time point of each.
    ("training01", "training02"),
    ("training02", "training03"),
    ("training03", "training04"),
    ("training04", "training05"),
    ("training05", "training01"),
]
RONDINELLA_VAL_BY_HAND = [
    ("training02_01", "training03_01", "training04_01"),
    ("training03_01", "training04_01", "training05_01"),
    ("training01_01", "training04_01", "training05_01"),
    ("training01_01", "training02_01", "training05_01"),
    ("training01_01", "training02_01", "training03_01"),
]


def _patient(case_id: str, dataset: str) -> str:
    return case_id.rsplit("_", 1)[0] if dataset in ("isbi2015", "synth-ms") else case_id


@pytest.mark.parametrize("dataset", ["isbi2015", "synth-ms"])
def test_committed_isbi2015_folds_are_the_assignment_written_out_by_hand(dataset: str) -> None:
    split = load_split(dataset, "isbi2015", isbi_cases(dataset))
    patients = {f"training0{p}" for p in range(1, 6)}
    for fold, (test, val) in zip(split.folds, ISBI_FOLDS_BY_HAND, strict=True):
        assert {_patient(c, dataset) for c in fold.test} == {test}
        assert {_patient(c, dataset) for c in fold.val} == {val}
        assert {_patient(c, dataset) for c in fold.train} == patients - {test, val}
        n_test = 5 if test == "training03" else 4
        assert sorted(fold.test) == [f"{test}_{t:02d}" for t in range(1, n_test + 1)]


@pytest.mark.parametrize("dataset", ["isbi2015", "synth-ms"])
def test_committed_rondinella2023_folds_are_the_assignment_written_out_by_hand(dataset: str) -> None:
    split = load_split(dataset, "rondinella2023", isbi_cases(dataset))
    for k, (fold, val) in enumerate(zip(split.folds, RONDINELLA_VAL_BY_HAND, strict=True), start=1):
        assert fold.test == (f"training0{k}_04",)
        assert tuple(sorted(fold.val)) == val


@pytest.mark.parametrize("split", COMMITTED_SPLITS, ids=lambda s: f"{s.dataset}__{s.protocol}")
def test_every_committed_split_is_patient_level_and_tests_each_patient_once(split) -> None:
    cases = fake_cases(split.case_ids, lambda c: _patient(c, split.dataset), split.dataset)
    loaded = load_split(split.dataset, split.protocol, cases)
    patients = {c.patient_id for c in cases}
    tested = []
    for fold in loaded.folds:
        roles = {role: {_patient(c, split.dataset) for c in getattr(fold, role)} for role in ("train", "val", "test")}
        assert roles["val"] and not roles["val"] & roles["test"]  # validation never sees a test patient
        assert sorted([*fold.train, *fold.val, *fold.test]) == sorted(split.case_ids)
        if not loaded.leaks_timepoints:
            assert not roles["train"] & roles["test"]
        tested += sorted(roles["test"])
    assert sorted(tested) == sorted(patients)  # every patient is tested exactly once


def test_a_changed_case_list_is_caught_by_the_fingerprint(tmp_path: Path) -> None:
    source = load_split("isbi2015", "isbi2015", isbi_cases()).path
    text = source.read_text().replace("training05_04", "training05_09")  # case list edited, fingerprint kept
    edited = tmp_path / "edited.json"
    edited.write_text(text)
    renamed = [c if c.case_id != "training05_04" else replace(c, case_id="training05_09") for c in isbi_cases()]
    with pytest.raises(ValueError, match=r"edited\.json: the split does not match the data on disk"):
        load_split("isbi2015", str(edited), renamed)
    data = json.loads(text)
    data["case_fingerprint"] = case_fingerprint([c.case_id for c in renamed])
    edited.write_text(json.dumps(data))
    assert load_split("isbi2015", str(edited), renamed).folds[4].test[-1] == "training05_09"


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
