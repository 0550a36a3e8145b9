"""Cross-dataset protocol: fit and select on A's folds, score A's test patients (in-domain) and every scan of B."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.fitting import predict_on_training_grid
from msbench.benchmark.store import dump
from msbench.datasets import Case, get_dataset
from msbench.leaderboard.shift import domain_shift, shift_table
from msbench.methods import Prediction

runner = CliRunner()
SHARED_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "open_ms_data"


@pytest.fixture(scope="module")
def other_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dataset B: another phantom seed on a coarser grid (4.5 mm instead of the smoke budget's 3 mm), 2 patients."""
    from msbench.datasets.phantom import generate_synth_ms

    out = tmp_path_factory.mktemp("synth-b") / "phantom"
    return generate_synth_ms(out, seed=1, resolution_mm=4.5, n_patients=2, progress=False)


def _cross_run(results: Path, phantom: Path, other: Path, method: str, *extra: str):
    args = ["run", "--method", method, "--dataset", "synth-ms", "--budget", "smoke", "--results", str(results)]
    args += ["--data-root", str(phantom), "--test-dataset", "synth-ms", "--test-data-root", str(other)]
    return runner.invoke(app, [*args, "--no-progress", "--folds", "0", *extra])


def test_cross_dataset_run_scores_a_test_patients_and_every_scan_of_b(
    tmp_path: Path, smoke_phantom: Path, other_phantom: Path, tiny_basicunet: str
) -> None:
    result = _cross_run(tmp_path, smoke_phantom, other_phantom, tiny_basicunet)
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(f"{tiny_basicunet}__")]
    assert "__synth-ms-to-synth-ms__" in run_dir.name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    b_cases = get_dataset("synth-ms").load_cases(other_phantom)
    assert manifest["test_dataset"]["protocol"] == "all-scans"
    assert manifest["test_dataset"]["cases"] == [c.case_id for c in b_cases]
    assert manifest["domains"]["shifted"] == {"dataset": "synth-ms", "protocol": "all-scans"}
    assert manifest["domains"]["in-domain"]["protocol"] == manifest["protocol"]

    record = json.loads((run_dir / "jobs" / "fold0-seed0" / "job.json").read_text())
    assert record["train_spacing_mm"] == [3.0, 3.0, 3.0]
    assert record["shifted_cases"] == [c.case_id for c in b_cases]
    cases = pd.read_csv(run_dir / "cases.csv")
    in_domain, shifted = cases[cases["domain"] == "in-domain"], cases[cases["domain"] == "shifted"]
    assert set(in_domain["case"]) == set(record["test_cases"])  # fitted and selected on A only
    assert set(shifted["case"]) == {c.case_id for c in b_cases}
    assert not set(record["train_cases"] + record["val_cases"]) & set(in_domain["case"])

    # B's masks are written on B's own (4.5 mm) grid, beside A's in-domain predictions.
    first = b_cases[0]
    written = nib.load(run_dir / "jobs" / "fold0-seed0" / "shifted" / f"{first.case_id}.nii.gz")
    assert written.shape == nib.load(first.images["flair"]).shape
    assert np.allclose(written.affine, nib.load(first.images["flair"]).affine)

    # summary.csv is in-domain only; summary_shifted.csv is B's; the shift table is their side-by-side with the drop.
    summary = pd.read_csv(run_dir / "summary.csv", dtype={"seed": str})
    row = summary[(summary.seed == "all") & (summary.reference == "truth") & (summary.metric == "dice")]
    assert row["mean"].iloc[0] == pytest.approx(in_domain[in_domain.reference == "truth"]["dice"].mean())
    table = shift_table(tmp_path)
    dice = table[(table.method == tiny_basicunet) & (table.metric == "dice")].iloc[0]
    expected_shifted = shifted[shifted.reference == "truth"]["dice"].mean()
    assert dice["shifted"] == pytest.approx(expected_shifted)
    assert dice["drop"] == pytest.approx(row["mean"].iloc[0] - expected_shifted)
    assert dice["test_dataset"] == "synth-ms" and dice["test_protocol"] == "all-scans"

    # The index keeps shifted rows apart: case_metrics stays in-domain for every existing reader.
    tables = dump(tmp_path)
    mine = tables["case_metrics"][tables["case_metrics"].run_id == run_dir.name]
    assert set(mine["case"]) == set(in_domain["case"])
    assert set(tables["shifted_case_metrics"]["case"]) == {c.case_id for c in b_cases}

    baseline = manifest.get("baseline") or json.loads((run_dir / "manifest.json").read_text())["baseline"]
    assert "beats_baseline_shifted" in baseline

    # The leaderboard reads a store with cross-dataset runs (its check counts the shifted rows of cases.csv too).
    from msbench.leaderboard.data import load_store

    data = load_store(tmp_path)
    assert run_dir.name in set(data.runs["run_id"])


def test_test_data_root_without_test_dataset_is_refused(tmp_path: Path, smoke_phantom: Path) -> None:
    args = ["run", "--method", "threshold", "--results", str(tmp_path / "r"), "--data-root", str(smoke_phantom)]
    result = runner.invoke(app, [*args, "--test-data-root", str(tmp_path), "--no-progress"])
    assert result.exit_code == 2
    assert "--test-data-root is given without --test-dataset" in " ".join(result.output.split())
    assert not (tmp_path / "r" / "runs").exists()


def test_prediction_runs_on_the_training_spacing_and_returns_on_the_case_grid(tmp_path: Path) -> None:
    shape = (40, 36, 30)
    grid = np.indices(shape).astype(np.float32)
    blob = ((grid[0] - 20) ** 2 + (grid[1] - 18) ** 2 + (grid[2] - 15) ** 2 < 81).astype(np.float32)
    image = 1.0 + 2.0 * blob
    path = tmp_path / "flair.nii.gz"
    nib.save(nib.Nifti1Image(image, np.diag([1.5, 1.5, 1.5, 1.0])), path)
    case = Case("c", "p", None, {"flair": path}, {})
    seen: list[tuple] = []

    def predict(c: Case) -> Prediction:
        seen.append((c.shape, c.spacing_mm))
        return Prediction(mask=c.load_image("flair") > 2.0, probability=(c.load_image("flair") - 1.0) / 2.0)

    prediction = predict_on_training_grid(predict, case, (3.0, 3.0, 3.0), ("flair",))
    assert seen == [((20, 18, 15), (3.0, 3.0, 3.0))]
    assert prediction.mask.shape == shape and prediction.probability.shape == shape
    truth = blob > 0
    dice = 2 * (prediction.mask & truth).sum() / (prediction.mask.sum() + truth.sum())
    assert dice > 0.85
    seen.clear()
    same = predict_on_training_grid(predict, case, (1.55, 1.5, 1.45), ("flair",))  # within 10%: as it is
    assert seen == [(shape, (1.5, 1.5, 1.5))] and np.array_equal(same.mask, image > 2.0)


def test_domain_shift_puts_both_summaries_side_by_side() -> None:
    def summary(mean: float, reference: str) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"seed": "all", "reference": reference, "metric": "dice", "mean": mean, "n_patients": 3},
                {"seed": "0", "reference": reference, "metric": "dice", "mean": 0.0, "n_patients": 3},
                {"seed": "all", "reference": "other", "metric": "dice", "mean": 0.0, "n_patients": 3},
            ]
        )

    table = domain_shift(summary(0.6, "truth"), summary(0.45, "consensus"), "truth", "consensus", ("dice",))
    assert table["metric"].tolist() == ["dice"]
    assert table["in_domain"].iloc[0] == 0.6 and table["shifted"].iloc[0] == 0.45
    assert table["drop"].iloc[0] == pytest.approx(0.15) and table["relative_drop"].iloc[0] == pytest.approx(0.25)


@pytest.mark.skipif(not SHARED_SAMPLE.is_dir(), reason="../shared/data/open_ms_data is absent")
def test_synth_ms_to_the_real_open_ms_data_patient(tmp_path: Path, smoke_phantom: Path) -> None:
    patients = [p for p in (SHARED_SAMPLE / "cross_sectional" / "MNI").iterdir() if any(p.glob("FLAIR*"))]
    real = tmp_path / "real" / "MNI"
    real.mkdir(parents=True)
    for patient in patients:
        os.symlink(patient, real / patient.name)
    args = ["run", "--method", "threshold", "--dataset", "synth-ms", "--results", str(tmp_path / "r")]
    args += ["--data-root", str(smoke_phantom), "--test-dataset", "lesjak-3dms", "--test-data-root", str(real)]
    result = runner.invoke(app, [*args, "--no-progress", "--folds", "0"])
    assert result.exit_code == 0, result.output
    table = shift_table(tmp_path / "r")
    dice = table[table.metric == "dice"].iloc[0]
    assert dice["test_dataset"] == "lesjak-3dms" and dice["test_reference"] == "consensus"
    assert dice["n_shifted"] == len(patients)
    assert 0.0 < dice["shifted"] <= 1.0
