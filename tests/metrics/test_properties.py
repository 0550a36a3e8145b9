"""Property tests: symmetries and invariances of the suite, and surface distances against brute force."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from scipy.spatial.distance import cdist

from msbench.benchmark.metrics import MetricParams, evaluate_case

SYMMETRIC = ("dice", "jaccard", "accuracy", "hd_mm", "hd95_mm", "assd_mm", "tp", "tn")
SHAPE_FREE = ("tp", "fp", "fn", "dice", "jaccard", "ppv", "sensitivity", "vol_pred_ml", "vol_ref_ml", "hd_mm",
              "hd95_mm", "assd_mm", "ltpr", "lfpr", "lesion_f1", "n_lesions_ref", "n_lesions_pred", "anima_sensl",
              "anima_ppvl", "anima_f1", "slice_tp", "slice_fp", "slice_fn")  # fmt: skip


@st.composite
def mask_pairs(draw):
    shape = tuple(draw(st.integers(4, 10)) for _ in range(3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    density = draw(st.floats(0.02, 0.4))
    pred, ref = rng.random(shape) < density, rng.random(shape) < density
    spacing = tuple(draw(st.sampled_from([0.4, 0.7, 1.0, 1.5, 3.0])) for _ in range(3))
    return pred, ref, spacing


def same(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True))


@settings(max_examples=40, deadline=None)
@given(mask_pairs())
def test_overlap_and_distances_are_symmetric(case):
    pred, ref, spacing = case
    a, b = evaluate_case(pred, ref, spacing), evaluate_case(ref, pred, spacing)
    for key in SYMMETRIC:
        assert same(a[key], b[key]), key
    # Recall and precision swap with the masks while both hold objects; the empty-mask policy breaks the
    # tie on purpose when one is empty (recall NaN: nothing to find; precision 0: an abstention).
    if pred.any() and ref.any():
        assert same(a["sensitivity"], b["ppv"]) and same(a["ltpr"], b["lesion_precision"])
    if a["anima_n_ref"] > 0 and a["anima_n_pred"] > 0:
        assert same(a["anima_sensl"], b["anima_ppvl"])


@settings(max_examples=30, deadline=None)
@given(mask_pairs(), st.integers(0, 6), st.integers(0, 6))
def test_zero_padding_changes_only_background_counts(case, before, after):
    pred, ref, spacing = case
    pad = ((before, after), (after, before), (before, before))
    a = evaluate_case(pred, ref, spacing)
    b = evaluate_case(np.pad(pred, pad), np.pad(ref, pad), spacing)
    # one empty mask gives distances the field-of-view diagonal (the empty-worst policy): padding grows it on purpose
    one_empty = pred.any() != ref.any()
    for key in SHAPE_FREE:
        if not (one_empty and key in ("hd_mm", "hd95_mm", "assd_mm")):
            assert same(a[key], b[key]), key
    assert b["tn"] - a["tn"] == np.pad(pred, pad).size - pred.size
    assert b["slice_tn"] - a["slice_tn"] == 2 * before


def brute_force_surface(pred, ref, spacing):
    """Independent reference: scipy erosion edges and all pairwise distances."""
    edges = [np.argwhere(m ^ ndimage.binary_erosion(m)) * np.asarray(spacing) for m in (pred, ref)]
    d = cdist(edges[0], edges[1])
    d_pg, d_gp = d.min(axis=1), d.min(axis=0)
    hd95 = max(np.percentile(d_pg, 95), np.percentile(d_gp, 95))
    return max(d_pg.max(), d_gp.max()), hd95, np.concatenate([d_pg, d_gp]).mean()


@settings(max_examples=40, deadline=None)
@given(mask_pairs(), st.integers(1, 4))
def test_surface_distances_equal_brute_force_for_any_search_radius(case, margin):
    pred, ref, spacing = case
    if not pred.any() or not ref.any():
        return
    r = evaluate_case(pred, ref, spacing, params=MetricParams(surface_margin_vox=margin))
    expected = brute_force_surface(pred, ref, spacing)
    np.testing.assert_allclose([r["hd_mm"], r["hd95_mm"], r["assd_mm"]], expected, rtol=1e-10)


@settings(max_examples=20, deadline=None)
@given(mask_pairs())
def test_isbi_lesion_counts_match_scipy_labelling(case):
    pred, ref, spacing = case
    structure = ndimage.generate_binary_structure(3, 2)  # 18-connectivity
    labels, n_ref = ndimage.label(ref, structure)
    touched = len(set(np.unique(labels[pred & ref])) - {0})
    r = evaluate_case(pred, ref, spacing)
    assert r["n_lesions_ref"] == n_ref
    assert r["n_lesions_ref_detected"] == touched
