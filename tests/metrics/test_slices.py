"""Slice-level classification of axial slices (last axis), hand-built cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from msbench.benchmark.metrics import MetricParams, evaluate_case


def slice_case() -> tuple[np.ndarray, np.ndarray]:
    """10 axial slices. Slice 2: a 10-pixel reference component with 1 pixel predicted (10 %).
    Slice 3: a reference component with nothing predicted. Slice 7: a prediction on a negative slice."""
    pred, ref = np.zeros((16, 16, 10), bool), np.zeros((16, 16, 10), bool)
    ref[2:12, 4, 2] = True
    pred[2, 4, 2] = True
    ref[5:8, 5:8, 3] = True
    pred[10, 10, 7] = True
    return pred, ref


def test_slice_counts_and_scores_by_hand():
    r = evaluate_case(*slice_case(), (1.0, 1.0, 1.0))
    assert (r["slice_tp"], r["slice_fn"], r["slice_fp"], r["slice_tn"]) == (1, 1, 1, 7)
    assert r["slice_accuracy"] == pytest.approx(0.8)
    assert r["slice_sensitivity"] == pytest.approx(0.5)
    assert r["slice_ppv"] == pytest.approx(0.5)
    assert r["slice_npv"] == pytest.approx(7 / 8)


def test_coverage_threshold_is_a_parameter():
    r = evaluate_case(*slice_case(), (1.0, 1.0, 1.0), params=MetricParams(slice_coverage=0.2))
    assert (r["slice_tp"], r["slice_fn"]) == (0, 2)
    assert r["slice_ppv"] == 0.0  # one predicted positive slice (7), a negative one


def test_one_covered_component_among_several_makes_the_slice_a_true_positive():
    pred, ref = np.zeros((16, 16, 4), bool), np.zeros((16, 16, 4), bool)
    ref[1:3, 1:3, 1] = True
    ref[8:14, 8:14, 1] = True  # large, uncovered
    pred[1, 1, 1] = True  # 25 % of the small one
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    assert (r["slice_tp"], r["slice_fn"]) == (1, 0)


def test_in_plane_connectivity_changes_components():
    """Two diagonal pixels: one component at 8-connectivity (1 of 2 covered = 50 %), two at 4."""
    pred, ref = np.zeros((6, 6, 3), bool), np.zeros((6, 6, 3), bool)
    ref[2, 2, 1] = ref[3, 3, 1] = True
    pred[2, 2, 1] = True
    for connectivity in (4, 8):
        params = MetricParams(slice_coverage=0.6, slice_connectivity=connectivity)
        r = evaluate_case(pred, ref, (1.0, 1.0, 1.0), params=params)
        # 4: the covered pixel is a component of its own (100 %); 8: one component covered 50 % < 60 %.
        assert r["slice_tp"] == (1 if connectivity == 4 else 0)


def test_components_do_not_join_across_axial_slices():
    """A reference column through 3 slices is 3 separate 2D components: each slice judged on its own."""
    pred, ref = np.zeros((6, 6, 5), bool), np.zeros((6, 6, 5), bool)
    ref[2, 2, 1:4] = True
    pred[2, 2, 1] = True
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    assert (r["slice_tp"], r["slice_fn"], r["slice_fp"], r["slice_tn"]) == (1, 2, 0, 2)


def test_balanced_slice_scores_by_hand_and_as_the_expectation_over_every_balanced_draw():
    pred, ref = slice_case()
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    # P = 2 positives (slices 2, 3; one found); 8 negatives, one with a prediction (7): weight 2/8.
    assert r["slice_n_negative_scored"] == 8
    assert r["slice_bal_accuracy"] == pytest.approx((1 + 0.25 * 7) / 4)
    assert r["slice_bal_sensitivity"] == pytest.approx(0.5)
    assert r["slice_bal_ppv"] == pytest.approx(1 / (1 + 0.25))
    assert r["slice_bal_npv"] == pytest.approx(1.75 / (1.75 + 1))
    # Brute force over all C(8, 2) balanced negative sets (Darestani: positives + as many negatives).
    negatives = [0, 1, 4, 5, 6, 7, 8, 9]
    draws = list(itertools.combinations(negatives, 2))
    accuracy = [(1 + sum(k != 7 for k in draw)) / 4 for draw in draws]
    assert r["slice_bal_accuracy"] == pytest.approx(np.mean(accuracy))
    expected_fp = np.mean([sum(k == 7 for k in draw) for draw in draws])
    assert r["slice_bal_ppv"] == pytest.approx(1 / (1 + expected_fp))  # ratio of the expected counts


def test_balanced_negatives_are_the_slices_that_meet_the_domain():
    pred, ref = slice_case()
    brain = np.zeros_like(ref)
    brain[4:12, 4:12, 1:7] = True  # slices 1-6: negatives 1, 4, 5, 6; slice 7's false positive lies outside
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0), domain=brain)
    assert r["slice_n_negative_scored"] == 4
    assert r["slice_bal_accuracy"] == pytest.approx((1 + 0.5 * 4) / 4)
    assert r["slice_bal_ppv"] == pytest.approx(1.0)
    assert r["slice_bal_npv"] == pytest.approx(2 / 3)
    # The all-slice scores do not depend on the domain.
    whole = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    assert r["slice_accuracy"] == whole["slice_accuracy"] and r["slice_ppv"] == whole["slice_ppv"]


def test_balanced_scores_without_negatives_or_positives():
    ref = np.zeros((6, 6, 3), bool)
    ref[1:3, 1:3, :] = True  # every slice positive: no negative to draw
    r = evaluate_case(ref, ref, (1.0, 1.0, 1.0))
    assert r["slice_n_negative_scored"] == 0 and r["slice_bal_ppv"] == 1.0 and r["slice_bal_sensitivity"] == 1.0
    assert np.isnan(r["slice_bal_accuracy"]) and np.isnan(r["slice_bal_npv"])
    r = evaluate_case(ref, np.zeros_like(ref), (1.0, 1.0, 1.0))  # no positive: no balanced set
    assert all(np.isnan(r[k]) for k in ("slice_bal_accuracy", "slice_bal_sensitivity", "slice_bal_ppv"))


def test_dice_over_lesion_slices_by_hand():
    pred, ref = slice_case()
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    # Slices 2 and 3 hold G (10 + 9 voxels); TP 1; the false positive on slice 7 is not on them.
    assert r["dice_lesion_slices"] == pytest.approx(2 / (2 + 0 + 18))
    assert r["dice"] == pytest.approx(2 / (2 + 1 + 18))
    pred[14, 14, 3] = True  # a false positive on a lesion slice counts
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    assert r["dice_lesion_slices"] == pytest.approx(2 / (2 + 1 + 18))
    assert r["dice"] == pytest.approx(2 / (2 + 2 + 18))
    # Cropping: the same masks padded along the axial axis give the same value.
    padded = evaluate_case(np.pad(pred, ((0, 0), (0, 0), (5, 3))), np.pad(ref, ((0, 0), (0, 0), (5, 3))), (1, 1, 1))
    assert padded["dice_lesion_slices"] == pytest.approx(r["dice_lesion_slices"])
