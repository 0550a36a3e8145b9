"""Set-level statistics: summarize (patient bootstrap, NaN counts), pooled Dice, ISBI challenge score."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from msbench.benchmark.metrics import (
    SUMMARY_COLUMNS,
    isbi_challenge_score,
    pooled_dice,
    summarize,
    volume_correlation,
)


def cases_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method": ["a"] * 5 + ["b"] * 5,
            "patient": [1, 1, 2, 3, 4] * 2,
            "dice": [0.5, 0.7, np.nan, 0.9, 0.6, 0.1, 0.2, 0.3, 0.4, 0.5],
            "hd95_mm": [1.0, 2.0, 3.0, 4.0, 5.0, np.nan, np.nan, np.nan, np.nan, np.nan],
        }
    )


def test_summary_statistics_skip_nan_and_count_valid_cases():
    table = summarize(cases_table(), ["dice", "hd95_mm"], group_cols=("method",), n_boot=200)
    assert list(table.columns) == ["method", *SUMMARY_COLUMNS]
    a = table[(table["method"] == "a") & (table["metric"] == "dice")].iloc[0]
    values = np.array([0.5, 0.7, 0.9, 0.6])
    assert a["mean"] == pytest.approx(values.mean())
    assert a["sd"] == pytest.approx(values.std(ddof=1))
    assert a["median"] == pytest.approx(np.median(values))
    assert (a["n_valid"], a["n_cases"], a["n_patients"]) == (4, 5, 4)
    assert a["ci_low"] <= a["mean"] <= a["ci_high"]
    assert math.isnan(a["n_both_empty"])
    b = table[(table["method"] == "b") & (table["metric"] == "hd95_mm")].iloc[0]
    assert b["n_valid"] == 0 and all(math.isnan(b[c]) for c in ("mean", "sd", "median", "ci_low", "ci_high"))


def test_bootstrap_is_deterministic_and_resamples_patients_not_cases():
    cases = cases_table()
    first = summarize(cases, ["dice"], group_cols=("method",), seed=3)
    pd.testing.assert_frame_equal(first, summarize(cases, ["dice"], group_cols=("method",), seed=3))
    # All cases of a single patient move together: one patient gives no interval ("n = 1"), not a zero-width one.
    one = pd.DataFrame({"patient": [7, 7, 7], "dice": [0.2, 0.4, 0.9]})
    row = summarize(one, ["dice"]).iloc[0]
    assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"]) and row["n_patients"] == 1
    assert row["mean"] == pytest.approx(0.5)
    # Treating rows as patients, the same values do vary.
    row = summarize(one, ["dice"], patient_col=None).iloc[0]
    assert row["ci_low"] < row["mean"] < row["ci_high"]


def test_bootstrap_ci_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    cases = pd.DataFrame({"patient": np.repeat(np.arange(8), 2), "dice": rng.random(16)})
    row = summarize(cases, ["dice"], n_boot=500, seed=11).iloc[0]
    draws = np.random.default_rng(11).integers(0, 8, size=(500, 8))
    by_patient = [cases.loc[cases["patient"] == p, "dice"].to_numpy() for p in range(8)]
    means = [np.concatenate([by_patient[p] for p in draw]).mean() for draw in draws]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))


def test_summarize_names_missing_columns():
    with pytest.raises(KeyError, match="patient_col=None"):
        summarize(pd.DataFrame({"dice": [0.5]}))
    with pytest.raises(KeyError, match="nope"):
        summarize(cases_table(), ["nope"])


def test_pooled_dice_sums_counts_before_dividing():
    cases = pd.DataFrame({"tp": [10, 0], "fp": [0, 5], "fn": [0, 5], "method": ["m", "m"]})
    table = pooled_dice(cases, ("method",))
    assert table["dice_pooled"].iloc[0] == pytest.approx(20 / 30)


def test_volume_correlation_is_pearson_and_nan_when_undefined():
    scipy_stats = pytest.importorskip("scipy.stats")
    cases = pd.DataFrame({"vol_pred_ml": [1.0, 2.5, 2.0, 8.0], "vol_ref_ml": [1.2, 2.0, 3.0, 7.0]})
    expected = scipy_stats.pearsonr(cases["vol_pred_ml"], cases["vol_ref_ml"])[0]
    assert volume_correlation(cases) == pytest.approx(expected)
    assert math.isnan(volume_correlation(cases.iloc[:1]))
    assert math.isnan(volume_correlation(cases.assign(vol_ref_ml=1.0)))
    # Constant predictions (e.g. all empty) have no association with the reference: 0, not NaN.
    assert volume_correlation(cases.assign(vol_pred_ml=0.0)) == 0.0


def test_isbi_challenge_score_by_hand():
    rows = []
    for rater, vols in (("mask1", [1.0, 2.0, 3.0]), ("mask2", [1.0, 2.0, 4.0])):
        for scan, v in zip(("s1", "s2", "s3"), vols, strict=True):
            rows.append(
                {
                    "case": scan,
                    "reference": rater,
                    "dice": 0.8,
                    "ppv": 0.6,
                    "lfpr": 0.2,
                    "ltpr": 0.5,
                    "vol_pred_ml": v,
                    "vol_ref_ml": 2 * v,
                }  # fmt: skip
            )
    cases = pd.DataFrame(rows)
    score = isbi_challenge_score(cases, inter_rater_raw=0.75)
    # Volumes are proportional within each rater: Corr = 1.
    expected = 0.8 / 8 + 0.6 / 8 + (1 - 0.2) / 4 + 0.5 / 4 + 1.0 / 4
    assert score.raw == pytest.approx(expected)
    assert score.normalised == pytest.approx(90 * expected / 0.75)
    assert score.correlation == pytest.approx({"mask1": 1.0, "mask2": 1.0})
    assert score.n_valid == 6
    assert math.isnan(isbi_challenge_score(cases).normalised)
    with pytest.raises(KeyError, match="ltpr"):
        isbi_challenge_score(cases.drop(columns="ltpr"))


def test_both_empty_cases_are_counted_per_group():
    cases = pd.DataFrame({"patient": [1, 2, 3], "dice": [np.nan, 0.5, np.nan], "both_empty": [1, 0, 1]})
    row = summarize(cases, ["dice"]).iloc[0]
    assert (row["n_both_empty"], row["n_valid"], row["n_cases"]) == (2, 1, 3)
