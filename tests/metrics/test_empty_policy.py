"""The empty-mask policy: abstaining never pays in any case score, aggregate or challenge score."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msbench.benchmark.metrics import (
    METRIC_SPECS,
    evaluate_case,
    isbi_challenge_score,
    pooled_dice,
    rankable_metrics,
    summarize,
)

SPACING = (0.5, 1.0, 2.0)
SHAPE = (20, 20, 20)
FOV_DIAGONAL = math.sqrt(10.0**2 + 20.0**2 + 40.0**2)


def cubes() -> tuple[np.ndarray, np.ndarray]:
    pred, ref = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
    pred[4:8, 4:8, 4:8] = True
    ref[5:9, 4:8, 4:8] = True
    return pred, ref


def documented(text: str) -> float | None:
    """The number a ``MetricSpec.empty_*`` text promises, None for 'computed'."""
    if text.startswith("worst: field-of-view diagonal"):
        return FOV_DIAGONAL
    if text.startswith("NaN"):
        return math.nan
    match = re.match(r"-?\d+(\.\d+)?", text)
    return float(match.group()) if match else None


@pytest.mark.parametrize("side", ["empty_pred", "empty_ref"])
def test_records_give_what_metric_specs_document(side):
    pred, ref = cubes()
    empty = np.zeros_like(ref)
    r = evaluate_case(empty, ref, SPACING) if side == "empty_pred" else evaluate_case(pred, empty, SPACING)
    checked = 0
    for key, spec in METRIC_SPECS.items():
        promised = documented(getattr(spec, side))
        if promised is None:
            continue
        checked += 1
        np.testing.assert_equal(r[key], promised, err_msg=key)
    assert checked >= 20


def test_an_empty_prediction_gets_the_worst_value_of_every_rankable_score():
    pred, ref = cubes()
    r = evaluate_case(np.zeros_like(ref), ref, SPACING)
    for key in rankable_metrics():
        worst = 0.0 if METRIC_SPECS[key].higher_is_better else (FOV_DIAGONAL if key.endswith("_mm") else 1.0)
        assert r[key] == worst, key
    assert (r["pred_empty"], r["ref_empty"], r["both_empty"], r["surface_undefined"]) == (1, 0, 0, 1)
    # A real prediction, however poor, is never scored worse than the field-of-view diagonal.
    far = np.zeros_like(ref)
    far[19, 19, 19] = True
    real = evaluate_case(far, ref, SPACING)
    assert real["hd_mm"] < r["hd_mm"] and real["assd_mm"] < r["assd_mm"]


def test_both_empty_scores_are_nan_and_counted_apart():
    empty = np.zeros(SHAPE, bool)
    r = evaluate_case(empty, empty, SPACING)
    for key in rankable_metrics():
        assert math.isnan(r[key]), key
    assert (r["pred_empty"], r["ref_empty"], r["both_empty"]) == (1, 1, 1)
    row = summarize(pd.DataFrame([{"patient": 1, **r}, {"patient": 2, **evaluate_case(*cubes(), SPACING)}]))
    dice = row[row["metric"] == "dice"].iloc[0]
    assert (dice["n_valid"], dice["n_cases"], dice["n_both_empty"]) == (1, 2, 1)


NOT_FOR_RANKING = {
    "specificity",
    "npv",
    "accuracy",
    "extra_fraction",
    "vol_diff",
    "slice_accuracy",
    "slice_npv",
    "slice_bal_accuracy",
    "slice_bal_npv",
}


def test_exactly_these_scores_are_not_for_ranking_and_each_can_be_beaten_by_abstaining():
    directed = {k for k, s in METRIC_SPECS.items() if s.higher_is_better is not None}
    assert directed - set(rankable_metrics()) == NOT_FOR_RANKING
    assert all(METRIC_SPECS[k].not_for_ranking for k in NOT_FOR_RANKING)
    # The reason is real: a prediction three times G's volume, off G, on other slices scores below nothing.
    ref = np.zeros(SHAPE, bool)
    ref[2:6, 2:6, 2:4] = True
    pred = np.zeros_like(ref)
    pred[10:18, 10:16, 8:12] = True
    real, empty = evaluate_case(pred, ref, SPACING), evaluate_case(np.zeros_like(ref), ref, SPACING)
    for key in NOT_FOR_RANKING:
        better = empty[key] > real[key] if METRIC_SPECS[key].higher_is_better else empty[key] < real[key]
        assert better, key


def test_issue_example_three_scans_one_empty_prediction_scores_all_three():
    """Issue 10: one empty prediction of three left a raw score over 2 scans; every scan counts now."""
    rows, volumes = [], []
    for scan, side in (("s1", 3), ("s2", 4), ("s3", 5)):
        ref = np.zeros((12, 12, 12), bool)
        ref[2 : 2 + side, 2 : 2 + side, 2 : 2 + side] = True
        pred = ref if scan != "s3" else np.zeros_like(ref)
        rows.append({"case": scan, **evaluate_case(pred, ref, (1.0, 1.0, 1.0))})
        volumes.append((pred.sum(), ref.sum()))
    score = isbi_challenge_score(pd.DataFrame(rows), rater_col=None)
    corr = np.corrcoef(*np.array(volumes, float).T)[0, 1]
    assert score.n_valid == 3 and score.n_ref_empty == 0
    assert score.raw == pytest.approx((0.75 + 0.75 + 0.0) / 3 + corr / 4)
    assert score.per_scan["score"].notna().all()


def test_scans_with_an_empty_reference_are_counted_not_silently_dropped():
    pred, ref = cubes()
    other = np.zeros_like(ref)
    other[10:14, 10:14, 10:13] = True
    rows = [
        {"case": "a", **evaluate_case(pred, ref, SPACING)},
        {"case": "b", **evaluate_case(other, other, SPACING)},
        {"case": "c", **evaluate_case(pred, np.zeros_like(ref), SPACING)},
    ]
    score = isbi_challenge_score(pd.DataFrame(rows), rater_col=None)
    assert (score.n_valid, score.n_ref_empty) == (2, 1)
    assert score.as_dict()["isbi_n_ref_empty"] == 1


# --- property: replacing one prediction by an empty mask never improves an aggregate -----------------


@st.composite
def study(draw):
    """3-5 scans of 2-3 patients, two raters, small random masks; every reference holds a lesion."""
    n_scans = draw(st.integers(3, 5))
    shape = tuple(draw(st.integers(5, 9)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    scans = []
    for s in range(n_scans):
        refs = []
        for _ in range(2):
            ref = rng.random(shape) < draw(st.floats(0.02, 0.3))
            ref[tuple(rng.integers(0, n) for n in shape)] = True
            refs.append(ref)
        pred = rng.random(shape) < draw(st.floats(0.0, 0.4))
        scans.append({"case": f"s{s}", "patient": f"p{s % draw(st.integers(2, 3))}", "pred": pred, "refs": refs})
    spacing = tuple(draw(st.sampled_from([0.5, 1.0, 1.5, 3.0])) for _ in range(3))
    return scans, spacing, draw(st.integers(0, n_scans - 1))


def score_table(scans, spacing) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"case": s["case"], "patient": s["patient"], "reference": rater, **evaluate_case(s["pred"], ref, spacing)}
            for s in scans
            for rater, ref in zip(("mask1", "mask2"), s["refs"], strict=True)
        ]
    )


def not_better(after: float, before: float, higher_is_better: bool) -> bool:
    if math.isnan(before) or math.isnan(after):
        return math.isnan(before) and math.isnan(after)
    return after <= before + 1e-12 if higher_is_better else after >= before - 1e-12


@settings(max_examples=25, deadline=None)
@given(study())
def test_replacing_a_prediction_by_an_empty_mask_never_improves_an_aggregate(case):
    scans, spacing, victim = case
    before = score_table(scans, spacing)
    emptied = [dict(s, pred=np.zeros_like(s["pred"])) if i == victim else s for i, s in enumerate(scans)]
    after = score_table(emptied, spacing)
    metrics = list(rankable_metrics())
    stats = [summarize(t, metrics, group_cols=("reference",), n_boot=0) for t in (before, after)]
    for (_, b), (_, a) in zip(stats[0].iterrows(), stats[1].iterrows(), strict=True):
        hib = bool(METRIC_SPECS[b["metric"]].higher_is_better)
        for column in ("mean", "median"):
            assert not_better(a[column], b[column], hib), (b["reference"], b["metric"], column)
        assert a["n_valid"] == b["n_valid"], b["metric"]  # no scan drops out

    inter = pd.DataFrame([{"case": s["case"], **evaluate_case(s["refs"][1], s["refs"][0], spacing)} for s in scans])
    inter_raw = isbi_challenge_score(inter, rater_col=None).raw
    isbi = [isbi_challenge_score(t, inter_rater_raw=inter_raw) for t in (before, after)]
    assert isbi[1].n_valid == isbi[0].n_valid
    # The per-scan part of the challenge score never rises; Corr is a set-level Pearson term (see below).
    per_scan = [s.raw - s.corr_term for s in isbi]
    assert not_better(per_scan[1], per_scan[0], True)
    normalised = [s.normalised - 90 * s.corr_term / inter_raw for s in isbi]
    assert not_better(normalised[1], normalised[0], True)

    # Pooled Dice (an extra, never ranked) rises exactly when the emptied prediction's voxel precision
    # was below half the pooled Dice: a property of any pooled F1, not of empty masks.
    pooled = [pooled_dice(t, ("reference",)).set_index("reference")["dice_pooled"] for t in (before, after)]
    victim_rows = before[before["case"] == f"s{victim}"].set_index("reference")
    for rater in ("mask1", "mask2"):
        tp, fp = victim_rows.loc[rater, "tp"], victim_rows.loc[rater, "fp"]
        low_precision = tp + fp > 0 and tp / (tp + fp) < pooled[0][rater] / 2 - 1e-12
        if not low_precision:
            assert pooled[1][rater] <= pooled[0][rater] + 1e-12


def test_the_volume_correlation_term_alone_can_rise_when_a_prediction_is_emptied():
    """Pins the documented limit of the challenge score: Pearson's r is not monotone in one scan."""
    table = pd.DataFrame(
        {
            "case": ["a", "b", "c"],
            "dice": [0.05, 0.9, 0.9],
            "ppv": [0.05, 0.9, 0.9],
            "lfpr": [0.9, 0.1, 0.1],
            "ltpr": [0.1, 0.9, 0.9],
            "vol_pred_ml": [9.0, 2.0, 3.0],
            "vol_ref_ml": [1.0, 2.0, 3.0],
        }
    )
    emptied = table.copy()
    emptied.loc[0, ["dice", "ppv", "lfpr", "ltpr", "vol_pred_ml"]] = [0.0, 0.0, 1.0, 0.0, 0.0]
    before, after = (isbi_challenge_score(t, rater_col=None) for t in (table, emptied))
    assert after.corr_term > before.corr_term and after.raw > before.raw
    assert after.raw - after.corr_term < before.raw - before.corr_term
