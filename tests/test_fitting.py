"""The one door (``msbench.benchmark.fitting``): overrides, seeding, the in-memory training grid, the checks."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from msbench.benchmark import fitting
from msbench.benchmark.fitting import (
    FitSpec,
    Overrides,
    fit,
    fit_settings,
    predict_case,
    predict_on_training_grid,
    resampled_case,
)
from msbench.datasets import Case
from msbench.datasets.preprocessing import resample_to_shape, shape_for_spacing
from msbench.methods import FitReport, Prediction, get_card

BENCHMARK = Path(fitting.__file__).resolve().parent


def test_overrides_win_over_the_card_defaults_and_the_budget() -> None:
    card = get_card("unet3d")
    name = next(iter(card.defaults))
    value = ("tuned", card.defaults[name])
    hparams, recipe = fit_settings(card, "smoke", Overrides(params={name: value}, batch_size=7))
    assert hparams == {**card.hparams("smoke"), name: value}
    smoke = card.recipe("smoke")
    # what a run's manifest records (the run id hashes it): the tuned value among the recipe's overrides
    assert dataclasses.asdict(recipe) == {
        **dataclasses.asdict(smoke),
        "batch_size": 7,
        "overrides": {**smoke.overrides, name: value},
    }
    assert card.recipe("smoke") == smoke  # the card itself is never rebuilt


def test_without_overrides_the_fit_is_the_card_as_methods_show_prints_it() -> None:
    card = get_card("unet3d")
    assert fit_settings(card, "smoke") == (card.hparams("smoke"), card.recipe("smoke"))


def test_a_training_free_method_keeps_its_batch_size() -> None:
    card = get_card("threshold")
    assert fit_settings(card, "smoke", Overrides(batch_size=7))[1] == card.recipe("smoke")


def test_a_candidate_recipe_replaces_the_budget_one() -> None:
    card = get_card("unet3d")
    candidate = dataclasses.replace(card.recipe("smoke"), epochs=1, overrides={"lr": 0.5})
    hparams, recipe = fit_settings(card, "smoke", Overrides(recipe=candidate))
    assert recipe == candidate and hparams == {**card.defaults, "lr": 0.5}


def test_unknown_override_names_fail_naming_the_card_hyper_parameters() -> None:
    card = get_card("unet3d")
    with pytest.raises(KeyError) as error:
        FitSpec.from_card(card, "smoke", overrides=Overrides(params={"no_such_knob": 1}), workdir=Path("w"))
    assert "no_such_knob" in str(error.value) and str(sorted(card.defaults)) in str(error.value)


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="--batch-size 0"):
        Overrides(batch_size=0)


class _Recorder:
    """Stands in for an adapter: records the calls the door makes."""

    def __init__(self, card, context, calls: list) -> None:
        self.card, self.context, self.calls = card, context, calls
        calls.append(("build", context.seed))

    def fit(self, train, val) -> FitReport:
        self.calls.append(("fit", len(train), len(val)))
        return FitReport(chosen_epoch=1)


def test_fit_seeds_once_before_building_and_fitting(tmp_path, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr("msbench.methods.engine.loop.seed_everything", lambda seed: calls.append(("seed", seed)))
    monkeypatch.setattr(fitting, "build_adapter", lambda card, context: _Recorder(card, context, calls))
    spec = FitSpec.from_card(get_card("threshold"), "smoke", workdir=tmp_path / "work", seed=3)
    adapter, report = fit(spec, ["a", "b"], ["c"])
    assert calls == [("seed", 3), ("build", 3), ("fit", 2, 1)]
    assert report.chosen_epoch == 1 and (tmp_path / "work").is_dir()


def test_the_harness_seeds_in_the_door_alone() -> None:
    seeding = sorted(
        str(path.relative_to(BENCHMARK)) for path in BENCHMARK.rglob("*.py") if "seed_everything(" in path.read_text()
    )
    assert seeding == ["fitting.py"]


# ------------------------------------------------------------------------------------------ the training grid


def _file_case(root: Path, *, brain_mask: bool) -> Case:
    """A hand case stored in LPS order (flipped, axes permuted) at a voxel size float32 cannot hold exactly."""
    rng = np.random.default_rng(0)
    shape = (23, 19, 17)
    brain = np.zeros(shape, bool)
    brain[3:-3, 2:-2, 2:-3] = True
    flair = np.where(brain, rng.uniform(1.0, 5.0, shape), 0.0).astype(np.float32)
    t1 = np.where(brain, rng.uniform(0.5, 2.0, shape), 0.0).astype(np.float32)
    affine = np.array([[0.0, -1.1, 0.0, 30.0], [-0.7, 0.0, 0.0, 20.0], [0.0, 0.0, 1.3, -10.0], [0, 0, 0, 1.0]])
    images = {}
    for name, data in (("flair", flair), ("t1", t1)):
        images[name] = root / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(data, affine), images[name])
    meta = {}
    if brain_mask:
        meta["brain_mask"] = str(root / "brain.nii.gz")
        nib.save(nib.Nifti1Image(brain.astype(np.uint8), affine), meta["brain_mask"])
    mask = root / "mask1.nii.gz"
    nib.save(nib.Nifti1Image((flair > 4.5).astype(np.uint8), affine), mask)
    return Case("c1", "p1", 1, images, {"mask1": mask}, dataset="hand", meta=meta)


def _resampled_through_files(case: Case, spacing_mm: Sequence[float], modalities: Sequence[str], tmp: Path) -> Case:
    """How the training grid was reached before the door: the scan written to temporary NIfTI files and read back."""
    target = tuple(float(z) for z in spacing_mm)
    shape = shape_for_spacing(case.shape, case.spacing_mm, target)
    affine = case.affine @ np.diag([*(t / s for s, t in zip(case.spacing_mm, target, strict=True)), 1.0])
    images = {}
    for modality in modalities:
        images[modality] = tmp / f"{modality}.nii.gz"
        data = resample_to_shape(case.load_image(modality), shape, order=1)
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(images[modality]))
    meta = dict(case.meta)
    if meta.get("brain_mask"):
        meta["brain_mask"] = str(tmp / "brain.nii.gz")
        brain = resample_to_shape(case.load_brain(modalities), shape, order=0)
        nib.save(nib.Nifti1Image(brain.astype(np.uint8), affine), meta["brain_mask"])
    return dataclasses.replace(case, images=images, masks={}, meta=meta)


@pytest.mark.parametrize("brain_mask", [True, False])
def test_the_in_memory_training_grid_loads_what_the_temporary_files_did(tmp_path, brain_mask) -> None:
    case = _file_case(tmp_path, brain_mask=brain_mask)
    modalities, spacing = ("flair", "t1"), (1.7, 0.45, 2.1)
    with tempfile.TemporaryDirectory() as tmp:
        old = _resampled_through_files(case, spacing, modalities, Path(tmp))
        expected = {
            "shape": old.shape,
            "spacing": old.spacing_mm,
            "affine": old.affine,
            "input_affine": old.input_affine,
            "images": [old.load_image(m) for m in modalities],
            "brain": old.load_brain(modalities),
            "source": old.brain_source,
        }
    new = resampled_case(case, spacing, modalities)
    assert new.shape == expected["shape"] and new.spacing_mm == expected["spacing"]
    assert new.spacing_mm != spacing  # the header's float32 voxel size, as a file gives it back
    assert np.array_equal(new.affine, expected["affine"]) and np.array_equal(new.input_affine, expected["input_affine"])
    for got, want in zip([new.load_image(m) for m in modalities], expected["images"], strict=True):
        assert got.dtype == want.dtype == np.float32 and got.flags.c_contiguous and np.array_equal(got, want)
    assert np.array_equal(new.load_brain(modalities), expected["brain"]) and new.brain_source == expected["source"]
    assert not new.masks and "brain_mask" not in new.meta
    new.load_image("flair")[:] = -1  # a caller's change of what it loaded does not reach the next load
    assert np.array_equal(new.load_image("flair"), expected["images"][0])


def test_a_prediction_on_the_training_grid_equals_the_file_based_one(tmp_path) -> None:
    case = _file_case(tmp_path, brain_mask=True)
    modalities, spacing = ("flair",), (1.7, 0.45, 2.1)

    def predict(c: Case) -> Prediction:
        image = c.load_image("flair") * float(np.prod(c.spacing_mm))
        return Prediction(mask=(image > 4.0) & c.load_brain(modalities), probability=np.clip(image / 8.0, 0, 1))

    with tempfile.TemporaryDirectory() as tmp:
        old = predict(_resampled_through_files(case, spacing, modalities, Path(tmp)))
    new = predict_on_training_grid(predict, case, spacing, modalities)
    brain = case.load_brain(modalities)
    mask = resample_to_shape(old.mask, case.shape, order=0) & brain
    probability = np.clip(resample_to_shape(old.probability.astype(np.float32), case.shape, order=1), 0.0, 1.0)
    assert np.array_equal(new.mask, mask)
    assert np.array_equal(new.probability, np.where(brain, probability, 0.0).astype(np.float32))


class _Adapter:
    card = get_card("threshold")

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask

    def predict(self, case: Case) -> Prediction:
        return Prediction(mask=self.mask)


def test_predict_case_refuses_a_mask_off_the_case_grid(tmp_path) -> None:
    case = _file_case(tmp_path, brain_mask=False)
    assert predict_case(_Adapter(np.zeros(case.shape, bool)), case, None, ("flair",)).mask.shape == case.shape
    with pytest.raises(ValueError, match="method 'threshold' returned ndarray bool"):
        predict_case(_Adapter(np.zeros((2, 2, 2), bool)), case, None, ("flair",))
