"""A cross-dataset run onto a single-rater data set has no inter-rater row: skipped under --method all, refused
when named, before anything is written."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.options import drop_inter_rater_without_second_rater
from msbench.datasets import get_dataset


def test_all_skips_inter_rater_on_a_single_rater_test_dataset() -> None:
    lesjak = get_dataset("lesjak-3dms")
    assert drop_inter_rater_without_second_rater(["threshold", "inter-rater"], "all", lesjak) == ["threshold"]


def test_naming_inter_rater_with_a_single_rater_test_dataset_is_refused(tl, tmp_path: Path, smoke_phantom) -> None:
    real = tl.write_lesjak(tmp_path / "lesjak" / "coregistered", n=2)
    results = tmp_path / "results"
    args = ["run", "--method", "threshold,inter-rater", "--dataset", "synth-ms", "--data-root", str(smoke_phantom),
            "--test-dataset", "lesjak-3dms", "--test-data-root", str(real), "--results", str(results),
            "--folds", "0", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "lesjak-3dms" in result.output and "second rater" in result.output
    assert not (results / "runs").exists()
