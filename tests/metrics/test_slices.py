"""Slice-level classification of axial slices (last axis), hand-built cases."""

from __future__ import annotations

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
