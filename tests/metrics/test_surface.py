"""Surface distances: analytic phantoms, anisotropic spacing, medpy and MONAI agreement, HD95 convention."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from msbench.benchmark.metrics import MetricParams, evaluate_case

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REAL_MASKS = sorted((SHARED / "data/open_ms_data/cross_sectional/MNI").glob("patient*/GOLD_STANDARD*.nii.gz"))


def ball(shape, center, radius_mm, spacing) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    dist2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, center, spacing, strict=True))
    return dist2 <= radius_mm**2


def surface(record) -> tuple[float, float, float]:
    return record["hd_mm"], record["hd95_mm"], record["assd_mm"]


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.5, 0.8, 3.0), (1.2, 0.4, 0.9)])
def test_two_voxels_are_their_euclidean_distance_apart(spacing):
    pred, ref = np.zeros((12, 12, 12), bool), np.zeros((12, 12, 12), bool)
    pred[2, 3, 4] = True
    ref[7, 5, 4] = True
    expected = math.hypot(5 * spacing[0], 2 * spacing[1])
    assert surface(evaluate_case(pred, ref, spacing)) == pytest.approx((expected,) * 3)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.5, 0.8, 3.0)])
def test_nested_cubes_hausdorff_is_the_corner_offset(spacing):
    inner, outer = np.zeros((24, 24, 24), bool), np.zeros((24, 24, 24), bool)
    inner[6:16, 6:16, 6:16] = True
    outer[4:18, 4:18, 4:18] = True
    r = evaluate_case(inner, outer, spacing)
    # Every inner boundary voxel lies 2 voxels inside an outer face; the outer corners are 2 voxels off
    # along every axis from the inner corners.
    assert r["hd_mm"] == pytest.approx(2 * math.sqrt(sum(s * s for s in spacing)))
    assert r["hd_mm"] == pytest.approx(evaluate_case(outer, inner, spacing)["hd_mm"])


def test_identical_masks_have_zero_distances():
    mask = ball((20, 20, 20), (10, 9, 11), 5.0, (1, 1, 1))
    assert surface(evaluate_case(mask, mask, (1.0, 1.0, 1.0))) == (0.0, 0.0, 0.0)


def test_hd95_is_the_max_of_directed_percentiles_not_the_pooled_one():
    """P = {x=0}; G = {x=0, x=10} (two voxels) along the last axis, 1 mm.

    Directed distances: P->G = [0]; G->P = [0, 10]. Max of directed 95th percentiles = max(0, 9.5) = 9.5.
    medpy pools [0, 0, 10]: 95th percentile = 9.0. HD = 10 both ways; ASSD = 10 / 3 both ways.
    """
    pred, ref = np.zeros((3, 3, 14), bool), np.zeros((3, 3, 14), bool)
    pred[1, 1, 1] = True
    ref[1, 1, 1] = ref[1, 1, 11] = True
    r = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    assert r["hd95_mm"] == pytest.approx(9.5)
    assert r["hd_mm"] == pytest.approx(10.0)
    assert r["assd_mm"] == pytest.approx(10 / 3)
    medpy = pytest.importorskip("medpy.metric.binary")
    assert medpy.hd95(pred, ref, (1.0, 1.0, 1.0)) == pytest.approx(9.0)
    assert medpy.assd(pred, ref, (1.0, 1.0, 1.0)) == pytest.approx(10 / 3)


def shifted_spheres(spacing) -> tuple[np.ndarray, np.ndarray]:
    shape = (40, 44, 30)
    ref = ball(shape, (20, 22, 15), 8.0, spacing) | ball(shape, (8, 8, 6), 3.0, spacing)
    pred = ball(shape, (22, 21, 16), 7.0, spacing) | ball(shape, (33, 36, 25), 2.5, spacing)
    return pred, ref


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.9, 0.7, 2.5)])
def test_hd_and_assd_agree_with_medpy_and_hd95_is_never_below_medpy(spacing):
    medpy = pytest.importorskip("medpy.metric.binary")
    pred, ref = shifted_spheres(spacing)
    r = evaluate_case(pred, ref, spacing)
    assert r["hd_mm"] == pytest.approx(medpy.hd(pred, ref, spacing), rel=1e-12)
    assert r["assd_mm"] == pytest.approx(medpy.assd(pred, ref, spacing), rel=1e-12)
    assert r["hd95_mm"] >= medpy.hd95(pred, ref, spacing) - 1e-12


def test_mask_touching_the_volume_edge_matches_medpy():
    medpy = pytest.importorskip("medpy.metric.binary")
    pred, ref = np.zeros((10, 10, 10), bool), np.zeros((10, 10, 10), bool)
    pred[0:4, 0:10, 3:7] = True
    ref[0:5, 2:10, 2:9] = True
    r = evaluate_case(pred, ref, (1.0, 2.0, 0.5), params=MetricParams(surface_margin_vox=1))
    assert r["hd_mm"] == pytest.approx(medpy.hd(pred, ref, (1.0, 2.0, 0.5)))
    assert r["assd_mm"] == pytest.approx(medpy.assd(pred, ref, (1.0, 2.0, 0.5)))


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.9, 0.7, 2.5)])
def test_hd95_hd_assd_agree_with_monai(spacing):
    """MONAI: scipy-erosion edges (6-connected), directed-max HD95 via torch.quantile (linear), pooled ASSD."""
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    pred, ref = shifted_spheres(spacing)
    r = evaluate_case(pred, ref, spacing)
    p, g = (torch.from_numpy(a[None, None].astype(np.float32)) for a in (pred, ref))
    hd95 = float(metrics.compute_hausdorff_distance(p, g, percentile=95, spacing=list(spacing))[0, 0])
    hd = float(metrics.compute_hausdorff_distance(p, g, spacing=list(spacing))[0, 0])
    assd = float(metrics.compute_average_surface_distance(p, g, symmetric=True, spacing=list(spacing))[0, 0])
    assert (r["hd95_mm"], r["hd_mm"], r["assd_mm"]) == pytest.approx((hd95, hd, assd), rel=1e-5)


@pytest.mark.skipif(not REAL_MASKS, reason="open_ms_data consensus masks not present")
def test_real_consensus_mask_against_an_eroded_copy_agrees_with_medpy():
    import nibabel as nib

    medpy = pytest.importorskip("medpy.metric.binary")
    ref = np.asarray(nib.load(REAL_MASKS[0]).dataobj) > 0
    # A central block of the lesion bounding box keeps medpy's full-volume distance transforms quick.
    box = tuple(slice(int(np.percentile(i, 20)), int(np.percentile(i, 80))) for i in np.nonzero(ref))
    ref = ref[box]
    assert ref.sum() > 500
    pred = ndimage.binary_erosion(ref) | ndimage.binary_dilation(np.roll(ref, 3, axis=2) & ~ref)
    spacing = (1.0, 1.0, 1.0)
    r = evaluate_case(pred, ref, spacing)
    assert r["hd_mm"] == pytest.approx(medpy.hd(pred, ref, spacing))
    assert r["assd_mm"] == pytest.approx(medpy.assd(pred, ref, spacing))
    assert r["hd95_mm"] >= medpy.hd95(pred, ref, spacing)


def test_far_false_positive_uses_the_grid_fallback_exactly():
    """Beyond the local search ball the distance comes from the bucket-grid search: still exact."""
    pred, ref = np.zeros((40, 10, 10), bool), np.zeros((40, 10, 10), bool)
    ref[2:5, 2:5, 2:5] = True
    pred[2:5, 2:5, 2:5] = True
    pred[35, 5, 5] = True
    r = evaluate_case(pred, ref, (1.5, 1.0, 1.0), params=MetricParams(surface_margin_vox=1))
    assert r["hd_mm"] == pytest.approx(math.sqrt((31 * 1.5) ** 2 + 1 + 1))


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.tuples(*[st.integers(1, 40)] * 3),
    st.tuples(*[st.sampled_from([0.4, 0.9, 1.0, 1.5, 3.0])] * 3),
    st.integers(1, 9),
)
def test_grid_search_equals_a_kd_tree_bit_for_bit(seed, shape, spacing, cell):
    """The far-voxel search against scipy's KD-tree over the same positions in mm: same distances, exactly."""
    from scipy.spatial import cKDTree

    from msbench.benchmark.metrics._kernels import nearest_on_grid

    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    targets = np.sort(rng.choice(size, size=int(rng.integers(1, min(size, 300) + 1)), replace=False))
    points = rng.choice(size, size=int(rng.integers(1, 60)), replace=True)
    position = np.stack(np.unravel_index(np.arange(size), shape), axis=1) * np.asarray(spacing)
    expected = cKDTree(position[targets]).query(position[points], k=1)[0]
    got = nearest_on_grid(points, targets, np.asarray(shape, dtype=np.int64), np.asarray(spacing), cell)
    np.testing.assert_array_equal(got, expected)
