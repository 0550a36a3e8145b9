"""nnunet2d: the raw layout and split handed to nnU-Net, the entropy filter, nnU-Net's locations, one real fit."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from msbench.benchmark.job import epoch_log, epochs_done
from msbench.datasets.case import Case
from msbench.methods import FitContext, build_adapter, get_card
from msbench.methods.nnunet2d._entropy import kept_slices, slice_entropy_bits
from msbench.methods.nnunet2d._layout import DATASET_NAME, NnUNetFolders, write_raw_dataset
from msbench.methods.nnunet2d._process import run_worker, worker_environment


def make_case(root: Path, case_id: str, seed: int, shape=(32, 32, 16), spacing=(1.0, 1.2, 2.0)) -> Case:
    """A FLAIR-like ellipsoid brain with bright spherical lesions (every fourth axial slice lesion-free at least)."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    centre = (np.asarray(shape) - 1) / 2
    brain = sum(((a - c) / (0.42 * s)) ** 2 for a, c, s in zip((i, j, k), centre, shape, strict=True)) < 1
    flair = np.where(brain, 100 + rng.normal(0, 6, shape), 0).astype(np.float32)
    mask = np.zeros(shape, dtype=bool)
    for _ in range(4):
        p = centre + rng.uniform(-0.25, 0.25, 3) * np.asarray(shape)
        mask |= (i - p[0]) ** 2 + (j - p[1]) ** 2 + (k - p[2]) ** 2 < rng.uniform(1.5, 3.0) ** 2
    mask &= brain
    flair[mask] += 70
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (-10.0, 5.0, 2.0)
    root.mkdir(parents=True, exist_ok=True)
    images = {"flair": root / f"{case_id}_flair.nii.gz"}
    masks = {"mask1": root / f"{case_id}_mask1.nii.gz"}
    nib.save(nib.Nifti1Image(flair, affine), images["flair"])
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), masks["mask1"])
    return Case(case_id, case_id.split("_")[0], 1, images, masks, "tiny")


@pytest.fixture(scope="module")
def tiny_cases(tmp_path_factory) -> dict[str, list[Case]]:
    root = tmp_path_factory.mktemp("tiny")
    return {
        "train": [make_case(root, f"p{n}_01", n) for n in range(3)],
        "val": [make_case(root, "p7_01", 7)],
        "test": [make_case(root, "p8_01", 8)],
    }


def test_slice_entropy_is_the_binary_shannon_entropy_of_each_axial_slice():
    mask = np.zeros((10, 10, 5), dtype=bool)
    mask[0, 0, 1] = True  # p = 0.01
    mask[:5, :, 2] = True  # p = 0.5
    mask[:, :, 3] = True  # p = 1
    mask[:2, :3, 4] = True  # p = 0.06
    expected = [scipy_entropy([p, 1 - p], base=2) if 0 < p < 1 else 0.0 for p in (0, 0.01, 0.5, 1, 0.06)]
    np.testing.assert_allclose(slice_entropy_bits(mask), expected, atol=1e-12)
    assert slice_entropy_bits(mask)[1] == pytest.approx(0.0808, abs=1e-4)  # -(.01 log2 .01 + .99 log2 .99)


def test_kept_slices_drop_empty_full_and_low_entropy_slices():
    mask = np.zeros((100, 100, 4), dtype=bool)
    mask[0, :5, 1] = True  # p = 5e-4: H = 0.0062 bits < 0.01, dropped
    mask[0, :20, 2] = True  # p = 2e-3: H = 0.0208 bits, kept
    mask[:, :, 3] = True  # full slice: H = 0
    assert kept_slices(mask, 0.01) == [2]
    assert kept_slices(mask, 0.0) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="entropy_threshold"):
        kept_slices(mask, -0.1)


def test_raw_layout_dataset_json_and_split_are_what_nnunet_reads(tiny_cases, tmp_path):
    from nnunetv2.imageio.nibabel_reader_writer import NibabelIO

    folders = NnUNetFolders(tmp_path / "nnunet")
    train, val = tiny_cases["train"], tiny_cases["val"]
    raw = write_raw_dataset(folders, train, val, ("flair",), "mask1", 0.01)

    assert raw.train == ("p0-01", "p1-01", "p2-01") and raw.val == ("p7-01",)
    splits = json.loads((folders.dataset_raw / "splits_final.json").read_text())
    assert splits == [{"train": ["p0-01", "p1-01", "p2-01"], "val": ["p7-01"]}]
    dataset_json = json.loads((folders.dataset_raw / "dataset.json").read_text())
    assert dataset_json["channel_names"] == {"0": "FLAIR"}
    assert dataset_json["labels"] == {"background": 0, "lesion": 1}
    assert dataset_json["numTraining"] == 4 and dataset_json["file_ending"] == ".nii.gz"
    images = sorted(p.name for p in (folders.dataset_raw / "imagesTr").iterdir())
    labels = sorted(p.name for p in (folders.dataset_raw / "labelsTr").iterdir())
    assert images == ["p0-01_0000.nii.gz", "p1-01_0000.nii.gz", "p2-01_0000.nii.gz", "p7-01_0000.nii.gz"]
    assert labels == ["p0-01.nii.gz", "p1-01.nii.gz", "p2-01.nii.gz", "p7-01.nii.gz"]
    assert not any("p8" in p.name for p in folders.root.rglob("*")), "a test case entered nnU-Net's folders"

    # nnU-Net's own reader sees (C, K, J, I) with the spacing reversed: the axial axis comes first.
    case = train[1]
    data, properties = NibabelIO().read_images([str(folders.dataset_raw / "imagesTr" / "p1-01_0000.nii.gz")])
    np.testing.assert_array_equal(data[0], case.load_image("flair").transpose(2, 1, 0))
    assert properties["spacing"] == list(case.spacing_mm[::-1]) == pytest.approx([2.0, 1.2, 1.0])
    seg, _ = NibabelIO().read_seg(str(folders.dataset_raw / "labelsTr" / "p1-01.nii.gz"))
    np.testing.assert_array_equal(seg[0] > 0, case.load_mask("mask1").transpose(2, 1, 0))

    assert set(raw.kept_slices) == set(raw.train), "only training cases are filtered"
    for identifier, case in zip(raw.train, train, strict=True):
        assert raw.kept_slices[identifier] == kept_slices(case.load_mask("mask1"), 0.01)
        lesion_slices = np.flatnonzero(case.load_mask("mask1").any(axis=(0, 1)))
        assert set(raw.kept_slices[identifier]) <= set(lesion_slices.tolist())


def test_raw_layout_refuses_a_fold_without_validation(tiny_cases, tmp_path):
    with pytest.raises(ValueError, match="validation"):
        write_raw_dataset(NnUNetFolders(tmp_path), tiny_cases["train"], [], ("flair",), "mask1", 0.01)


def test_nnunet_locations_point_inside_the_run_directory_and_leave_the_parent_alone(tmp_path):
    before = dict(os.environ)
    folders = NnUNetFolders(tmp_path / "run" / "nnunet")
    env, device = worker_environment(folders, "cpu")
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        assert Path(env[name]).is_relative_to(tmp_path / "run" / "nnunet"), name
    assert env["nnUNet_compile"] == "false" and device == "cpu"
    assert dict(os.environ) == before
    env, device = worker_environment(folders, "cuda:1")
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and device == "cuda"


def test_paper_augmentation_maps_pixels_like_a_rotation_and_a_flip():
    torch = pytest.importorskip("torch")
    from torch.nn.functional import grid_sample

    from msbench.methods.nnunet2d._augment import PaperAffine2D, affine_matrix, sampling_grid

    image = torch.arange(5 * 7, dtype=torch.float32).reshape(1, 5, 7)
    identity = sampling_grid((5, 7), np.eye(2), (0.0, 0.0))
    out = grid_sample(image[None], identity, "nearest", "border", align_corners=False)[0]
    torch.testing.assert_close(out, image)

    square = torch.arange(36, dtype=torch.float32).reshape(1, 6, 6)
    grid = sampling_grid((6, 6), affine_matrix(rotation_deg=90.0, shear_deg=0.0, zoom=(1.0, 1.0)), (0.0, 0.0))
    rotated = grid_sample(square[None], grid, "nearest", "border", align_corners=False)[0]
    # output (x, y) reads input (x, y) rotated by +90 deg about the centre: out[x, y] = in[5 - y, x]
    expected = torch.from_numpy(np.rot90(square[0].numpy(), k=-1).copy())[None]
    torch.testing.assert_close(rotated, expected)

    flip_only = PaperAffine2D((6, 6), p_affine=0.0, p_flip=1.0)
    seg = (square > 20).to(torch.int16)
    result = flip_only(image=square.clone(), segmentation=seg.clone())
    torch.testing.assert_close(result["image"], torch.flip(square, dims=(-1,)))
    torch.testing.assert_close(result["segmentation"], torch.flip(seg, dims=(-1,)))

    np.random.seed(0)
    moved = PaperAffine2D((6, 6), p_affine=1.0, p_flip=0.0)(image=square.clone(), segmentation=seg.clone())
    assert moved["segmentation"].dtype == torch.int16
    assert set(moved["segmentation"].unique().tolist()) <= {0, 1}


def test_kept_slices_dataset_shows_the_loader_only_kept_slices():
    pytest.importorskip("torch")
    from msbench.methods.nnunet2d._trainer import KeptSlicesDataset

    class Base:
        source_folder = "unused"
        identifiers = ["a", "b"]

        def load_case(self, identifier):
            data = np.arange(1 * 6 * 2 * 2, dtype=np.float32).reshape(1, 6, 2, 2)
            seg = np.zeros((1, 6, 2, 2), dtype=np.int8)
            seg[0, [1, 4]] = 1
            locations = {1: np.array([[0, 1, 0, 0], [0, 4, 1, 1], [0, 5, 0, 1]])}
            return data, seg, None, {"bbox_used_for_cropping": [[2, 8], [0, 2], [0, 2]], "class_locations": locations}

    # native slices 3 and 6 are preprocessed slices 1 and 4 (the crop starts at 2); 9 lies outside the crop
    dataset = KeptSlicesDataset(Base(), {"a": [3, 6, 9], "b": []})
    assert dataset.identifiers == ["a"]
    data, seg, _, properties = dataset.load_case("a")
    full = Base().load_case("a")[0]
    np.testing.assert_array_equal(data, full[:, [1, 4]])
    assert seg.shape == (1, 2, 2, 2) and seg.all()
    np.testing.assert_array_equal(properties["class_locations"][1], [[0, 0, 0, 0], [0, 1, 1, 1]])


def _fit(cases, workdir: Path, hparams: dict | None = None, **recipe_changes):
    card = get_card("nnunet2d")
    recipe = dataclasses.replace(card.recipe("smoke"), **recipe_changes)
    context = FitContext(
        workdir=workdir,
        seed=0,
        device="cpu",
        budget="smoke",
        recipe=recipe,
        hparams=card.hparams("smoke", **(hparams or {})),
        progress=False,
    )
    adapter = build_adapter(card, context)
    return adapter, adapter.fit(cases["train"], cases["val"])


def test_fit_runs_nnunet_inside_the_workdir_and_predicts_on_the_case_grid(tiny_cases, tmp_path):
    paper_extras = {"entropy_threshold": 0.01, "paper_augmentation": True, "test_time_mirroring": True}
    adapter, report = _fit(tiny_cases, tmp_path / "work", paper_extras, epochs=1, iterations_per_epoch=2)
    nnunet = tmp_path / "work" / "nnunet"
    preprocessed_split = nnunet / "nnUNet_preprocessed" / DATASET_NAME / "splits_final.json"
    assert json.loads(preprocessed_split.read_text()) == [{"train": ["p0-01", "p1-01", "p2-01"], "val": ["p7-01"]}]
    assert (adapter.folders.model / "fold_0" / "checkpoint_final.pth").is_file()
    assert "entropy filter:" in (nnunet / "nnunet_worker.log").read_text()
    assert len(report.history) == 1 and report.chosen_epoch == 0
    assert epochs_done(tmp_path / "work") == 1  # its per-epoch log: msbench run's live table counts the epochs
    assert len(epoch_log(adapter.folders.model / "fold_0" / "history.csv")) == 1
    assert report.val_dice is not None and 0.0 <= report.val_dice <= 1.0
    assert report.n_parameters and report.n_parameters > 0
    assert report.chosen["training_slices"] > 0

    case = tiny_cases["test"][0]
    prediction = adapter.predict(case)
    assert prediction.mask.shape == case.shape and prediction.mask.dtype == bool
    prob = prediction.probability
    assert prob is not None and prob.shape == case.shape and prob.dtype == np.float32
    assert np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0
    np.testing.assert_array_equal(prediction.mask, prob > 0.5)


def test_a_fold_without_any_kept_training_slice_is_refused_before_nnunet_starts(tiny_cases, tmp_path):
    empty = make_case(tmp_path / "cases", "p5_01", 5)
    nib.save(nib.Nifti1Image(np.zeros(empty.shape, np.uint8), empty.affine), empty.masks["mask1"])
    with pytest.raises(ValueError, match="kept no training slice"):
        _fit({**tiny_cases, "train": [empty]}, tmp_path / "work", {"entropy_threshold": 0.01}, epochs=1)
    assert not (tmp_path / "work" / "nnunet" / "nnunet_worker.log").exists()


def test_a_failing_worker_names_its_stage_and_log(tmp_path):
    folders = NnUNetFolders(tmp_path / "nnunet")
    folders.root.mkdir(parents=True)
    env, _ = worker_environment(folders, "cpu")
    settings = {"dataset_id": 1, "num_processes": 1, "seed": 0, "epochs": 1}  # no raw dataset was written
    log = folders.root / "worker.log"
    with pytest.raises(RuntimeError, match="stage 'start'") as failure:
        run_worker(folders, settings, env, log, progress=False)
    assert str(log) in str(failure.value)
    assert "FileNotFoundError" in str(failure.value) and "dataset.json does not exist" in log.read_text()


@pytest.mark.slow
def test_nnunet2d_learns_the_tiny_lesions_and_a_seed_reproduces_the_fit(tiny_cases, tmp_path):
    first, _ = _fit(tiny_cases, tmp_path / "a", epochs=6, iterations_per_epoch=25)
    second, _ = _fit(tiny_cases, tmp_path / "b", epochs=6, iterations_per_epoch=25)
    case = tiny_cases["test"][0]
    reference = case.load_mask("mask1")
    p1, p2 = first.predict(case), second.predict(case)
    np.testing.assert_array_equal(p1.mask, p2.mask)
    dice = 2 * (p1.mask & reference).sum() / (p1.mask.sum() + reference.sum())
    assert dice > 0.6
