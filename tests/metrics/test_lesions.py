"""Lesion-wise metrics: ISBI 2015 any-overlap detection and Anima/MSSEG alpha/beta/gamma, hand-built cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from msbench.benchmark.metrics import MetricParams, evaluate_case, evaluate_case_with_lesions

SPACING = (1.0, 1.0, 1.0)


def isbi_case() -> tuple[np.ndarray, np.ndarray]:
    """G: three 2x2x2 lesions; P touches two of them (one by a single voxel) and adds one lesion elsewhere."""
    pred, ref = np.zeros((30, 30, 30), bool), np.zeros((30, 30, 30), bool)
    ref[2:4, 2:4, 2:4] = ref[10:12, 10:12, 10:12] = ref[20:22, 20:22, 20:22] = True
    pred[2:4, 2:4, 2:4] = True  # exact
    pred[11, 11, 11] = True  # one voxel of the second lesion
    pred[25:27, 2:4, 2:4] = True  # false positive lesion
    return pred, ref


def test_isbi_any_overlap_detection_by_hand():
    r = evaluate_case(*isbi_case(), SPACING)
    assert (r["n_lesions_ref"], r["n_lesions_pred"]) == (3, 3)
    assert r["ltpr"] == pytest.approx(2 / 3)
    assert r["lfpr"] == pytest.approx(1 / 3)  # denominator = predicted lesions
    assert r["lesion_precision"] == pytest.approx(2 / 3)
    assert r["lesion_f1"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "offset, expected",
    [((1, 0, 0), {6: 1, 18: 1, 26: 1}), ((1, 1, 0), {6: 2, 18: 1, 26: 1}), ((1, 1, 1), {6: 2, 18: 2, 26: 1})],
)
def test_connectivity_decides_how_many_lesions(offset, expected):
    mask = np.zeros((8, 8, 8), bool)
    mask[3, 3, 3] = True
    mask[3 + offset[0], 3 + offset[1], 3 + offset[2]] = True
    for connectivity, n in expected.items():
        r = evaluate_case(mask, mask, SPACING, params=MetricParams(connectivity=connectivity))
        assert r["n_lesions_ref"] == n, connectivity


def test_anima_size_filter_keeps_lesions_strictly_above_three_mm3():
    pred, ref = np.zeros((20, 20, 20), bool), np.zeros((20, 20, 20), bool)
    ref[2, 2, 2:5] = True  # 3 voxels = 3 mm3: dropped
    ref[8, 8, 2:6] = True  # 4 voxels = 4 mm3: kept
    pred[:] = ref
    r = evaluate_case(pred, ref, SPACING)
    assert (r["n_lesions_ref"], r["anima_n_ref"]) == (2, 1)
    # 0.5 mm voxels (0.125 mm3): 24 voxels = 3 mm3 dropped, 25 kept.
    half = np.zeros((20, 20, 20), bool)
    half[1:4, 1:9, 1] = True  # 24
    half[10:15, 10:15, 5] = True  # 25
    r = evaluate_case(half, half, (0.5, 0.5, 0.5))
    assert r["anima_n_ref"] == 1


def test_anima_alpha_needs_strictly_more_than_ten_percent_coverage():
    ref = np.zeros((30, 30, 30), bool)
    ref[2:12, 2:12, 5] = True  # 100 voxels
    pred = np.zeros_like(ref)
    pred[2:12, 2, 5] = True  # 10 voxels: exactly 10 %
    assert evaluate_case(pred, ref, SPACING)["anima_sensl"] == 0.0
    pred[2, 3, 5] = True  # 11 %
    assert evaluate_case(pred, ref, SPACING)["anima_sensl"] == 1.0


def beta_gamma_case() -> tuple[np.ndarray, np.ndarray]:
    """G1 = 10x10 slab (100 voxels). P2 covers 70 of it and stays inside; a one-voxel gap; P1 covers 20 of
    it and leaks 80 voxels outside every reference lesion (80 % outside). Overlap total 90."""
    ref, pred = np.zeros((30, 20, 10), bool), np.zeros((30, 20, 10), bool)
    ref[2:12, 2:12, 5] = True
    pred[2:9, 2:12, 5] = True  # P2: i = 2..8
    pred[10:20, 2:12, 5] = True  # P1: i = 10..11 inside G1, 12..19 outside
    return pred, ref


@pytest.mark.parametrize(
    "beta, gamma, detected",
    [
        (0.70, 0.65, True),  # P2 alone accounts for 70/90 = 78 % > gamma: P1's leak is never checked
        (0.70, 0.80, False),  # P1 must be checked: 80 % outside > beta
        (0.85, 0.80, True),  # P1 checked but its leak is allowed
    ],
)
def test_anima_beta_and_gamma_decide_detection(beta, gamma, detected):
    pred, ref = beta_gamma_case()
    params = MetricParams(beta=beta, gamma=gamma)
    r = evaluate_case(pred, ref, SPACING, params=params)
    assert (r["anima_n_ref"], r["anima_n_pred"]) == (1, 2)
    assert r["anima_sensl"] == (1.0 if detected else 0.0)
    # Each predicted lesion is covered by G1 (> alpha) and G1 is 10 % outside P (< beta): both detected.
    assert r["anima_ppvl"] == 1.0
    assert r["anima_f1"] == pytest.approx(1.0 if detected else 0.0)
    # ISBI: both predicted lesions touch G1, G1 is touched.
    assert (r["ltpr"], r["lfpr"]) == (1.0, 0.0)


def test_anima_f1_is_zero_when_nothing_is_detected_and_worst_for_an_empty_prediction():
    pred, ref = beta_gamma_case()
    r = evaluate_case(pred, ref, SPACING, params=MetricParams(beta=0.70, gamma=0.80))
    assert r["anima_f1"] == pytest.approx(0.0)
    empty = np.zeros_like(ref)
    r = evaluate_case(empty, ref, SPACING)
    # An abstention: PPVL's 0/0 takes the worst value, so F1 is 0, not NaN (Anima writes 0 too).
    assert (r["anima_ppvl"], r["anima_sensl"], r["anima_f1"]) == (0.0, 0.0, 0.0)
    r = evaluate_case(empty, empty, SPACING)
    assert all(math.isnan(r[k]) for k in ("anima_ppvl", "anima_sensl", "anima_f1"))
    r = evaluate_case(ref, empty, SPACING)
    assert math.isnan(r["anima_sensl"]) and (r["anima_ppvl"], r["anima_f1"]) == (0.0, 0.0)


def test_per_lesion_table_has_one_row_per_lesion_with_matches_and_centroids():
    pred, ref = isbi_case()
    record, rows = evaluate_case_with_lesions(pred, ref, (1.0, 1.0, 2.0))
    table = pd.DataFrame(rows)
    isbi = table[table["family"] == "isbi"]
    assert len(isbi) == record["n_lesions_ref"] + record["n_lesions_pred"]
    ref_rows = isbi[isbi["source"] == "ref"].sort_values("centroid_i")
    assert ref_rows["matched"].tolist() == [True, True, False]
    assert ref_rows["overlap_vox"].tolist() == [8, 1, 0]
    assert ref_rows["volume_mm3"].tolist() == [16.0, 16.0, 16.0]
    np.testing.assert_allclose(ref_rows[["centroid_i", "centroid_j", "centroid_k"]].iloc[1], [10.5, 10.5, 10.5])
    pred_rows = isbi[isbi["source"] == "pred"].sort_values("centroid_i")
    assert pred_rows["matched"].tolist() == [True, True, False]
    np.testing.assert_allclose(pred_rows[["centroid_i", "centroid_j", "centroid_k"]].iloc[1], [11, 11, 11])
    anima = table[table["family"] == "anima"]
    assert len(anima) == record["anima_n_ref"] + record["anima_n_pred"]
    assert int(anima.loc[anima["source"] == "ref", "matched"].sum()) == record["anima_n_ref_detected"]


def test_lesion_counts_do_not_depend_on_the_crop_margin():
    pred, ref = isbi_case()
    a = evaluate_case(pred, ref, SPACING, params=MetricParams(surface_margin_vox=1))
    b = evaluate_case(pred, ref, SPACING, params=MetricParams(surface_margin_vox=5))
    np.testing.assert_equal(a, b)


def ball(shape, center, radius) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grid, center, strict=True)) <= radius**2


def test_shifted_spheres_have_known_matches_in_both_families():
    """Four reference balls (radius 4). Predictions: shifted by 2 (about 63 % overlap), by 1, by 7
    (a sliver of overlap: ISBI detects it, Anima's alpha does not) and one moved far away."""
    shape = (80, 40, 40)
    centres = [(10, 20, 20), (30, 20, 20), (50, 20, 20), (68, 10, 10)]
    shifts = [(2, 0, 0), (0, 1, 0), (7, 0, 0), (0, 22, 22)]
    ref, pred = np.zeros(shape, bool), np.zeros(shape, bool)
    for (ci, cj, ck), (di, dj, dk) in zip(centres, shifts, strict=True):
        ref |= ball(shape, (ci, cj, ck), 4)
        pred |= ball(shape, (ci + di, cj + dj, ck + dk), 4)
    sliver = ball(shape, centres[2], 4) & ball(shape, (57, 20, 20), 4)
    assert 0 < sliver.sum() < 0.1 * ball(shape, centres[2], 4).sum()
    r = evaluate_case(pred, ref, SPACING)
    assert (r["n_lesions_ref"], r["n_lesions_pred"]) == (4, 4)
    assert (r["n_lesions_ref_detected"], r["n_lesions_pred_fp"]) == (3, 1)
    assert (r["ltpr"], r["lfpr"]) == (0.75, 0.25)
    assert (r["anima_n_ref_detected"], r["anima_n_pred_detected"]) == (2, 2)
    assert (r["anima_sensl"], r["anima_ppvl"], r["anima_f1"]) == (0.5, 0.5, 0.5)


def test_anima_beta_compares_strictly_at_exactly_seventy_percent_outside():
    """One predicted lesion covers 30 of G's 100 voxels and stacks 70 (then 71) voxels above it, outside G."""
    ref, pred = np.zeros((16, 16, 12), bool), np.zeros((16, 16, 12), bool)
    ref[2:12, 2:12, 5] = True
    pred[2:5, 2:12, 5:8] = True  # 30 inside (k = 5), 60 outside (k = 6, 7)
    pred[2, 2:12, 8] = True  # 10 more outside: 70 of 100 outside, not more than beta = 0.70
    assert evaluate_case(pred, ref, SPACING)["anima_sensl"] == 1.0
    pred[3, 2, 8] = True  # 71 of 101 outside
    assert evaluate_case(pred, ref, SPACING)["anima_sensl"] == 0.0


def test_record_with_lesions_equals_the_plain_record():
    pred, ref = isbi_case()
    record, _ = evaluate_case_with_lesions(pred, ref, (0.7, 0.7, 2.0))
    np.testing.assert_equal(record, evaluate_case(pred, ref, (0.7, 0.7, 2.0)))
