"""Speed of the full per-case metric suite next to medpy and MONAI, measured in the same run.

Run: ``pytest tests/perf/test_metrics_speed.py -m perf --benchmark-enable -p no:cacheprovider -s``.
The pair is a realistic 181x217x181 lesion mask: the open_ms_data consensus mask of patient01 cropped
from 182x218x182 when present, else a synthetic multi-lesion mask; the prediction perturbs it
(dilated, eroded and dropped lesions, false positives). Single thread for every contender. On a
shared, loaded machine add ``--benchmark-timer time.process_time`` (CPU time) for stable figures.
``test_msbench_every_real_case`` adds the median over all open_ms_data consensus masks (msbench only:
the peers would take minutes). Targets (issue 13c): 15 ms or less per case, 90x medpy, 15x MONAI.
The suite's own compiled loops (``benchmark/metrics/_kernels.py``) are measured against the library calls
they replaced: the lesion labelling against cc3d, the far-voxel search against scipy's KD-tree.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from msbench.benchmark.metrics import evaluate_case

pytestmark = pytest.mark.perf

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REAL_MASK = (
    SHARED / "data/open_ms_data/cross_sectional/MNI/patient01"
    / "GOLD_STANDARD_N4_noneck_reduced_winsor_regtoFLAIR_regtoMNI.nii.gz"
)  # fmt: skip
REAL_MASKS = sorted(REAL_MASK.parents[1].glob("patient*/" + REAL_MASK.name))
SHAPE = (181, 217, 181)
SPACING = (1.0, 1.0, 1.0)
MEDIANS_S: dict[str, float] = {}


def synthetic_reference(rng: np.random.Generator) -> np.ndarray:
    """About 60 ellipsoidal lesions of 1-8 mm radius in the central 60 % of the volume."""
    ref = np.zeros(SHAPE, bool)
    grid = np.ogrid[tuple(slice(0, n) for n in SHAPE)]
    for _ in range(60):
        centre = [rng.uniform(0.2 * n, 0.8 * n) for n in SHAPE]
        radii = rng.uniform(1.0, 8.0) * rng.uniform(0.6, 1.4, size=3)
        ref |= sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1.0
    return ref


def perturb(ref: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible prediction: a third of lesions dilated, a third eroded, small ones dropped, 15 false positives."""
    labels, n = ndimage.label(ref, ndimage.generate_binary_structure(3, 3))
    ids = np.arange(1, n + 1)
    fate = rng.integers(0, 3, size=n)
    small = np.bincount(labels.ravel(), minlength=n + 1)[1:] < 15
    dropped = ids[small & (rng.random(n) < 0.4)]
    grow, shrink = np.isin(labels, ids[(fate == 1) & ~small]), np.isin(labels, ids[fate == 2])
    pred = ref & ~np.isin(labels, dropped)
    pred |= ndimage.binary_dilation(grow)
    pred &= ~(shrink & ~ndimage.binary_erosion(shrink))
    inside = np.argwhere(ref)
    for _ in range(15):
        centre = inside[rng.integers(len(inside))] + rng.integers(-25, 26, size=3)
        centre = np.clip(centre, 3, np.array(SHAPE) - 4)
        pred[tuple(slice(c - 1, c + 2) for c in centre)] = True
    return pred


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if REAL_MASK.is_file():
        import nibabel as nib

        ref = np.asarray(nib.load(str(REAL_MASK)).dataobj)[: SHAPE[0], : SHAPE[1], : SHAPE[2]] > 0
    else:
        ref = synthetic_reference(rng)
    pred = perturb(ref, rng)
    assert ref.shape == SHAPE and ref.any() and pred.any()
    # One memory layout for everyone (nibabel hands column-major arrays; mixed layouts slow every peer).
    return np.ascontiguousarray(pred), np.ascontiguousarray(ref)


def test_msbench_full_suite(benchmark, pair):
    pred, ref = pair
    # 40 rounds after 3 warm-up ones (the first call also loads the compiled loops): a median that holds still.
    record = benchmark.pedantic(evaluate_case, args=(pred, ref, SPACING), rounds=40, iterations=1, warmup_rounds=3)
    assert 0.0 < record["dice"] < 1.0 and record["n_lesions_ref"] > 10
    MEDIANS_S["msbench"] = benchmark.stats.stats.median


def test_msbench_every_real_case(benchmark):
    if len(REAL_MASKS) < 2:
        pytest.skip("open_ms_data consensus masks not present")
    import nibabel as nib

    rng = np.random.default_rng(0)
    pairs = []
    for path in REAL_MASKS:
        ref = np.asarray(nib.load(str(path)).dataobj)[: SHAPE[0], : SHAPE[1], : SHAPE[2]] > 0
        pairs.append((np.ascontiguousarray(perturb(ref, rng)), np.ascontiguousarray(ref)))
    cycle = itertools.cycle(pairs)

    def next_case() -> tuple[tuple[np.ndarray, np.ndarray, tuple[float, ...]], dict]:
        return (*next(cycle), SPACING), {}

    # One round per case, every case three times: the median is the per-case median.
    benchmark.pedantic(evaluate_case, setup=next_case, rounds=3 * len(pairs), iterations=1, warmup_rounds=2)
    MEDIANS_S["msbench_every_case"] = benchmark.stats.stats.median


def test_medpy_dc_hd95_assd(benchmark, pair):
    binary = pytest.importorskip("medpy.metric.binary")
    pred, ref = pair

    def medpy_trio() -> tuple[float, float, float]:
        return binary.dc(pred, ref), binary.hd95(pred, ref, SPACING), binary.assd(pred, ref, SPACING)

    dice, _, assd = benchmark.pedantic(medpy_trio, rounds=3, iterations=1, warmup_rounds=0)
    record = evaluate_case(pred, ref, SPACING)
    assert dice == pytest.approx(record["dice"]) and assd == pytest.approx(record["assd_mm"])
    MEDIANS_S["medpy"] = benchmark.stats.stats.median


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_monai_dice_hd95_assd(benchmark, pair):
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    p, g = (torch.from_numpy(np.ascontiguousarray(a)[None, None].astype(np.float32)) for a in pair)

    def monai_trio() -> tuple[float, float, float]:
        return (
            float(metrics.compute_dice(p, g)[0, 0]),
            float(metrics.compute_hausdorff_distance(p, g, percentile=95, spacing=list(SPACING))[0, 0]),
            float(metrics.compute_average_surface_distance(p, g, symmetric=True, spacing=list(SPACING))[0, 0]),
        )

    try:
        _, hd95, _ = benchmark.pedantic(monai_trio, rounds=5, iterations=1, warmup_rounds=1)
    finally:
        torch.set_num_threads(threads)
    assert hd95 == pytest.approx(evaluate_case(*pair, SPACING)["hd95_mm"], rel=1e-5)
    MEDIANS_S["monai"] = benchmark.stats.stats.median


@pytest.fixture(scope="module")
def cropped(pair):
    """The pair as the suite sees it: cropped, with boundaries, and the boundary voxels beyond the local ball."""
    from msbench.benchmark.metrics._crop import crop_case
    from msbench.benchmark.metrics._surface import _ball_offsets, boundary_indices, nearest_in_ball

    case = crop_case(*pair, SPACING, 3)
    edges = (boundary_indices(case.pred, case.pred_fg), boundary_indices(case.ref, case.ref_fg))
    target = np.zeros(case.ref.size, bool)
    target[edges[1]] = True
    near = nearest_in_ball(edges[0], target, *_ball_offsets(case.pred.shape, SPACING, 3))
    far = edges[0][np.isinf(near)]
    assert far.size > 10
    return case, edges, far


def test_labelling_compiled(benchmark, cropped):
    """Both masks' lesions at the ISBI (18) and Anima (6) connectivities, as the suite labels them."""
    from dataclasses import replace

    from msbench.benchmark.metrics._lesions import label_case_lesions

    case, edges, _ = cropped

    def label() -> list:
        return label_case_lesions(replace(case), edges, [(18, 1), (6, 3)])  # a fresh case: its Nodes included

    benchmark(label)
    MEDIANS_S["labelling_msbench"] = benchmark.stats.stats.median


def test_labelling_cc3d(benchmark, cropped):
    """The library way to the same lesions: one cc3d labelling per mask and connectivity."""
    import cc3d

    case, _, _ = cropped

    def label() -> list:
        return [cc3d.connected_components(m.view(np.uint8), connectivity=c) for m in (case.pred, case.ref)
                for c in (18, 6)]  # fmt: skip

    benchmark(label)
    MEDIANS_S["labelling_cc3d"] = benchmark.stats.stats.median


def test_far_search_grid(benchmark, cropped):
    from msbench.benchmark.metrics._kernels import nearest_on_grid
    from msbench.benchmark.metrics._surface import FAR_CELL_VOX

    case, edges, far = cropped
    shape, spacing = np.asarray(case.pred.shape, dtype=np.int64), np.asarray(SPACING)
    benchmark(nearest_on_grid, far, edges[1], shape, spacing, FAR_CELL_VOX)
    MEDIANS_S["far_grid"] = benchmark.stats.stats.median


def test_far_search_kd_tree(benchmark, cropped):
    """scipy's KD-tree over the other boundary (built as the suite built it before), queried at the far voxels."""
    from scipy.spatial import cKDTree

    case, edges, far = cropped
    position = np.stack(np.unravel_index(np.arange(case.pred.size), case.pred.shape), axis=1) * np.asarray(SPACING)
    targets, queries = position[edges[1]], position[far]

    def search() -> np.ndarray:
        tree = cKDTree(targets, leafsize=64, balanced_tree=False, compact_nodes=False, copy_data=False)
        return tree.query(queries, k=1)[0]

    benchmark(search)
    MEDIANS_S["far_kd_tree"] = benchmark.stats.stats.median


def test_report_ratios(capsys):
    if not {"msbench", "medpy", "monai"} <= set(MEDIANS_S):
        pytest.skip("ratios need the three benchmarks of this module in the same run")
    ours = MEDIANS_S["msbench"]
    lines = [f"median ms: {name} {1000 * s:.1f}" for name, s in MEDIANS_S.items()]
    lines += [
        f"medpy / msbench = {MEDIANS_S['medpy'] / ours:.1f}x",
        f"MONAI / msbench = {MEDIANS_S['monai'] / ours:.1f}x",
    ]
    for peer, own, what in (("labelling_cc3d", "labelling_msbench", "lesion labelling"),
                            ("far_kd_tree", "far_grid", "far-voxel search")):  # fmt: skip
        if {peer, own} <= set(MEDIANS_S):
            lines.append(f"{what}: {peer} / {own} = {MEDIANS_S[peer] / MEDIANS_S[own]:.1f}x")
    lines += [
        "targets (issue 13c): msbench <= 15 ms, medpy / msbench >= 90x, MONAI / msbench >= 15x",
    ]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert MEDIANS_S["medpy"] / ours >= 10.0
    assert MEDIANS_S["monai"] / ours > 1.0
