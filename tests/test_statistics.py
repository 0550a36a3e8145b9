"""The paired-test rules the gate and the leaderboard share (``msbench.benchmark.statistics``), by hand."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from msbench.benchmark.gate import PASS, judge_paired
from msbench.benchmark.gate_baseline import Baseline, MethodBaseline
from msbench.benchmark.statistics import (
    can_rank,
    min_p,
    min_patients,
    no_significance_reason,
    not_ranked_reason,
    paired_test,
)
from msbench.leaderboard.statistics import wilcoxon_matrix, wilcoxon_pair

#: Per-patient differences where dropping zeros ("wilcox") and splitting them ("zsplit") disagree.
ZERO_CASE = np.array([0.0, 0.0, -0.5, 0.1, 0.2, 0.3, 0.4, 0.6])


def test_importing_the_rules_pulls_neither_numba_nor_torch():
    code = "import sys, msbench.benchmark.statistics; print('numba' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("n", range(1, 9))
def test_smallest_attainable_p_is_scipys_exact_p_with_every_difference_of_one_sign(n):
    diff = np.arange(1, n + 1) / 10
    assert min_p(n) == pytest.approx(stats.wilcoxon(diff).pvalue) == pytest.approx(min(1.0, 2 / 2**n))
    assert min_p(n, two_sided=False) == pytest.approx(stats.wilcoxon(diff, alternative="greater").pvalue)


def test_hand_values_of_the_rules():
    assert min_p(4) == 0.125 and min_p(1) == 1.0 and min_p(0) == 1.0 and min_p(6) == 0.03125
    assert min_patients(0.05) == 6 and min_patients(0.05, two_sided=False) == 5
    assert not can_rank(5) and can_rank(6)
    assert not_ranked_reason(6) is None
    assert not_ranked_reason(1) == (
        "Not ranked: 1 test patient; a paired Wilcoxon test on per-patient means needs at least 6 patients before "
        "any p can fall under 0.05 (smallest attainable two-sided p with n=1: 1.0)."
    )
    assert "cannot give p below 0.125 with n=4" in no_significance_reason(4, n_pairs=1)
    assert no_significance_reason(6, n_pairs=1) is None
    assert "after Holm's correction" in no_significance_reason(6, n_pairs=3)  # 3 x 0.03125 >= 0.05


def test_time_points_of_one_patient_are_one_case():
    x = np.array([0.8, 0.7, 0.9, 0.6])  # four scans of one patient, all better than y
    y = x - 0.1
    test = paired_test(x, y, np.array(["p1"] * 4))
    assert test.p == 1.0 and test.n_patients == 1 and test.n_cases == 4
    assert stats.wilcoxon(x, y).pvalue == pytest.approx(0.125)  # the per-scan test this replaces
    # Two patients of two scans each: the test sees the two per-patient means, NaN scans left out.
    x2 = np.array([0.5, 0.7, 0.2, np.nan])
    test = paired_test(x2, np.array([0.4, 0.4, 0.1, 0.3]), np.array(["a", "a", "b", "b"]))
    assert (test.n_patients, test.n_cases) == (2, 3) and test.median_diff == pytest.approx((0.2 + 0.1) / 2)


def test_gate_and_board_agree_where_zsplit_and_wilcox_differ():
    patients = np.array([f"p{i}" for i in range(ZERO_CASE.size)])
    reference = np.full(ZERO_CASE.size, 0.5)
    measured = reference + ZERO_CASE
    wilcox = stats.wilcoxon(ZERO_CASE, zero_method="wilcox").pvalue
    zsplit = stats.wilcoxon(ZERO_CASE, zero_method="zsplit").pvalue
    assert wilcox == pytest.approx(0.3125) and zsplit == pytest.approx(0.21875)  # the gate's old rule gave 0.219
    board_p, n = wilcoxon_pair(measured, reference, patients)
    assert n == 8 and board_p == pytest.approx(wilcox)
    entry = MethodBaseline(
        "m", reference_dice=0.5, two_sided=True, reference_cases={f"c{i}": 0.5 for i in range(ZERO_CASE.size)}
    )
    baseline = Baseline(path=None, dataset="d", protocol="p", budget="b", methods={"m": entry})  # type: ignore[arg-type]
    cases = pd.DataFrame({"case": [f"c{i}" for i in range(ZERO_CASE.size)], "patient": patients, "dice": measured})
    check = judge_paired(baseline, entry, cases, float(measured.mean()))
    assert check.verdict == PASS and f"p = {wilcox:.3g} over 8 patients" in check.note
    matrix = pd.DataFrame(
        {"a": measured, "b": reference},
        index=pd.MultiIndex.from_arrays([patients, [f"c{i}" for i in range(8)]], names=["patient", "case"]),
    )
    assert wilcoxon_matrix(matrix)["p"].loc["a", "b"] == pytest.approx(wilcox)


def test_gate_calls_a_run_on_too_few_patients_a_mismatch_not_a_pass():
    from msbench.benchmark.gate import MISMATCH

    cases = [f"c{i}" for i in range(8)]
    entry = MethodBaseline("m", reference_dice=0.6, reference_cases=dict.fromkeys(cases, 0.6))
    baseline = Baseline(path=None, dataset="d", protocol="p", budget="b", methods={"m": entry})  # type: ignore[arg-type]
    # Eight scans of two patients, every one far below the reference: per scan p = 0.004, per patient p >= 0.25.
    frame = pd.DataFrame({"case": cases, "patient": ["a"] * 4 + ["b"] * 4, "dice": np.linspace(0.1, 0.2, 8)})
    check = judge_paired(baseline, entry, frame, 0.15)
    assert check.verdict == MISMATCH and "2 patients (8 paired cases)" in check.note
    assert "smallest attainable p 0.25" in check.note and "at least 5 patients" in check.note
