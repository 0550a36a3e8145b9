"""The walking skeleton: `msbench run` end to end on the smoke phantom, resumable, failures recorded."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.store import run_table
from msbench.methods import Adapter, FitReport, MethodCard, Prediction, Recipe, register
from msbench.methods.registry import _CARDS

runner = CliRunner()


class ExplodingAdapter(Adapter):
    """A method whose fit always fails, to check that failures are recorded and contained."""

    def fit(self, train: Sequence, val: Sequence) -> FitReport:
        raise RuntimeError("this method always fails")

    def predict(self, case) -> Prediction:  # pragma: no cover - never reached
        raise AssertionError


class OutOfMemoryAdapter(Adapter):
    """A method whose fit runs out of CUDA memory (raised as torch raises it)."""

    def fit(self, train: Sequence, val: Sequence) -> FitReport:
        import torch

        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def predict(self, case) -> Prediction:  # pragma: no cover - never reached
        raise AssertionError


class EmptyAdapter(Adapter):
    """Predicts no lesion anywhere: a method that cannot beat the threshold baseline."""

    def fit(self, train: Sequence, val: Sequence) -> FitReport:
        return FitReport()

    def predict(self, case) -> Prediction:
        return Prediction(mask=np.zeros(case.shape, dtype=bool))


def _test_card(name: str, adapter: str) -> MethodCard:
    return MethodCard(
        name=name,
        title=name,
        citation="test",
        input_kind="3D",
        modalities=("flair",),
        adapter=f"{__name__}:{adapter}",
        recipes={b: Recipe(epochs=1) for b in ("smoke", "quick", "paper")},
    )


@pytest.fixture
def empty_method():
    register(_test_card("empty", "EmptyAdapter"))
    yield "empty"
    _CARDS.pop("empty")


@pytest.fixture
def oom_method():
    register(_test_card("oom", "OutOfMemoryAdapter"))
    yield "oom"
    _CARDS.pop("oom")


@pytest.fixture
def exploding_method():
    register(_test_card("exploding", "ExplodingAdapter"))
    yield "exploding"
    _CARDS.pop("exploding")


def _run(results: Path, phantom: Path, method: str, *extra: str):
    args = [
        "run",
        "--method",
        method,
        "--dataset",
        "synth-ms",
        "--budget",
        "smoke",
        "--results",
        str(results),
        "--data-root",
        str(phantom),
        "--no-progress",
        *extra,
    ]
    return runner.invoke(app, args)


def _job_ids(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "jobs").iterdir() if p.is_dir() and not p.name.startswith("."))


def _run_dir(results: Path, method: str) -> Path:
    (run_dir,) = [p for p in (results / "runs").iterdir() if p.name.startswith(f"{method}__")]
    return run_dir


def test_threshold_run_writes_predictions_metrics_manifest_and_summary(tmp_path, smoke_phantom, smoke_cases):
    result = _run(tmp_path, smoke_phantom, "threshold", "--folds", "all")
    assert result.exit_code == 0, result.output
    run_dir = _run_dir(tmp_path, "threshold")

    cases = pd.read_csv(run_dir / "cases.csv")
    assert set(cases["case"]) == {c.case_id for c in smoke_cases}  # every scan is tested exactly once over 5 folds
    assert {"dice", "ppv", "sensitivity", "hd95_mm", "ltpr", "lfpr"} <= set(cases.columns)
    assert set(cases["reference"]) == {"mask1", "mask2", "truth"}
    primary = cases[cases["reference"] == "mask1"]
    assert len(primary) == len(smoke_cases)
    assert primary["dice"].between(0, 1).all() and primary["dice"].mean() > 0.05
    for fold in range(5):  # a test patient is never its own validation patient
        status = json.loads((run_dir / "jobs" / f"fold{fold}-seed0" / "job.json").read_text())
        patients = {role: {c.rsplit("_", 1)[0] for c in status[f"{role}_cases"]} for role in ("train", "val", "test")}
        assert len(patients["test"]) == 1 and len(patients["val"]) == 1 and len(patients["train"]) == 3
        assert not (patients["test"] & (patients["val"] | patients["train"]))

    case = smoke_cases[0]
    fold_of_case = next(
        p for p in (run_dir / "jobs").iterdir() if (p / "predictions" / f"{case.case_id}.nii.gz").exists()
    )
    pred = nib.load(fold_of_case / "predictions" / f"{case.case_id}.nii.gz")
    assert pred.shape == case.shape
    np.testing.assert_allclose(pred.affine, case.affine)
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1}

    manifest = json.loads((run_dir / "manifest.json").read_text())
    for key in ("commits", "config_hash", "split", "seeds", "data_fingerprint", "code_hash"):
        assert manifest[key], key
    job = json.loads((run_dir / "jobs" / "fold0-seed0" / "job.json").read_text())
    for key in ("git", "code_hash", "versions", "device", "command"):
        assert job[key], key
    assert manifest["commits"] == [str(job["git"]["commit"])]  # the manifest names only commits its jobs ran on
    assert manifest["split"]["sha256"] and manifest["status"] == "ok"
    assert job["versions"]["numpy"] == np.__version__

    summary = pd.read_csv(run_dir / "summary.csv", dtype={"seed": str})
    summary = summary[summary["seed"] == "all"]
    dice = summary[(summary["metric"] == "dice") & (summary["reference"] == "mask1")].iloc[0]
    assert dice["mean"] == pytest.approx(primary["dice"].mean())
    index = run_table(tmp_path)
    assert (index["method"] == "threshold").any()
    isbi = summary.set_index("metric")["mean"]
    assert 0 < isbi["isbi_score_raw"] < 1
    assert isbi["isbi_score_normalised"] == pytest.approx(
        90 * isbi["isbi_score_raw"] / isbi["isbi_score_inter_rater_raw"]
    )


def test_smoke_runs_the_first_fold_unless_folds_are_given(tmp_path, smoke_phantom, monkeypatch):
    monkeypatch.setenv("MSBENCH_NUM_THREADS", "1")
    assert _run(tmp_path, smoke_phantom, "threshold").exit_code == 0
    run_dir = _run_dir(tmp_path, "threshold")
    assert _job_ids(run_dir) == ["fold0-seed0"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["folds"] == [0]
    job = json.loads((run_dir / "jobs" / "fold0-seed0" / "job.json").read_text())
    assert job["device"]["torch_threads"] == 1  # the fits' threads: CPU numbers depend on them
    assert _run(tmp_path, smoke_phantom, "threshold", "--folds", "1,3").exit_code == 0
    assert _job_ids(run_dir) == ["fold0-seed0", "fold1-seed0", "fold3-seed0"]
    assert json.loads((run_dir / "manifest.json").read_text())["folds"] == [0, 1, 3]


def test_inter_rater_row_normalises_to_90_and_is_not_scored_against_itself(tmp_path, smoke_phantom):
    assert _run(tmp_path, smoke_phantom, "inter-rater", "--folds", "0").exit_code == 0
    run_dir = _run_dir(tmp_path, "inter-rater")
    assert set(pd.read_csv(run_dir / "cases.csv")["reference"]) == {"mask1", "truth"}
    summary = pd.read_csv(run_dir / "summary.csv", dtype={"seed": str})
    assert summary[summary["seed"] == "all"].set_index("metric")["mean"]["isbi_score_normalised"] == pytest.approx(90)


def test_rerun_reuses_finished_folds_and_recomputes_a_lost_one(tmp_path, smoke_phantom):
    assert _run(tmp_path, smoke_phantom, "threshold", "--folds", "0,1").exit_code == 0
    run_dir = _run_dir(tmp_path, "threshold")
    before = (run_dir / "cases.csv").read_bytes()
    kept = (run_dir / "jobs" / "fold0-seed0" / "job.json").read_text()
    shutil.rmtree(run_dir / "jobs" / "fold1-seed0")

    result = _run(tmp_path, smoke_phantom, "threshold", "--folds", "0,1")
    assert result.exit_code == 0, result.output
    assert (run_dir / "jobs" / "fold0-seed0" / "job.json").read_text() == kept  # reused, not redone
    assert json.loads((run_dir / "jobs" / "fold1-seed0" / "job.json").read_text())["status"] == "ok"
    assert (run_dir / "cases.csv").read_bytes() == before  # same seed, same numbers


def test_failing_method_is_recorded_and_others_keep_their_results(tmp_path, smoke_phantom, exploding_method):
    result = _run(tmp_path, smoke_phantom, f"threshold,{exploding_method}", "--folds", "0")
    assert result.exit_code == 1
    assert "this method always fails" in result.output

    failed = json.loads((_run_dir(tmp_path, exploding_method) / "jobs" / "fold0-seed0" / "job.json").read_text())
    assert failed["status"] == "failed" and "RuntimeError" in failed["error"] and failed["traceback"]
    manifest = json.loads((_run_dir(tmp_path, exploding_method) / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["n_jobs_failed"] == 1

    ok = pd.read_csv(_run_dir(tmp_path, "threshold") / "cases.csv")
    assert len(ok) > 0
    index = run_table(tmp_path)
    assert set(index["method"]) == {"threshold", exploding_method}


def test_missing_isbi2015_names_the_directory_layout_variable_and_synth_ms(tmp_path, monkeypatch):
    monkeypatch.delenv("MSBENCH_ISBI2015_ROOT", raising=False)
    missing = tmp_path / "no-isbi-here"
    result = runner.invoke(
        app,
        [
            "run",
            "--method",
            "threshold",
            "--dataset",
            "isbi2015",
            "--data-root",
            str(missing),
            "--results",
            str(tmp_path / "r"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert str(missing) in text
    assert "training01_01_flair_pp.nii" in text  # the layout expected
    assert "--data-root" in text and "MSBENCH_ISBI2015_ROOT" in text
    assert "synth-ms" in text

    unset = runner.invoke(app, ["run", "--method", "threshold", "--dataset", "isbi2015", "--results", str(tmp_path)])
    assert unset.exit_code == 2 and "MSBENCH_ISBI2015_ROOT is not set" in " ".join(unset.output.split())


def test_unknown_method_lists_the_known_ones(tmp_path, smoke_phantom):
    result = _run(tmp_path, smoke_phantom, "treshold")
    assert result.exit_code == 2
    assert "Did you mean 'threshold'" in result.output and "Known methods" in result.output


def test_run_records_whether_each_method_beats_the_threshold_baseline(tmp_path, smoke_phantom, empty_method):
    result = _run(tmp_path, smoke_phantom, empty_method, "--folds", "0")  # threshold not asked for: it runs anyway
    assert result.exit_code == 0, result.output
    assert "below" in result.output
    manifest = json.loads((_run_dir(tmp_path, empty_method) / "manifest.json").read_text())
    baseline = manifest["baseline"]
    assert baseline["method"] == "threshold" and baseline["dice_mean"] > 0
    assert baseline["method_dice_mean"] == 0 and baseline["beats_baseline"] is False

    alone = _run(tmp_path / "alone", smoke_phantom, empty_method, "--folds", "0", "--no-baseline")
    assert alone.exit_code == 0, alone.output
    assert set(run_table(tmp_path / "alone")["method"]) == {empty_method}
    assert "baseline" not in json.loads((_run_dir(tmp_path / "alone", empty_method) / "manifest.json").read_text())


def test_user_split_file_from_datasets_split_drives_a_run(tmp_path, smoke_phantom):
    made = runner.invoke(app, ["datasets", "split", "synth-ms", "--root", str(smoke_phantom), "--out", str(tmp_path)])
    assert made.exit_code == 0, made.output
    split_file = tmp_path / "synth-ms__kfold5.json"
    result = _run(tmp_path / "results", smoke_phantom, "threshold", "--protocol", str(split_file), "--folds", "0")
    assert result.exit_code == 0, result.output
    manifest = json.loads((_run_dir(tmp_path / "results", "threshold") / "manifest.json").read_text())
    assert manifest["protocol"] == "kfold5" and manifest["split"]["file"] == split_file.name


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--device", "tpu", "expected auto, cpu, cuda or cuda:N"),
        ("--method", "", "names no method"),
        ("--method", " , ", "names no method"),
        ("--modalities", "flair,dwi", "unknown ['dwi']"),
        ("--modalities", "flair,t1post", "missing from the dataset"),
        ("--batch-size", "0", "expected a positive number of samples per step"),
    ],
)
def test_options_that_cannot_be_honoured_fail_before_anything_is_written(
    tmp_path, smoke_phantom, option, value, message
):
    args = {"--method": "threshold", option: value}
    extra = [a for key, v in args.items() if key != "--method" for a in (key, v)]
    result = _run(tmp_path / "results", smoke_phantom, args["--method"], *extra)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "results").exists()  # no run folder, no failed run left in the store


def test_inter_rater_is_skipped_on_a_single_rater_dataset_unless_named():
    from msbench.benchmark.options import drop_inter_rater_without_second_rater
    from msbench.datasets import get_dataset

    single, double = get_dataset("lesjak-3dms"), get_dataset("synth-ms")
    names = ["threshold", "inter-rater", "fsh"]
    assert drop_inter_rater_without_second_rater(names, "all", single) == ["threshold", "fsh"]
    assert drop_inter_rater_without_second_rater(names, "all", double) == names
    with pytest.raises(ValueError, match="single reference"):
        drop_inter_rater_without_second_rater(names, "inter-rater,fsh", single)


def test_every_case_row_carries_the_suite_version_and_metric_parameters(tmp_path, smoke_phantom):
    from msbench.benchmark.metrics import SUITE_VERSION, MetricParams, provenance_columns

    assert _run(tmp_path, smoke_phantom, "threshold", "--folds", "0", "--no-baseline").exit_code == 0
    cases = pd.read_csv(_run_dir(tmp_path, "threshold") / "cases.csv")
    assert (cases["suite_version"] == SUITE_VERSION).all()
    for name, value in provenance_columns(MetricParams()).items():
        assert (cases[name] == value).all(), name


def test_summary_reports_each_seed_and_the_spread_over_seeds(tmp_path, smoke_phantom):
    assert _run(tmp_path, smoke_phantom, "threshold", "--folds", "0,1", "--seeds", "0,1").exit_code == 0
    run_dir = _run_dir(tmp_path, "threshold")
    cases = pd.read_csv(run_dir / "cases.csv")
    summary = pd.read_csv(run_dir / "summary.csv", dtype={"seed": str})
    dice = summary[(summary["metric"] == "dice") & (summary["reference"] == "mask1")].set_index("seed")
    assert sorted(dice.index) == ["0", "1", "all"]
    primary = cases[cases["reference"] == "mask1"]
    for seed in (0, 1):
        assert dice.loc[str(seed), "mean"] == pytest.approx(primary[primary["seed"] == seed]["dice"].mean())
        assert dice.loc[str(seed), "n_cases"] == len(primary) // 2  # one seed's scans, not both seeds pooled
    per_case = primary.groupby("case")["dice"].mean()
    assert dice.loc["all", "mean"] == pytest.approx(per_case.mean())
    assert dice.loc["all", "n_cases"] == len(per_case) and dice.loc["all", "n_seeds"] == 2
    # the threshold baseline ignores the seed: the spread over seeds is exactly zero
    assert dice.loc["all", "seed_sd"] == pytest.approx(0.0)


def test_one_tested_patient_gives_no_confidence_interval(tmp_path, smoke_phantom):
    from msbench.leaderboard.data import load_store
    from msbench.leaderboard.table import main_table

    assert _run(tmp_path, smoke_phantom, "threshold", "--folds", "0", "--no-baseline").exit_code == 0
    table = main_table(load_store(tmp_path)).query("reference == 'mask1'")
    assert table["patients"].iloc[0] == 1 and table["Dice 95% CI"].iloc[0] == "n = 1"


def test_a_trainable_method_fits_predicts_and_is_scored_through_the_runner(
    tmp_path, smoke_phantom, smoke_cases, tiny_basicunet, monkeypatch
):
    monkeypatch.setenv("MSBENCH_NUM_THREADS", "1")
    result = _run(tmp_path, smoke_phantom, tiny_basicunet, "--folds", "0", "--no-baseline")
    assert result.exit_code == 0, result.output
    run_dir = _run_dir(tmp_path, tiny_basicunet)
    fold = run_dir / "jobs" / "fold0-seed0"
    status = json.loads((fold / "job.json").read_text())
    assert status["status"] == "ok" and status["fit_seconds"] > 0
    history = pd.read_csv(fold / "train_log.csv")
    assert len(history) == 2 and history["val_dice"].between(0, 1).all()  # model selection saw the validation patient
    test_ids = set(status["test_cases"])
    assert {p.name.removesuffix(".nii.gz") for p in (fold / "probabilities").iterdir()} == test_ids
    cases = pd.read_csv(run_dir / "cases.csv")
    assert set(cases["case"]) == test_ids and cases["dice"].between(0, 1).all()
    assert json.loads((run_dir / "manifest.json").read_text())["recipe"]["iterations_per_epoch"] == 1


def test_cuda_out_of_memory_names_the_method_sizes_and_the_option_to_lower(tmp_path, smoke_phantom, oom_method):
    result = _run(tmp_path, smoke_phantom, oom_method, "--folds", "0", "--no-baseline", "--batch-size", "4")
    assert result.exit_code == 1
    record = json.loads((_run_dir(tmp_path, oom_method) / "jobs" / "fold0-seed0" / "job.json").read_text())
    assert record["status"] == "failed"
    error = record["error"]
    assert "method 'oom'" in error and "batch size 4" in error and "--batch-size (e.g. 2)" in error
    assert "Tried to allocate 2.00 GiB" in error
    manifest = json.loads((_run_dir(tmp_path, oom_method) / "manifest.json").read_text())
    assert manifest["recipe"]["batch_size"] == 4  # the override is part of the run's identity
