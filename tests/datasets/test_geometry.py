"""Geometry is checked, not assumed: canonical orientation on load, predictions written back, grids refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import apply_orientation, inv_ornt_aff

from msbench.benchmark.evaluate import evaluate_pair
from msbench.benchmark.metrics import MetricParams, evaluate_case
from msbench.datasets.case import Case
from msbench.datasets.nifti import OBLIQUITY_ENV

# Voxel axis 0 of the new file is old axis 1 reversed, axis 1 is old axis 2, axis 2 is old axis 0 reversed.
PERMUTE_FLIP = np.array([[2, -1], [0, -1], [1, 1]], dtype=float)
SPACING = (3.0, 2.5, 4.0)  # anisotropic, so that a wrong spacing permutation changes distances


def _write(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


def _copy_case(case: Case, root: Path, ornt: np.ndarray | None) -> Case:
    """The case's files on an anisotropic RAS grid, or stored in another voxel order with a consistent affine."""
    base = np.diag([*SPACING, 1.0])
    base[:3, 3] = (-90.0, -120.0, -70.0)

    def convert(path: Path, name: str) -> Path:
        data = np.asanyarray(nib.load(str(path)).dataobj)
        affine = base
        if ornt is not None:
            affine = base @ inv_ornt_aff(ornt, data.shape)
            data = apply_orientation(data, ornt)
        return _write(root / f"{case.case_id}_{name}.nii.gz", data, affine)

    images = {m: convert(p, m) for m, p in case.images.items()}
    masks = {r: convert(p, r) for r, p in case.masks.items()}
    return replace(case, images=images, masks=masks)


@pytest.fixture
def threshold_adapter(smoke_cases, tmp_path):
    from msbench.methods import FitContext, build_adapter, get_card

    card = get_card("threshold")
    context = FitContext(tmp_path / "fit", 0, "cpu", "smoke", card.recipe("smoke"), card.hparams("smoke"))
    adapter = build_adapter(card, context)
    adapter.fit([], [_copy_case(c, tmp_path / "val", None) for c in smoke_cases[4:6]])
    return adapter


def test_a_reoriented_case_loads_predicts_and_scores_like_the_original(smoke_cases, threshold_adapter, tmp_path):
    from msbench.benchmark.job import save_prediction
    from msbench.methods.adapter import Prediction

    original = _copy_case(smoke_cases[0], tmp_path / "ras", None)
    moved = _copy_case(smoke_cases[0], tmp_path / "moved", PERMUTE_FLIP)
    assert nib.aff2axcodes(nib.load(str(moved.images["flair"])).affine) != ("R", "A", "S")
    # The canonical grid is the original's, whatever the files' voxel order.
    assert moved.shape == original.shape and moved.spacing_mm == SPACING
    np.testing.assert_allclose(moved.affine, original.affine, atol=1e-6)
    np.testing.assert_array_equal(moved.load_images(("flair", "t1")), original.load_images(("flair", "t1")))

    pred_original, pred_moved = threshold_adapter.predict(original), threshold_adapter.predict(moved)
    assert pred_moved.mask.any()
    np.testing.assert_array_equal(pred_moved.mask, pred_original.mask)
    params = MetricParams()
    scores = [
        evaluate_case(p.mask, c.load_mask("mask1"), c.spacing_mm, params=params)
        for p, c in ((pred_original, original), (pred_moved, moved))
    ]
    assert scores[0] == pytest.approx(scores[1], nan_ok=True)

    # Saved in the input's own orientation and affine: voxel for voxel on the reoriented reference file.
    save_prediction(tmp_path / "fold", moved, Prediction(mask=pred_moved.mask, probability=None))
    saved = nib.load(str(tmp_path / "fold" / "predictions" / f"{moved.case_id}.nii.gz"))
    reference = nib.load(str(moved.masks["mask1"]))
    np.testing.assert_allclose(saved.affine, reference.affine, atol=1e-6)
    assert saved.shape == reference.shape != original.shape
    expected = apply_orientation(pred_original.mask, PERMUTE_FLIP)  # the original (RAS) grid, moved like the files
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj).astype(bool), expected)
    # msbench evaluate on the two files gives the runner's numbers.
    record, _ = evaluate_pair(
        tmp_path / "fold" / "predictions" / f"{moved.case_id}.nii.gz", moved.masks["mask1"], params
    )
    assert {k: record[k] for k in scores[0]} == pytest.approx(scores[0], nan_ok=True)


def test_evaluate_pairs_one_grid_stored_in_two_orientations(tmp_path):
    mask = np.zeros((6, 7, 5), np.uint8)
    mask[1:3, 2:5, 1:4] = 1
    mask[5, 6, 4] = 1
    base = np.diag([1.0, 2.0, 3.0, 1.0])
    ras = _write(tmp_path / "ras.nii.gz", mask, base)
    moved = _write(
        tmp_path / "moved.nii.gz", apply_orientation(mask, PERMUTE_FLIP), base @ inv_ornt_aff(PERMUTE_FLIP, mask.shape)
    )
    record, _ = evaluate_pair(moved, ras, MetricParams())
    assert record["dice"] == 1.0 and record["hd95_mm"] == 0.0


def test_an_oblique_grid_is_refused_naming_the_file(tmp_path, monkeypatch):
    angle = np.radians(10.0)
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    affine = rotation @ np.diag([1.0, 1.0, 3.0, 1.0])
    flair = _write(tmp_path / "flair.nii.gz", np.ones((4, 4, 4), np.float32), affine)
    case = Case("c", "c", None, {"flair": flair}, {})
    with pytest.raises(ValueError, match=r"flair\.nii\.gz: the voxel axes are oblique .*10\.00.*MSBENCH_MAX_OBLIQ"):
        case.shape  # noqa: B018
    monkeypatch.setenv(OBLIQUITY_ENV, "12")
    assert replace(case).shape == (4, 4, 4)  # accepted on request, closest canonical axes


def test_images_and_masks_on_different_grids_are_refused_naming_both_files(tmp_path):
    flair = _write(tmp_path / "flair.nii.gz", np.ones((4, 4, 4), np.float32), np.eye(4))
    shifted = np.eye(4)
    shifted[0, 3] = 2.0
    mask = _write(tmp_path / "mask.nii.gz", np.zeros((4, 4, 4), np.uint8), shifted)
    with pytest.raises(ValueError, match=r"mask\.nii\.gz .* and .*flair\.nii\.gz .* are not on one voxel grid"):
        Case("c", "c", None, {"flair": flair}, {"mask1": mask}).shape  # noqa: B018
    small = _write(tmp_path / "small.nii.gz", np.zeros((4, 4, 3), np.uint8), np.eye(4))
    with pytest.raises(ValueError, match=r"small\.nii\.gz \(shape \(4, 4, 3\)\)"):
        Case("c", "c", None, {"flair": flair}, {"mask1": small}).load_mask("mask1")


def test_one_mask_check_for_the_runner_and_evaluate(tmp_path):
    from msbench.benchmark.evaluate import load_mask

    flair = _write(tmp_path / "flair.nii.gz", np.ones((4, 4, 4), np.float32), np.eye(4))
    soft = np.zeros((4, 4, 4), np.float32)
    soft[1, 1, 1] = 0.75  # the old runner read this as lesion (> 0.5); evaluate refused it
    path = _write(tmp_path / "soft.nii.gz", soft, np.eye(4))
    case = Case("c", "c", None, {"flair": flair}, {"mask1": path})
    for read in (lambda: case.load_mask("mask1"), lambda: load_mask(path)):
        with pytest.raises(ValueError, match=r"soft\.nii\.gz has values \[0\.0, 0\.75\]"):
            read()
    labels = np.zeros((4, 4, 4), np.uint8)
    labels[0, 0, 0], labels[2, 2, 2] = 1, 2
    label_path = _write(tmp_path / "labels.nii.gz", labels, np.eye(4))
    with pytest.raises(ValueError, match=r"labels\.nii\.gz has values \[0, 1, 2\]"):
        load_mask(label_path)
    label_case = Case("c", "c", None, {"flair": flair}, {"label": label_path}, meta={"masks": "label_map"})
    assert label_case.load_mask("label").sum() == 2  # nnU-Net label maps: every non-zero label is lesion


def _unstripped_case(root: Path, with_brain_mask: bool, ornt: np.ndarray | None = None) -> tuple[Case, np.ndarray]:
    """A head that is not skull stripped (every voxel > 0) with a bright lesion inside a box-shaped brain."""
    shape = (24, 20, 10)
    rng = np.random.default_rng(0)
    flair = rng.uniform(50.0, 150.0, shape).astype(np.float32)  # scalp and skull included: nothing is 0
    brain = np.zeros(shape, bool)
    brain[4:20, 5:16, 2:8] = True
    flair[brain] = 100.0
    mask = np.zeros(shape, np.uint8)
    mask[8:11, 8:11, 4:6] = 1
    flair[mask > 0] = 300.0
    flair[0:3, 0:3, :] = 400.0  # bright skull: lesion-like, but outside the brain
    base = np.diag([1.0, 1.0, 3.0, 1.0])
    files = {"flair": flair, "mask1": mask, "brain": brain.astype(np.uint8)}
    if ornt is not None:
        files = {name: apply_orientation(data, ornt) for name, data in files.items()}
        base = base @ inv_ornt_aff(ornt, shape)
    paths = {name: _write(root / f"{name}.nii.gz", data, base) for name, data in files.items()}
    meta = {"brain_mask": str(paths["brain"])} if with_brain_mask else {}
    return Case("u", "u", None, {"flair": paths["flair"]}, {"mask1": paths["mask1"]}, meta=meta), brain


def test_load_brain_is_the_datasets_mask_else_the_nonzero_inputs(tmp_path):
    case, brain = _unstripped_case(tmp_path / "a", with_brain_mask=True, ornt=PERMUTE_FLIP)
    assert case.brain_source == "dataset"
    np.testing.assert_array_equal(case.load_brain(), brain)  # canonical grid, like the images
    plain, _ = _unstripped_case(tmp_path / "b", with_brain_mask=False)
    assert plain.brain_source == "nonzero" and plain.load_brain().all()
    two = np.zeros((2, 3, 3, 3), np.float32)
    two[0, 0, 0, 0], two[1, 2, 2, 2] = 1.0, 5.0
    assert plain.load_brain(images=two).sum() == 2  # any channel above 0
    empty = _write(tmp_path / "empty.nii.gz", np.zeros((24, 20, 10), np.uint8), np.diag([1.0, 1.0, 3.0, 1.0]))
    with pytest.raises(ValueError, match=r"empty\.nii\.gz: the brain mask of case 'u' is empty"):
        replace(plain, meta={"brain_mask": str(empty)}).load_brain()


def test_preprocessing_and_the_threshold_baseline_use_the_datasets_brain(tmp_path):
    from msbench.methods import FitContext, build_adapter, get_card
    from msbench.methods.engine.slices import load_slice_volume
    from msbench.methods.engine.volumes import load_volume

    case, brain = _unstripped_case(tmp_path / "c", with_brain_mask=True)
    volume = load_volume(case, ("flair",), "mask1", crop_margin=0)
    assert volume.bbox == (slice(4, 20), slice(5, 16), slice(2, 8))  # the brain's box, not the whole head
    np.testing.assert_array_equal(volume.brain, brain[volume.bbox])
    slices = load_slice_volume(case, ("flair",), "mask1", window_mm=8.0)
    assert slices.box[2] == slice(2, 8) and slices.image.shape[1:3] == (16, 11)  # the brain's extent
    card = get_card("threshold")
    context = FitContext(tmp_path / "fit", 0, "cpu", "smoke", card.recipe("smoke"), card.hparams("smoke"))
    adapter = build_adapter(card, context)
    adapter.fit([], [case])
    mask = adapter.predict(case).mask
    assert mask[8:11, 8:11, 4:6].all() and not (mask & ~brain).any()  # the bright skull is not lesion


def test_files_of_one_case_may_store_the_grid_in_different_voxel_orders(tmp_path):
    mask = np.zeros((6, 7, 5), np.uint8)
    mask[1:3, 2:5, 1:4] = 1
    base = np.diag([1.0, 2.0, 3.0, 1.0])
    flair = _write(tmp_path / "flair.nii.gz", np.ones((6, 7, 5), np.float32), base)
    moved = apply_orientation(mask, PERMUTE_FLIP)
    path = _write(tmp_path / "mask.nii.gz", moved, base @ inv_ornt_aff(PERMUTE_FLIP, mask.shape))
    case = Case("c", "c", None, {"flair": flair}, {"mask1": path})
    np.testing.assert_array_equal(case.load_mask("mask1"), mask.astype(bool))
    saved = case.to_nifti(case.load_mask("mask1").astype(np.uint8))  # written in the first image's orientation
    np.testing.assert_allclose(saved.affine, base)
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj), mask)


@pytest.mark.parametrize("first", ["msbench.datasets", "msbench.benchmark.evaluate", "msbench.benchmark.metrics"])
def test_the_mask_reader_imports_without_torch_or_a_cycle(first, tmp_path):
    import subprocess
    import sys

    path = _write(tmp_path / "m.nii.gz", np.eye(3, dtype=np.uint8)[:, :, None].repeat(2, axis=2), np.eye(4))
    code = (
        f"import sys, importlib; importlib.import_module({first!r}); from msbench.datasets import read_mask; "
        f"from msbench.benchmark.evaluate import load_mask; assert read_mask({str(path)!r})[0].sum() == 6; "
        f"assert load_mask({str(path)!r})[0].sum() == 6; assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
