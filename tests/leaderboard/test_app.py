"""The leaderboard app, rendered headless with Streamlit's AppTest over a real results store."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from msbench.benchmark.runner import RunRequest, run_benchmark
from msbench.leaderboard import APP
from msbench.leaderboard.data import leaderboard_table, load_index


@pytest.fixture(scope="module")
def results(tmp_path_factory, smoke_phantom):
    out = tmp_path_factory.mktemp("results")
    run_benchmark(RunRequest("threshold", "synth-ms", out, data_root=smoke_phantom, folds=(0, 1), progress=False))
    return out


def test_table_shows_method_dataset_protocol_and_mean_dice(results, monkeypatch):
    monkeypatch.setenv("MSBENCH_RESULTS", str(results))
    monkeypatch.setattr(sys, "argv", ["app.py"])
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert list(frame["method"]) == ["threshold"]
    assert {"dataset", "protocol", "mean Dice"} <= set(frame.columns)
    cases = pd.read_csv(next((results / "runs").glob("threshold__*/cases.csv")))
    expected = cases.loc[cases["reference"] == "mask1", "dice"].mean()
    assert frame["mean Dice"].iloc[0] == pytest.approx(expected)
    assert frame["dataset"].iloc[0] == "synth-ms" and frame["protocol"].iloc[0] == "isbi2015"


def test_missing_store_is_an_error_in_the_page(tmp_path, monkeypatch):
    monkeypatch.setenv("MSBENCH_RESULTS", str(tmp_path / "nothing"))
    monkeypatch.setattr(sys, "argv", ["app.py"])
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert at.error and "holds no msbench results" in at.error[0].value


def test_data_layer_ranks_by_dice_and_filters_the_reference(results):
    index = load_index(results)
    table = leaderboard_table(index, "mask2")
    assert set(table["reference"]) == {"mask2"}
    fake = pd.concat([index.assign(method="better", dice_mean=index["dice_mean"] + 0.1), index])
    assert leaderboard_table(fake, "mask1")["method"].iloc[0] == "better"


def test_leaderboard_data_layer_does_not_import_torch():
    import subprocess

    code = "import sys, msbench.leaderboard.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
