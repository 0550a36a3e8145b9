"""The leaderboard app rendered with Streamlit's AppTest on a store made by a real smoke run."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

from .helpers import app_on, copy_store

PAGES = (
    "Leaderboard", "Statistics", "Per-case Dice", "Lesions", "Volumes", "Cost", "Training", "Tuning", "Shift",
    "Overlays",
)  # fmt: skip


@pytest.fixture(scope="module")
def app(board_store, monkeypatch_module):
    return app_on(board_store, monkeypatch_module)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _tables(at) -> dict[str, pd.DataFrame]:
    titles = [h.value for h in at.subheader]
    return dict(zip(titles, (d.value for d in at.dataframe), strict=True))


def test_every_page_renders_and_draws_its_plot(app):
    # Cost: Dice against peak memory and against throughput, from the profile every trained job stores.
    # Statistics: one tested patient, so no rank-stability plot (every bootstrap draw is that patient).
    images = {"Lesions": 1, "Volumes": 1, "Training": 1, "Overlays": 1}
    # Interactive (Vega-Lite, values on hover): per-case Dice; Cost: Dice against training peak and throughput.
    charts = {"Per-case Dice": 1, "Cost": 2}
    for page in PAGES:
        app.sidebar.radio(key="page").set_value(page).run()
        assert not app.exception, (page, app.exception)
        # One tested patient: the only warnings say that nothing is ranked or can be significant.
        expected = {"Leaderboard": "Not ranked: 1 test patient", "Statistics": "No difference can be significant"}
        warnings = [w.value for w in app.warning if expected.get(page, "\0") not in w.value]
        assert not app.error and not warnings, (page, [e.value for e in app.error], warnings)
        assert len(app.get("image")) == images.get(page, 0), page
        assert len(app.get("vega_lite_chart")) == charts.get(page, 0), page
        if page == "Shift":
            assert "No cross-dataset run" in app.info[0].value
        if page == "Tuning":
            assert "untuned" in app.info[0].value
    app.sidebar.radio(key="page").set_value("Leaderboard").run()


def test_one_tested_patient_is_not_ranked_and_the_page_says_why_first(app):
    (banner,) = app.warning
    assert banner.value.startswith("synth-ms / isbi2015 / mask1 / smoke: Not ranked: 1 test patient;")
    assert "smallest attainable two-sided p with n=1: 1.0" in banner.value
    assert app.subheader[0].value == "Methods, ordered by mean Dice"
    methods = _tables(app)["Methods, ordered by mean Dice"]
    assert "rank" not in methods.columns and list(methods["mean Dice"]) == sorted(methods["mean Dice"], reverse=True)


def test_sections_keep_failed_leaking_and_human_rows_out_of_the_ranking(app, board_store):
    tables = _tables(app)
    ranked = tables["Methods, ordered by mean Dice"]
    assert set(ranked["method"]) == {"threshold", "basicunet-tiny"}
    assert set(ranked["modalities"]) == {"flair", "flair+t1"}  # the two threshold rows are told apart
    assert set(ranked["protocol"]) == {"isbi2015"}
    assert ranked["Dice 95% CI"].eq("n = 1").all()  # one tested patient: no zero-width interval
    human = next(v for k, v in tables.items() if k.startswith("Human reference"))
    assert list(human["method"]) == ["inter-rater"]
    leaking = next(v for k, v in tables.items() if k.startswith("Leaking protocol"))
    assert list(leaking["protocol"]) == ["rondinella2023"]
    failed = tables["Failed or partial runs: never ranked"]
    assert list(failed["method"]) == ["failing"] and "always fails" in failed["error"].iloc[0]
    cases = pd.read_csv(next((board_store / "runs").glob("threshold__synth-ms__isbi2015__*/cases.csv")))
    row = ranked[ranked["modalities"] == "flair"]
    assert row["mean Dice"].iloc[0] == pytest.approx(cases.loc[cases["reference"] == "mask1", "dice"].mean())
    assert row["median Dice"].iloc[0] == pytest.approx(cases.loc[cases["reference"] == "mask1", "dice"].median())


def test_filters_change_the_table(app, board_store):
    store = board_store
    before = _tables(app)["Methods, ordered by mean Dice"]
    app.sidebar.multiselect(key="modalities").set_value(["flair"]).run()
    after = _tables(app)["Methods, ordered by mean Dice"]
    assert len(after) == len(before) - 1 and set(after["modalities"]) == {"flair"}
    app.sidebar.multiselect(key="modalities").set_value(["flair", "flair+t1"]).run()
    app.sidebar.selectbox(key="reference").set_value("truth").run()
    truth = _tables(app)["Methods, ordered by mean Dice"]
    assert not np.allclose(truth["mean Dice"].to_numpy(), before["mean Dice"].to_numpy())
    cases = pd.read_csv(next((store / "runs").glob("threshold__synth-ms__isbi2015__*/cases.csv")))
    row = truth[(truth["method"] == "threshold") & (truth["modalities"] == "flair")]
    assert row["mean Dice"].iloc[0] == pytest.approx(cases.loc[cases["reference"] == "truth", "dice"].mean())
    app.sidebar.selectbox(key="reference").set_value("mask1").run()


def _per_case_dice(store, pattern: str) -> pd.Series:
    cases = pd.read_csv(next((store / "runs").glob(f"{pattern}/cases.csv")))
    return cases[cases["reference"] == "mask1"].groupby("case")["dice"].mean()


def test_statistics_say_no_difference_can_be_significant_instead_of_a_matrix_of_ones(app):
    app.sidebar.radio(key="page").set_value("Statistics").run()
    (warning,) = app.warning
    assert warning.value.startswith("No difference can be significant: the pairs share at most 1 test patient")
    assert "cannot give p below 1.0 with n=1" in warning.value
    shown = [d.value for d in app.dataframe]
    assert len(shown) == 2  # patients per pair and median differences; no p matrix
    assert shown[0].loc["threshold [flair]", "basicunet-tiny [flair]"] == 1  # one patient, four scans
    assert any("every bootstrap draw is the same patient" in i.value for i in app.info)
    app.sidebar.radio(key="page").set_value("Leaderboard").run()


def test_damaged_index_and_truncated_csv_are_refused_in_the_page(board_store, tmp_path, monkeypatch):
    broken = copy_store(board_store, tmp_path / "sqlite")
    for suffix in ("-wal", "-shm"):
        (broken / f"msbench.sqlite{suffix}").unlink(missing_ok=True)
    (broken / "msbench.sqlite").write_bytes(b"this is not a database" * 100)
    at = app_on(broken, monkeypatch)
    assert not at.exception and "msbench store reindex" in at.error[0].value
    # A job's files are not read by the page (the index holds their rows): 'msbench store check' names a cut one.


def test_the_page_says_when_the_index_is_older_than_the_run_files(board_store, tmp_path, monkeypatch):
    store = copy_store(board_store, tmp_path)
    summary = next((store / "runs").glob("threshold__synth-ms__isbi2015__*/summary.csv"))
    later = time.time_ns() + 10**9
    os.utime(summary, ns=(later, later))
    at = app_on(store, monkeypatch)
    banner = next(w.value for w in at.warning if w.value.startswith("The index of"))
    assert not at.exception and f"'msbench store reindex --results {store.name}'" in banner
    assert f"{store.name}/{summary.relative_to(store)}" in banner and str(store.resolve()) not in banner


def test_empty_or_missing_results_folder_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    at = app_on(tmp_path / "missing", monkeypatch)
    assert not at.exception and "does not exist" in at.error[0].value
    (tmp_path / "empty").mkdir()
    at = app_on(tmp_path / "empty", monkeypatch)
    assert not at.exception and "holds no msbench results" in at.error[0].value


def test_cost_page_plots_training_peaks_only_and_says_what_it_left_off(app):
    app.sidebar.radio(key="page").set_value("Cost").run()
    captions = " ".join(c.value for c in app.caption)
    # threshold's job profile has an inference peak only: off the training-peak chart, with the reason.
    assert "Left off: threshold [flair+t1], threshold [flair]: no training peak measured" in captions
    cost = app.dataframe[0].value
    assert cost["profile"].eq("job-time (single un-warmed timing)").all()
    app.sidebar.radio(key="page").set_value("Leaderboard").run()
