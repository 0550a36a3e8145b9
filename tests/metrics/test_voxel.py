"""Voxel metrics: hand-computed cube phantoms, nDSC, medpy and MONAI agreement, input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from msbench.benchmark.metrics import CSV_COLUMNS, METRIC_SPECS, SUITE_VERSION, MetricParams, evaluate_case


def cubes(shape=(20, 20, 20)) -> tuple[np.ndarray, np.ndarray]:
    """P = 4x4x4 cube, G = 4x4x4 cube shifted by one voxel along i: TP 48, FP 16, FN 16."""
    pred, ref = np.zeros(shape, bool), np.zeros(shape, bool)
    pred[4:8, 4:8, 4:8] = True
    ref[5:9, 4:8, 4:8] = True
    return pred, ref


def test_shifted_cubes_match_hand_computed_counts_and_scores():
    pred, ref = cubes()
    r = evaluate_case(pred, ref, (0.5, 1.0, 2.0))
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (48, 16, 16, 8000 - 80)
    assert r["dice"] == pytest.approx(96 / 128)
    assert r["jaccard"] == pytest.approx(48 / 80)
    assert r["ppv"] == pytest.approx(48 / 64)
    assert r["sensitivity"] == pytest.approx(48 / 64)
    assert r["specificity"] == pytest.approx(7920 / 7936)
    assert r["npv"] == pytest.approx(7920 / 7936)
    assert r["accuracy"] == pytest.approx(7968 / 8000)
    assert r["extra_fraction"] == pytest.approx(16 / (7920 + 16))
    # 64 voxels of 1 mm3 each.
    assert r["vol_pred_ml"] == pytest.approx(0.064)
    assert r["vol_ref_ml"] == pytest.approx(0.064)
    assert r["vol_diff"] == 0.0
    assert r["rel_vol_error_pct"] == 0.0


def test_volume_errors_are_signed_and_isbi_is_absolute():
    pred, ref = cubes()
    pred[4:8, 4:8, 8:10] = True  # 32 more predicted voxels: 96 vs 64
    r = evaluate_case(pred, ref, (1.0, 1.0, 3.0))
    assert r["vol_pred_ml"] == pytest.approx(96 * 3 / 1000)
    assert r["rel_vol_error_pct"] == pytest.approx(50.0)
    assert r["vol_diff"] == pytest.approx(0.5)
    r = evaluate_case(ref, pred, (1.0, 1.0, 3.0))
    assert r["rel_vol_error_pct"] == pytest.approx(-100 / 3)
    assert r["vol_diff"] == pytest.approx(1 / 3)


def test_record_keys_cover_csv_columns_and_specs():
    r = evaluate_case(*cubes(), (1.0, 1.0, 1.0))
    assert set(CSV_COLUMNS) <= set(r)
    assert set(r) == set(METRIC_SPECS)
    for key in ("tp", "fp", "fn", "tn", "n_lesions_ref", "n_lesions_pred", "slice_tp"):
        assert isinstance(r[key], int), key


def test_params_are_validated_and_carry_the_suite_version():
    assert MetricParams().as_dict()["suite_version"] == SUITE_VERSION
    assert MetricParams(connectivity=26).as_dict()["connectivity"] == 26
    with pytest.raises(ValueError, match="connectivity=8"):
        MetricParams(connectivity=8)
    with pytest.raises(ValueError, match="alpha"):
        MetricParams(alpha=1.5)


def test_layout_and_dtype_do_not_change_the_record():
    pred, ref = cubes()
    c_order = evaluate_case(pred, ref, (1.0, 2.0, 3.0))
    fortran = evaluate_case(np.asfortranarray(pred), np.asfortranarray(ref.astype(np.uint8)), (1.0, 2.0, 3.0))
    strided = evaluate_case(np.repeat(pred, 2, axis=0)[::2], ref.astype(np.float32), [1, 2, 3])
    np.testing.assert_equal(c_order, fortran)
    np.testing.assert_equal(c_order, strided)


@pytest.mark.parametrize(
    "pred, ref, spacing, match",
    [
        (np.zeros((4, 4, 4)), np.zeros((4, 4, 5)), (1, 1, 1), "shape"),
        (np.zeros((4, 4)), np.zeros((4, 4)), (1, 1), "3D"),
        (np.full((4, 4, 4), 0.5), np.zeros((4, 4, 4)), (1, 1, 1), "pred has values"),
        (np.zeros((4, 4, 4)), np.full((4, 4, 4), np.nan), (1, 1, 1), "ref contains NaN"),
        (np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), (1, 0, 1), "spacing_mm"),
        (np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), (1, 1), "spacing_mm"),
    ],
)
def test_bad_inputs_raise_clear_errors(pred, ref, spacing, match):
    with pytest.raises(ValueError, match=match):
        evaluate_case(pred, ref, spacing)


def random_blobs(seed: int, shape=(24, 28, 20)) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    ref = ndimage.binary_dilation(rng.random(shape) > 0.995, iterations=2)
    pred = ndimage.binary_dilation(ref ^ (rng.random(shape) > 0.97), iterations=1) & (rng.random(shape) > 0.1)
    return pred, ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dice_agrees_with_medpy(seed):
    medpy = pytest.importorskip("medpy.metric.binary")
    pred, ref = random_blobs(seed)
    assert evaluate_case(pred, ref, (1.0, 1.0, 1.0))["dice"] == pytest.approx(medpy.dc(pred, ref), rel=1e-12)
    assert evaluate_case(pred, ref, (1.0, 1.0, 1.0))["jaccard"] == pytest.approx(medpy.jc(pred, ref), rel=1e-12)
    assert evaluate_case(pred, ref, (1.0, 1.0, 1.0))["sensitivity"] == pytest.approx(medpy.sensitivity(pred, ref))
    assert evaluate_case(pred, ref, (1.0, 1.0, 1.0))["specificity"] == pytest.approx(medpy.specificity(pred, ref))


def test_confusion_counts_agree_with_monai_on_float_tensors():
    torch = pytest.importorskip("torch")
    monai_cm = pytest.importorskip("monai.metrics.confusion_matrix")
    pred, ref = random_blobs(3)
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    # MONAI's confusion matrix on bool tensors silently gives TP = 0: cast to float first.
    as_tensor = [torch.from_numpy(a[None, None].astype(np.float32)) for a in (pred, ref)]
    tp, fp, tn, fn = monai_cm.get_confusion_matrix(*as_tensor, include_background=True)[0, 0].tolist()
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (tp, fp, tn, fn)
    from monai.metrics import compute_dice

    assert r["dice"] == pytest.approx(float(compute_dice(*as_tensor)[0, 0]), rel=1e-6)


def test_non_numeric_masks_are_a_type_error():
    with pytest.raises(TypeError, match="dtype"):
        evaluate_case(np.full((4, 4, 4), "a"), np.zeros((4, 4, 4)), (1, 1, 1))


def test_integer_label_maps_are_rejected_with_their_values():
    labels = np.zeros((4, 4, 4), np.int16)
    labels[1, 1, 1] = 2
    with pytest.raises(ValueError, match=r"values \[0, 2\]"):
        evaluate_case(labels, np.zeros((4, 4, 4)), (1, 1, 1))


def shifts_ndsc(pred: np.ndarray, ref: np.ndarray, r: float, n: int) -> float:
    """nDSC written from Malinin et al. 2022 (Shifts 2.0), float arithmetic on whole arrays."""
    g, p = ref.astype(np.float64), pred.astype(np.float64)
    k = (1 - r) * g.sum() / (r * (n - g.sum()))
    tp, fp, fn = (p * g).sum(), (p * (1 - g)).sum(), ((1 - p) * g).sum()
    return 2 * tp / (k * fp + 2 * tp + fn)


def test_ndsc_by_hand_and_against_the_shifts_formula():
    pred, ref = cubes()  # TP 48, FP 16, FN 16, N 8000, |G| 64
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    k = 0.999 * 64 / (0.001 * (8000 - 64))
    assert r["ndsc"] == pytest.approx(96 / (k * 16 + 96 + 16))
    assert r["ndsc"] == pytest.approx(shifts_ndsc(pred, ref, 0.001, 8000))
    # When r equals the scan's own lesion load, k = 1 and nDSC is Dice.
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0), params=MetricParams(ndsc_reference_load=64 / 8000))
    assert r["ndsc"] == pytest.approx(r["dice"])


def test_ndsc_domain_sets_n_and_the_record_says_which():
    pred, ref = cubes()
    brain = np.zeros_like(ref)
    brain[2:12, 2:12, 2:12] = True  # 1000 voxels
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0), domain=brain)
    assert (r["domain_voxels"], r["domain_is_mask"]) == (1000, 1)
    assert r["ndsc"] == pytest.approx(shifts_ndsc(pred, ref, 0.001, 1000))
    whole = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    assert (whole["domain_voxels"], whole["domain_is_mask"]) == (8000, 0)
    assert r["dice"] == whole["dice"] and r["ndsc"] != whole["ndsc"]


def test_ndsc_empty_cases():
    pred, ref = cubes()
    empty = np.zeros_like(ref)
    assert evaluate_case(empty, ref, (1, 1, 1))["ndsc"] == 0.0  # abstention: worst
    assert evaluate_case(pred, empty, (1, 1, 1))["ndsc"] == 0.0  # Shifts: k = 1, TP = 0
    assert math.isnan(evaluate_case(empty, empty, (1, 1, 1))["ndsc"])  # Shifts gives 1; counted apart here
    with pytest.raises(ValueError, match="ndsc_reference_load"):
        MetricParams(ndsc_reference_load=0.0)


def test_domain_is_checked():
    pred, ref = cubes()
    with pytest.raises(ValueError, match="domain has shape"):
        evaluate_case(pred, ref, (1, 1, 1), domain=np.ones((3, 3, 3), bool))
    with pytest.raises(ValueError, match="domain is empty"):
        evaluate_case(pred, ref, (1, 1, 1), domain=np.zeros_like(ref))
    with pytest.raises(ValueError, match="domain has values"):
        evaluate_case(pred, ref, (1, 1, 1), domain=np.full(ref.shape, 2, np.uint8))
