"""The leaderboard's data layer, table, statistics and exports on the smoke store (no Streamlit)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from msbench.benchmark.cli import app as cli
from msbench.benchmark.store import reindex
from msbench.leaderboard.data import StoreError, load_store
from msbench.leaderboard.export import export
from msbench.leaderboard.overlays import best_slices, case_files, load_case, prediction_file
from msbench.leaderboard.plots import curves_plot, pareto_front
from msbench.leaderboard.statistics import holm, rank_stability, wilcoxon_pair
from msbench.leaderboard.table import main_table

from .helpers import app_on, copy_store


def test_data_layer_does_not_import_torch():
    code = (
        "import sys, msbench.leaderboard.data, msbench.leaderboard.table, msbench.leaderboard.statistics, "
        "msbench.leaderboard.export; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_job_profiles_are_shown_and_missing_ones_read_as_not_profiled(board_store, tmp_path):
    table = main_table(load_store(board_store))
    assert table["tuning"].eq("untuned").all()
    row = table[(table["method"] == "basicunet-tiny") & (table["reference"] == "mask1")].iloc[0]
    profile_path = next((board_store / "runs").glob(f"{row['run_id']}/jobs/*/profile.json"))
    assert row["parameters"] == json.loads(profile_path.read_text())["params_total"]
    store = copy_store(board_store, tmp_path)
    with sqlite3.connect(store / "msbench.sqlite") as conn:
        conn.execute("DELETE FROM profiles")
    table = main_table(load_store(store))
    for column in ("parameters", "GFLOPs", "train peak GiB", "inference peak GiB", "volumes/hour"):
        # Numbers, NaN where not profiled, so the table sorts by cost; the text exports say "not profiled".
        assert pd.api.types.is_float_dtype(table[column]) and table[column].isna().all(), column
    markdown = export(load_store(store), "md")
    assert "not profiled" in markdown


def test_profiles_trials_and_tuning_key_are_read_when_present(board_store, tmp_path, monkeypatch):
    store = copy_store(board_store, tmp_path)
    run_id = next(p.name for p in (store / "runs").glob("threshold__synth-ms__isbi2015__*"))
    with sqlite3.connect(store / "msbench.sqlite") as conn:
        conn.execute("DELETE FROM profiles WHERE run_id = ?", (run_id,))  # the job's own profile: latency only
        conn.execute(
            "INSERT INTO profiles (profile_id, run_id, method, params_total, flops_forward, peak_train_bytes, "
            "peak_infer_bytes, volumes_per_hour, created) "
            "VALUES ('p1', ?, 'threshold', 3, 2e9, 1073741824, 536870912, 900, '2026-01-01')",
            (run_id,),
        )
        conn.executemany(
            "INSERT INTO trials (study, number, state, value) VALUES ('s', ?, ?, ?)",
            [(0, "COMPLETE", 0.2), (1, "PRUNED", None), (2, "COMPLETE", 0.4)],
        )
    manifest_path = store / "runs" / run_id / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tuning"] = {"study": "s", "storage": "x", "trial": 2, "params": {}, "value": 0.4, "n_trials_budget": 3}
    manifest_path.write_text(json.dumps(manifest))
    data = load_store(store)
    row = main_table(data).query("run_id == @run_id and reference == 'mask1'").iloc[0]
    assert row["parameters"] == 3 and row["GFLOPs"] == pytest.approx(2.0) and row["train peak GiB"] == 1.0
    assert row["inference peak GiB"] == 0.5 and row["profile"].startswith("repeatable (msbench profile")
    assert row["volumes/hour"] == 900 and row["tuning"].startswith("3 trials (study s, trial 2)")
    at = app_on(store, monkeypatch)
    for page in ("Cost", "Tuning"):
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception and not at.info and (at.get("image") or at.get("vega_lite_chart")), page


def test_stale_code_hash_is_named_by_store_check_not_computed_by_the_board(board_store, tmp_path):
    store = copy_store(board_store, tmp_path)
    record_path = next((store / "runs").glob("threshold__synth-ms__isbi2015__*/jobs/fold0-seed0/job.json"))
    record = json.loads(record_path.read_text())
    record["code_hash"] = "0" * 16
    record_path.write_text(json.dumps(record))
    reindex(store)
    code, text = _check(store)
    assert code == 1 and f"run {record['run_id']}: jobs fold0-seed0 ran other code of 'threshold'" in text
    assert text.count("ran other code") == 1  # the untouched runs are not named
    table = main_table(load_store(store))  # the board reads the store only: it computes no code hash
    assert table["stale"].eq("").all()


def test_index_behind_the_files_is_refused(board_store, tmp_path):
    store = copy_store(board_store, tmp_path)
    with sqlite3.connect(store / "msbench.sqlite") as conn:
        conn.execute("DELETE FROM jobs WHERE run_id LIKE 'inter-rater%'")
    with pytest.raises(StoreError, match="msbench store reindex"):
        load_store(store)


def _files(folder):
    """Every file's time and size; SQLite's -wal/-shm files left out (a WAL reader opens them to read)."""
    return {
        p: (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(folder.rglob("*"))
        if not p.name.endswith(("-wal", "-shm"))
    }


def test_the_board_never_writes_the_store_and_names_reindex_when_the_index_is_missing(board_store, tmp_path):
    store = copy_store(board_store, tmp_path)
    before = _files(store)
    main_table(load_store(store))
    assert _files(store) == before
    for suffix in ("", "-wal", "-shm"):
        (store / f"msbench.sqlite{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreError, match="has no index .*'msbench store reindex --results"):
        load_store(store)
    assert not (store / "msbench.sqlite").exists()  # the board built no index


def test_the_board_lists_run_files_newer_than_the_index(board_store, tmp_path):
    store = copy_store(board_store, tmp_path)
    assert load_store(store).behind == ()
    summary = next((store / "runs").glob("threshold__synth-ms__isbi2015__*/summary.csv"))
    index = [p for p in (store / "msbench.sqlite", store / "msbench.sqlite-wal") if p.exists()]
    later = max(p.stat().st_mtime_ns for p in index) + 10**6  # a millisecond after the index was last written
    os.utime(summary, ns=(later, later))
    assert load_store(store).behind == (summary,)
    reindex(store)
    assert load_store(store).behind == ()


def test_the_data_layer_and_the_table_load_no_numba_or_torch(board_store):
    code = (
        "import sys\nfrom pathlib import Path\nfrom msbench.leaderboard.data import load_store\n"
        "from msbench.leaderboard.export import export\nimport msbench.leaderboard.statistics\n"
        f"export(load_store(Path({str(board_store)!r})), 'csv')\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert "numba" not in loaded and "torch" not in loaded


def _check(store):
    result = CliRunner().invoke(cli, ["store", "check", "--results", str(store)])
    return result.exit_code, " ".join(result.output.split())


def test_store_check_finds_edited_missing_and_truncated_job_files(board_store, tmp_path):
    store = copy_store(board_store, tmp_path)
    code, text = _check(store)
    assert code == 0 and text.endswith(f"{store}: every run and job file matches the index.")
    assert "method 'failing' is not registered here; its code is unchecked." in text  # a test-only method
    jobs = sorted(p.parent for p in (store / "runs").glob("*__synth-ms__isbi2015__*/jobs/fold0-seed0/cases.csv"))
    edited, missing, cut = (jobs[0] / "cases.csv", jobs[1] / "cases.csv", jobs[2] / "lesions.csv")
    edited.write_text(edited.read_text().replace(",0.", ",0.1", 1))
    missing.unlink()
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    code, text = _check(store)
    assert code == 1
    assert f"{edited} changed after the index was built; run 'msbench store reindex --results {store}'" in text
    assert f"{missing} is missing; delete the job folder {missing.parent}" in text
    assert f"{cut} is truncated" in text
    assert str(jobs[3]) not in text  # the untouched jobs are not named
    for path in (missing, cut):  # restored from the store it was copied from
        path.write_bytes((board_store / path.relative_to(store)).read_bytes())
    reindex(store)
    assert _check(store)[0] == 0


def test_wilcoxon_zero_differences_and_holm_by_hand():
    x = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.4])
    patients = np.array([f"p{i}" for i in range(6)])
    assert wilcoxon_pair(x, x.copy(), patients) == (1.0, 6)
    y = x - np.array([0.0, 0.1, 0.2, 0.3, 0.05, -0.01])
    p, n = wilcoxon_pair(x, y, patients)
    assert n == 6 and p == pytest.approx(stats.wilcoxon(x[1:], y[1:]).pvalue)  # the zero difference is dropped
    assert holm([0.01, 0.04, 0.03, float("nan")])[:3] == pytest.approx([0.03, 0.06, 0.06])


def test_methods_are_ranked_only_where_their_test_patients_allow(board_store):
    data = load_store(board_store)
    table = main_table(data)
    methods = table[table["section"] == "methods"]
    assert methods["rank"].isna().all() and methods["ranking"].eq("not ranked: 1 test patient").all()
    assert (table.loc[table["section"] != "methods", "ranking"] == "").all()
    # The same runs as if tested on 6 patients (the fewest a two-sided test needs to reach 0.05): numbered.
    six = replace(data, runs=data.runs.assign(n_patients=6.0))
    table = main_table(six)
    ranked = table[(table["section"] == "methods") & (table["reference"] == "mask1")]
    assert list(ranked["mean Dice"]) == sorted(ranked["mean Dice"])[::-1] and ranked["rank"].iloc[0] == 1
    assert list(ranked["rank"]) == list(ranked["mean Dice"].rank(ascending=False, method="min"))
    assert ranked["ranking"].eq("ranked by mean Dice (6 test patients)").all()
    five = main_table(replace(data, runs=data.runs.assign(n_patients=5.0)))
    assert five.loc[five["section"] == "methods", "rank"].isna().all()


def test_rank_stability_rows_sum_to_one_and_follow_a_clear_winner():
    index = pd.MultiIndex.from_tuples([(f"p{i // 2}", f"c{i}") for i in range(10)], names=["patient", "case"])
    rng = np.random.default_rng(1)
    matrix = pd.DataFrame({"good": rng.uniform(0.7, 0.9, 10), "bad": rng.uniform(0.1, 0.3, 10)}, index=index)
    freq = rank_stability(matrix, n_boot=200)
    assert freq.sum(axis=1).to_numpy() == pytest.approx([1.0, 1.0])
    assert freq.loc["good", 1] == 1.0 and freq.loc["bad", 2] == 1.0


def test_pareto_front_by_hand():
    memory = np.array([1.0, 2.0, 3.0, 1.5])
    dice = np.array([0.5, 0.7, 0.6, 0.4])
    assert list(pareto_front(memory, dice)) == [0, 1]
    throughput = np.array([100.0, 50.0, 10.0, 200.0])
    assert list(pareto_front(throughput, dice, lower_cost_is_better=False)) == [3, 0, 1]


def test_overlay_volumes_align_with_the_scored_counts(board_store):
    data = load_store(board_store)
    run_id = next(r for r in data.manifests if r.startswith("threshold__synth-ms__isbi2015"))
    cases = pd.read_csv(board_store / "runs" / run_id / "cases.csv")
    row = cases[cases["reference"] == "mask1"].iloc[0]
    flair, ref = case_files(data.manifests[run_id], row["case"], "mask1")
    volumes = load_case(flair, ref, prediction_file(board_store, run_id, "fold0-seed0", row["case"]))
    assert int((volumes.prediction & volumes.reference).sum()) == row["tp"]
    assert int((volumes.prediction & ~volumes.reference).sum()) == row["fp"]
    axial = best_slices(volumes.reference, volumes.prediction)["axial"]
    assert volumes.reference[:, :, axial].sum() == volumes.reference.sum(axis=(0, 1)).max()
    assert nib.load(str(flair)).shape == volumes.flair.shape


@pytest.mark.parametrize("fmt", ["md", "csv", "latex", "html"])
def test_export_formats_hold_every_row(board_store, tmp_path, fmt):
    out = tmp_path / f"board.{fmt}"
    result = CliRunner().invoke(cli, ["leaderboard", "export", "--results", str(board_store), "--format", fmt,
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "basicunet-tiny" in text and "rondinella2023" in text and "failed or partial" in text
    if fmt == "csv":
        assert len(pd.read_csv(out)) == len(main_table(load_store(board_store)))


def test_challenger_export_is_long_and_ranked_rows_only(board_store):
    result = CliRunner().invoke(cli, ["leaderboard", "export", "--results", str(board_store), "--format", "challenger"])
    assert result.exit_code == 0, result.output
    from io import StringIO

    frame = pd.read_csv(StringIO(result.stdout))
    assert list(frame.columns) == ["task", "algorithm", "case", "metric", "value"]
    assert set(frame["algorithm"]) == {"threshold [flair]", "threshold [flair+t1]", "basicunet-tiny [flair]"}
    dice = frame.query("task == 'synth-ms/isbi2015/mask1/smoke' and algorithm == 'threshold [flair]' and metric == "
                       "'dice'")  # fmt: skip
    cases = pd.read_csv(next((board_store / "runs").glob("threshold__synth-ms__isbi2015__*/cases.csv")))
    expected = cases[cases["reference"] == "mask1"].set_index("case")["dice"]
    assert dice.set_index("case")["value"].sort_index().to_numpy() == pytest.approx(expected.sort_index().to_numpy())


def test_export_of_a_missing_store_is_an_error_message(tmp_path):
    result = CliRunner().invoke(cli, ["leaderboard", "export", "--results", str(tmp_path / "none")])
    assert result.exit_code == 2 and "does not exist" in " ".join(result.output.split())


def test_each_rater_is_scored_against_the_truth(board_store):
    data = load_store(board_store)
    table = main_table(data)
    human = table[(table["section"] == "human reference") & (table["reference"] == "truth")]
    assert set(human["method"]) == {"inter-rater", "rater mask1"}
    run_id = next(r for r in data.manifests if r.startswith("inter-rater"))
    from msbench.datasets import get_dataset

    tested = set(pd.read_csv(board_store / "runs" / run_id / "cases.csv")["case"])
    cases = [c for c in get_dataset("synth-ms").load_cases(data.manifests[run_id]["data_root"]) if c.case_id in tested]
    dice = []
    for case in cases:  # Dice from the mask files with nibabel and numpy alone
        rater = np.asanyarray(nib.load(str(case.masks["mask1"])).dataobj) > 0
        truth = np.asanyarray(nib.load(str(case.masks["truth"])).dataobj) > 0
        dice.append(2 * (rater & truth).sum() / (rater.sum() + truth.sum()))
    row = human[human["method"] == "rater mask1"].iloc[0]
    assert row["mean Dice"] == pytest.approx(np.mean(dice)) and row["cases"] == len(cases) == 4


def test_rater_rows_are_read_from_the_store_not_from_the_masks(board_store, tmp_path):
    before = main_table(load_store(board_store))
    store = copy_store(board_store, tmp_path)
    run_id = next(p.name for p in (store / "runs").glob("inter-rater__*"))
    assert not pd.read_csv(store / "runs" / run_id / "raters.csv").empty  # stored by the runner
    for path in (store / "runs").glob("*/manifest.json"):  # the dataset (its NIfTI masks) is gone
        manifest = json.loads(path.read_text())
        path.write_text(json.dumps({**manifest, "data_root": str(tmp_path / "gone")}))
    reindex(store)
    after = main_table(load_store(store))
    rows = after[after["method"] == "rater mask1"]
    assert len(rows) == 1 and rows.iloc[0]["run_id"] == f"{run_id}::mask1"
    columns = [c for c in after.columns if c != "stale"]
    pd.testing.assert_frame_equal(before[columns], after[columns])


def test_the_isbi_score_and_volume_r_shown_are_the_stored_ones(board_store, tmp_path):
    store = copy_store(board_store, tmp_path)
    run = next((store / "runs").glob("threshold__synth-ms__isbi2015__*"))
    scores = pd.read_csv(run / "scores.csv", keep_default_na=False)
    mask1 = scores["reference"] == "mask1"
    assert set(scores.loc[mask1, "metric"]) == {"isbi_score_raw", "volume_r", "volume_r_scans"}
    scores.loc[mask1 & (scores["metric"] == "isbi_score_raw"), "value"] = 0.125
    scores.loc[mask1 & (scores["metric"] == "volume_r"), "value"] = 0.5
    scores.to_csv(run / "scores.csv", index=False)
    reindex(store)
    table = main_table(load_store(store))
    row = table[(table["run_id"] == run.name) & (table["reference"] == "mask1")].iloc[0]
    assert row["ISBI score"] == 0.125 and row["volume r"] == 0.5
    human = table[table["method"].eq("inter-rater") & table["reference"].eq("mask1")].iloc[0]
    assert row["ISBI score (normalised)"] == pytest.approx(90 * 0.125 / human["ISBI score"])


def test_runs_without_stored_scores_are_named(board_store, tmp_path):
    assert load_store(board_store).unscored == []
    store = copy_store(board_store, tmp_path)
    run = next((store / "runs").glob("threshold__synth-ms__isbi2015__*"))
    (run / "scores.csv").unlink()  # a run made before the runner stored its scores
    reindex(store)
    data = load_store(store)
    assert data.unscored == [run.name]
    assert main_table(data).query("run_id == @run.name")["ISBI score"].isna().all()
    code, text = _check(store)
    assert code == 1 and f"{run / 'scores.csv'} is missing" in text


def test_paper_claims_come_from_the_cards_with_their_data_named():
    from dataclasses import asdict

    from msbench.leaderboard.table import _claim as claim_of
    from msbench.methods import get_card

    cases = pd.DataFrame({"dice": [0.5, 0.7], "dice_lesion_slices": [0.6, 0.8]})

    def _claim(method, cases, protocol=""):  # the claims as a run's manifest records them (plan.py)
        return claim_of({"claims": [asdict(c) for c in get_card(method).claims]}, cases, protocol)

    unet3d = _claim("unet3d", cases, "isbi2015")
    assert unet3d["paper Dice"] == 0.78 and "private data: shown, never ranked" in unet3d["paper data"]
    assert unet3d["measured (paper's metric)"] == pytest.approx(0.6)  # the claim's key is whole-volume Dice
    fcd = _claim("fcdensenet", cases, "rondinella2023")
    assert fcd["paper Dice"] == 0.8432 and "ISBI 2015" in fcd["paper data"]
    assert fcd["measured (paper's metric)"] == pytest.approx(0.7)  # Dice over the lesion slices, as the paper
    assert np.isnan(_claim("threshold", cases)["paper Dice"])


def test_numbers_are_printed_by_unit_and_missing_values_as_a_dash():
    from msbench.leaderboard.display import format_value, styled, with_scans

    cells = (
        ("mean Dice", 0.41868), ("HD95 mm", 43.0296), ("volumes/hour", 704626.2), ("cases", 4.0),
        ("train peak GiB", None), ("LTPR", float("nan")), ("rank", pd.NA), ("inference peak GiB", 0.0027561),
    )  # fmt: skip
    assert [format_value(c, v) for c, v in cells] == ["0.419", "43.0", "705,000", "4", "—", "—", "—", "0.00276"]
    frame = pd.DataFrame({"volume r": [0.4123, np.nan], "volume r scans": [4.0, 4.0], "mean Dice": [0.5, None]})
    shown = with_scans(frame)
    assert list(shown["volume r"]) == ["0.41 (4 scans)", "—"] and "volume r scans" not in shown
    assert "—" in styled(shown).to_html() and "None" not in styled(shown).to_html()


def test_each_method_s_loss_gets_its_own_panel_four_a_row():
    """Losses of different methods are not on one scale: a panel each, at most four a row (nine made one row whose
    titles ran into each other); validation Dice shares one axis."""
    runs = [f"m{i}" for i in range(9)]
    curves = pd.DataFrame(
        [(r, "fold0-seed0", e, metric, 1.0 / e) for r in runs for e in (1, 2, 3) for metric in ("loss", "val_dice")],
        columns=["run_id", "job_id", "epoch", "metric", "value"],
    )
    labels = {r: r.upper() for r in runs}
    figure = curves_plot(curves, labels, "loss", {})
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert sorted(ax.get_title() for ax in panels) == sorted(labels.values())
    rows = {round(ax.get_position().y0, 3) for ax in panels}
    assert len(rows) == 3 and all(sum(round(a.get_position().y0, 3) == y for a in panels) <= 4 for y in rows)
    assert len([ax for ax in curves_plot(curves, labels, "val_dice", {}).axes if ax.get_visible()]) == 1


def test_paper_claims_are_read_from_the_runs_manifest_not_the_card(board_store, tmp_path):
    from dataclasses import asdict

    from msbench.methods import get_card

    store = copy_store(board_store, tmp_path)
    path = next((store / "runs").glob("threshold__synth-ms__isbi2015__*/manifest.json"))
    manifest = json.loads(path.read_text())
    assert manifest["claims"] == []  # what plan recorded: the threshold card claims nothing
    manifest["claims"] = [asdict(c) for c in get_card("unet3d").claims]
    path.write_text(json.dumps(manifest))
    reindex(store)
    table = main_table(load_store(store))
    shown = table.loc[table["run_id"] == manifest["run_id"], "paper Dice"]
    assert len(shown) and set(shown) == {0.78}  # one row per reference
