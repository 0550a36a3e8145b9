"""The suite's fast paths against plain scipy definitions: lesion labelling, slice components, crop.

The engine labels each mask once at the finest connectivity over its foreground voxels (a compiled
union-find, ``_kernels``) and joins those labels along boundary neighbour pairs for a coarser one, labels
the slices' 2D components in the same pass with in-plane steps only, crops from flat indices and takes
HD95's percentile from a partial sort.
Each is checked here against the obvious, independent construction (``scipy.ndimage.label`` of each
mask, of each slice), on random masks and on real lesion masks, lesion ids included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from msbench.benchmark.metrics import MetricParams, evaluate_case, evaluate_case_with_lesions
from msbench.benchmark.metrics._surface import percentile_linear

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REAL_MASKS = sorted((SHARED / "data/open_ms_data/cross_sectional/MNI").glob("patient*/GOLD_STANDARD*.nii.gz"))
RANK = {6: 1, 18: 2, 26: 3}


def reference_lesions(mask: np.ndarray, connectivity: int, min_voxels: int) -> tuple[np.ndarray, int]:
    """scipy labelling of one mask (ids in raster order of first voxel), small lesions removed and renumbered."""
    labels, n = ndimage.label(mask, ndimage.generate_binary_structure(3, RANK[connectivity]))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    new_id = np.zeros(n + 1, dtype=np.int64)
    new_id[keep] = np.arange(1, int(keep.sum()) + 1)
    return new_id[labels], int(keep.sum())


def reference_rows(labels: np.ndarray, n: int, other: np.ndarray, voxel_mm3: float) -> pd.DataFrame:
    """Per lesion: id, volume, centroid and the voxels covered by ``other``, from the label image."""
    ids = labels.ravel()
    coords = np.indices(labels.shape).reshape(3, -1)
    sizes = np.bincount(ids, minlength=n + 1)[1:]
    rows = {"lesion_id": np.arange(1, n + 1), "volume_vox": sizes, "volume_mm3": sizes * voxel_mm3}
    for axis, name in enumerate(("centroid_i", "centroid_j", "centroid_k")):
        rows[name] = np.bincount(ids, weights=coords[axis], minlength=n + 1)[1:] / sizes
    rows["overlap_vox"] = np.bincount(ids[other.ravel()], minlength=n + 1)[1:]
    return pd.DataFrame(rows)


def check_lesion_tables(pred: np.ndarray, ref: np.ndarray, spacing, params: MetricParams) -> None:
    """Every per-lesion row of both families equals the scipy labelling of each mask alone."""
    record, rows = evaluate_case_with_lesions(pred, ref, spacing, params=params)
    table = pd.DataFrame(rows)
    voxel_mm3 = float(np.prod(spacing))
    min_voxels = int(np.floor(params.anima_min_volume_mm3 / voxel_mm3)) + 1
    masks = (("pred", pred), ("ref", ref))
    isbi = {name: reference_lesions(m, params.connectivity, 1) for name, m in masks}
    anima = {name: reference_lesions(m, params.anima_connectivity, min_voxels) for name, m in masks}
    assert (record["n_lesions_pred"], record["n_lesions_ref"]) == (isbi["pred"][1], isbi["ref"][1])
    assert (record["anima_n_pred"], record["anima_n_ref"]) == (anima["pred"][1], anima["ref"][1])
    for family, labelled in (("isbi", isbi), ("anima", anima)):
        for source, other_source in (("pred", "ref"), ("ref", "pred")):
            labels, n = labelled[source]
            # ISBI counts overlap with the other mask; Anima with the other mask's kept lesions.
            other = (pred if other_source == "pred" else ref) if family == "isbi" else labelled[other_source][0] > 0
            expected = reference_rows(labels, n, other, voxel_mm3)
            got = table[(table["family"] == family) & (table["source"] == source)] if len(table) else table
            got = got.reset_index(drop=True)
            assert len(got) == n, (family, source)
            if n:
                pd.testing.assert_frame_equal(got[expected.columns], expected, check_dtype=False, rtol=1e-12)


def reference_found_slices(pred: np.ndarray, ref: np.ndarray, coverage: float, connectivity_2d: int) -> np.ndarray:
    """Per axial slice: some 2D component of G (scipy, per slice) covered by P for at least ``coverage``."""
    structure = ndimage.generate_binary_structure(2, 1 if connectivity_2d == 4 else 2)
    found = np.zeros(ref.shape[2], dtype=bool)
    for k in range(ref.shape[2]):
        labels, n = ndimage.label(ref[:, :, k], structure)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        covered = np.bincount(labels[pred[:, :, k]], minlength=n + 1)
        found[k] = bool(np.any((covered >= coverage * sizes)[1:]))
    return found


def check_slice_counts(pred: np.ndarray, ref: np.ndarray, params: MetricParams) -> None:
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0), params=params)
    positive = ref.any(axis=(0, 1))
    found = reference_found_slices(pred, ref, params.slice_coverage, params.slice_connectivity)
    assert r["slice_tp"] == int(np.count_nonzero(positive & found))
    assert r["slice_fn"] == int(np.count_nonzero(positive & ~found))


@st.composite
def lesion_cases(draw):
    """Random blobby masks (smoothed noise) with random connectivities, size filter and slice settings."""
    shape = tuple(draw(st.integers(3, 14)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    density = draw(st.floats(0.0, 0.5))
    smooth = draw(st.sampled_from([0.0, 0.7, 1.2]))
    masks = []
    for _ in range(2):
        noise = rng.random(shape)
        if smooth:
            noise = ndimage.gaussian_filter(noise, smooth)
        masks.append(noise < np.quantile(noise, density) if density > 0 else np.zeros(shape, bool))
    params = MetricParams(
        connectivity=draw(st.sampled_from([6, 18, 26])),
        anima_connectivity=draw(st.sampled_from([6, 18, 26])),
        anima_min_volume_mm3=draw(st.sampled_from([0.0, 3.0, 6.0])),
        slice_coverage=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
        slice_connectivity=draw(st.sampled_from([4, 8])),
        surface_margin_vox=draw(st.integers(1, 3)),
    )
    return masks[0], masks[1], params


@settings(max_examples=60, deadline=None)
@given(lesion_cases())
def test_lesion_tables_equal_scipy_labelling_of_each_mask(case):
    pred, ref, params = case
    check_lesion_tables(pred, ref, (1.0, 1.0, 1.0), params)


@settings(max_examples=40, deadline=None)
@given(lesion_cases())
def test_slice_counts_equal_per_slice_scipy_labelling(case):
    pred, ref, params = case
    check_slice_counts(pred, ref, params)


@settings(max_examples=30, deadline=None)
@given(lesion_cases())
def test_memory_layout_does_not_change_the_record(case):
    pred, ref, params = case
    expected = evaluate_case(pred, ref, (0.9, 1.0, 1.3), params=params)
    fortran = evaluate_case(np.asfortranarray(pred), np.asfortranarray(ref), (0.9, 1.0, 1.3), params=params)
    np.testing.assert_equal(fortran, expected)
    # A strided view (every voxel of a larger array with gaps) reads the same voxels.
    wide_p, wide_r = (
        np.zeros((*pred.shape[:2], 2 * pred.shape[2]), bool),
        np.zeros((*ref.shape[:2], 2 * ref.shape[2]), bool),
    )
    wide_p[:, :, ::2], wide_r[:, :, ::2] = pred, ref
    strided = evaluate_case(wide_p[:, :, ::2], wide_r[:, :, ::2], (0.9, 1.0, 1.3), params=params)
    np.testing.assert_equal(strided, expected)


def test_rows_longer_than_256_voxels_label_as_scipy():
    """A row (the last axis) of more than 256 foreground voxels: positions within a row no longer fit a byte."""
    rng = np.random.default_rng(7)
    shape = (4, 5, 700)
    masks = [ndimage.gaussian_filter(rng.random(shape), (0.6, 0.6, 3.0)) < 0.5 for _ in range(2)]
    masks[1][1, 2, 20:680] = True  # one run of 660 voxels
    params = MetricParams(connectivity=18, anima_connectivity=6)
    check_lesion_tables(masks[0], masks[1], (1.0, 1.0, 1.0), params)
    check_slice_counts(masks[0], masks[1], params)


def real_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Consensus masks of different patients (all in MNI space) paired: partial, realistic overlap."""
    import nibabel as nib

    masks = [np.asarray(nib.load(p).dataobj) > 0 for p in REAL_MASKS[:4]]
    pairs = []
    for a, b in zip(masks, masks[1:] + masks[:1], strict=True):
        both = a | b
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(both))
        pairs.append((np.ascontiguousarray(a[box]), np.ascontiguousarray(b[box])))
    return pairs


@pytest.mark.skipif(len(REAL_MASKS) < 2, reason="open_ms_data consensus masks not present")
@pytest.mark.parametrize(
    "params", [MetricParams(), MetricParams(connectivity=26, anima_connectivity=18, slice_connectivity=4)]
)
def test_real_masks_lesion_tables_and_slices_equal_scipy(params):
    for pred, ref in real_pairs():
        check_lesion_tables(pred, ref, (1.0, 1.0, 1.0), params)
        check_slice_counts(pred, ref, params)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 500.0, allow_nan=False), min_size=1, max_size=80),
    st.floats(0.001, 100.0, allow_nan=False),
    st.booleans(),
)
def test_percentile_equals_numpy_bit_for_bit(values, q, grid_distances):
    data = np.asarray(values)
    if grid_distances:  # surface distances are square roots of integer sums: many exact ties
        data = np.sqrt(np.floor(data / 10.0))
    for quantile in (q, 95.0, 100.0):
        assert percentile_linear(data, quantile) == float(np.percentile(data, quantile))
