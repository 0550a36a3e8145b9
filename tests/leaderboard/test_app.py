"""The leaderboard app rendered with Streamlit's AppTest on a store made by a real smoke run."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

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
    images = {"Statistics": 1, "Per-case Dice": 1, "Lesions": 1, "Volumes": 1, "Cost": 2, "Training": 1, "Overlays": 1}
    for page in PAGES:
        app.sidebar.radio(key="page").set_value(page).run()
        assert not app.exception, (page, app.exception)
        assert not app.error and not app.warning, (page, [e.value for e in [*app.error, *app.warning]])
        assert len(app.get("image")) == images.get(page, 0), page
        if page == "Shift":
            assert "No cross-dataset run" in app.info[0].value
        if page == "Tuning":
            assert "untuned" in app.info[0].value
    app.sidebar.radio(key="page").set_value("Leaderboard").run()


def test_sections_keep_failed_leaking_and_human_rows_out_of_the_ranking(app, board_store):
    tables = _tables(app)
    ranked = tables["Ranked methods"]
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
    before = _tables(app)["Ranked methods"]
    app.sidebar.multiselect(key="modalities").set_value(["flair"]).run()
    after = _tables(app)["Ranked methods"]
    assert len(after) == len(before) - 1 and set(after["modalities"]) == {"flair"}
    app.sidebar.multiselect(key="modalities").set_value(["flair", "flair+t1"]).run()
    app.sidebar.selectbox(key="reference").set_value("truth").run()
    truth = _tables(app)["Ranked methods"]
    assert not np.allclose(truth["mean Dice"].to_numpy(), before["mean Dice"].to_numpy())
    cases = pd.read_csv(next((store / "runs").glob("threshold__synth-ms__isbi2015__*/cases.csv")))
    row = truth[(truth["method"] == "threshold") & (truth["modalities"] == "flair")]
    assert row["mean Dice"].iloc[0] == pytest.approx(cases.loc[cases["reference"] == "truth", "dice"].mean())
    app.sidebar.selectbox(key="reference").set_value("mask1").run()


def _per_case_dice(store, pattern: str) -> pd.Series:
    cases = pd.read_csv(next((store / "runs").glob(f"{pattern}/cases.csv")))
    return cases[cases["reference"] == "mask1"].groupby("case")["dice"].mean()


def test_statistics_equal_a_direct_scipy_computation(app, board_store):
    app.sidebar.radio(key="page").set_value("Statistics").run()
    holm_shown, raw_shown = app.dataframe[0].value, app.dataframe[1].value
    runs = {
        "threshold [flair+t1]": "threshold+flair-t1__synth-ms__isbi2015__*",
        "threshold [flair]": "threshold__synth-ms__isbi2015__*",
        "basicunet-tiny [flair]": "basicunet-tiny__*",
        "inter-rater [flair]": "inter-rater__*",
    }
    dice = pd.DataFrame({name: _per_case_dice(board_store, glob) for name, glob in runs.items()})
    pairs = list(itertools.combinations(dice.columns, 2))
    raw = []
    for a, b in pairs:
        diff = dice[a] - dice[b]
        raw.append(1.0 if (diff == 0).all() else stats.wilcoxon(dice[a], dice[b], zero_method="wilcox").pvalue)
    # Holm by hand: k-th smallest p times (m - k + 1), running maximum, capped at 1.
    order = np.argsort(raw)
    adjusted, running = {}, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(raw) - k) * raw[i]))
        adjusted[pairs[i]] = running
    for (a, b), p in zip(pairs, raw, strict=True):
        assert raw_shown.loc[a, b] == pytest.approx(p) and raw_shown.loc[b, a] == pytest.approx(p)
        assert holm_shown.loc[a, b] == pytest.approx(adjusted[(a, b)])
    assert raw_shown.loc["threshold [flair]", "basicunet-tiny [flair]"] < 1.0
    ranks = next(d.value for d in app.dataframe if list(d.value.columns) == [1, 2, 3])
    assert "inter-rater [flair]" not in ranks.index and len(ranks) == 3  # compared above, never ranked
    assert any("not ranked" in c.value for c in app.caption)
    app.sidebar.radio(key="page").set_value("Leaderboard").run()


def test_damaged_index_and_truncated_csv_are_refused_in_the_page(board_store, tmp_path, monkeypatch):
    broken = copy_store(board_store, tmp_path / "sqlite")
    for suffix in ("-wal", "-shm"):
        (broken / f"msbench.sqlite{suffix}").unlink(missing_ok=True)
    (broken / "msbench.sqlite").write_bytes(b"this is not a database" * 100)
    at = app_on(broken, monkeypatch)
    assert not at.exception and "msbench store reindex" in at.error[0].value
    cut = copy_store(board_store, tmp_path / "csv")
    cases = next((cut / "runs").glob("threshold__synth-ms__isbi2015__*/jobs/fold0-seed0/cases.csv"))
    cases.write_bytes(cases.read_bytes()[: cases.stat().st_size // 2])
    at = app_on(cut, monkeypatch)
    shown = f"{cut.name}/{cases.relative_to(cut)}"  # the page names the store by its folder, not its path
    assert not at.exception and shown in at.error[0].value and "truncated" in at.error[0].value


def test_empty_or_missing_results_folder_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    at = app_on(tmp_path / "missing", monkeypatch)
    assert not at.exception and "does not exist" in at.error[0].value
    (tmp_path / "empty").mkdir()
    at = app_on(tmp_path / "empty", monkeypatch)
    assert not at.exception and "holds no msbench results" in at.error[0].value
