"""The shared training engine: loop, checkpoint/resume, losses, patches, augmentation, volumes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from msbench.methods.engine import (
    Augmentation,
    AugmentSpec,
    BceDiceLoss,
    EngineConfig,
    PatchSampler,
    Volume,
    brain_bbox,
    dice_score,
    fit_model,
    grid_starts,
    load_checkpoint,
    normalise_01,
    resample,
    sliding_window_logits,
    validation_dice,
)


class Interrupted(Exception):
    pass


class ToyTask:
    """Voxels brighter than 0.6 are lesion; random 8^3 batches drawn from the epoch's generator."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.loss_fn = BceDiceLoss(0.5)
        self.interrupt_at = interrupt_at
        gen = np.random.default_rng(123)
        self.val_x = torch.from_numpy(gen.random((2, 1, 8, 8, 8), dtype=np.float32))
        self.val_y = (self.val_x > 0.6).float()

    def train_batches(self, epoch, rng):
        if self.interrupt_at is not None and epoch == self.interrupt_at:
            raise Interrupted
        for _ in range(3):
            x = torch.from_numpy(rng.random((2, 1, 8, 8, 8), dtype=np.float32))
            yield x, (x > 0.6).float()

    def loss(self, logits, targets):
        return self.loss_fn(logits, targets)

    def validate(self, model):
        logits = model(self.val_x)
        loss, _ = self.loss_fn(logits, self.val_y)
        pred = (logits > 0).numpy()
        return {"val_dice": dice_score(pred, self.val_y.numpy() > 0), "val_loss": float(loss)}


def _toy_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Dropout3d(0.1), nn.Conv3d(4, 1, 1))


def _fit(workdir, epochs=4, task=None, patience=None, signature="toy"):
    model = _toy_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
    config = EngineConfig(epochs=epochs, seed=7, patience=patience, progress=False, signature=signature)
    result = fit_model(
        model, optimizer=optimizer, scheduler=scheduler, task=task or ToyTask(), config=config, workdir=workdir
    )
    return model, result


def _strip_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_fit_learns_logs_and_checkpoints(tmp_path):
    model, result = _fit(tmp_path, epochs=4)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0]
    assert result.best_metrics["val_dice"] > 0.8
    assert result.best_epoch == max(result.history, key=lambda r: r["val_dice"])["epoch"]
    logged = json.loads((tmp_path / "history.json").read_text())
    assert [row["epoch"] for row in logged] == [1, 2, 3, 4]
    assert {"loss", "bce", "dice_loss", "val_dice", "val_loss", "lr", "seconds", "steps"} <= set(logged[0])
    assert (tmp_path / "history.csv").read_text().splitlines()[0].startswith("epoch,steps,loss")
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["epochs_done"] == 4
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, result.best_weights[name])


def test_same_seed_same_numbers(tmp_path):
    _, first = _fit(tmp_path / "a", epochs=3)
    _, second = _fit(tmp_path / "b", epochs=3)
    assert _strip_seconds(first.history) == _strip_seconds(second.history)


def test_resume_after_interruption_is_identical(tmp_path):
    model_full, full = _fit(tmp_path / "full", epochs=5)
    with pytest.raises(Interrupted):
        _fit(tmp_path / "cut", epochs=5, task=ToyTask(interrupt_at=3))
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epochs_done"] == 2
    model_resumed, resumed = _fit(tmp_path / "cut", epochs=5)
    assert resumed.resumed_from == 2
    assert _strip_seconds(resumed.history) == _strip_seconds(full.history)
    for name, tensor in model_full.state_dict().items():
        assert torch.equal(tensor, model_resumed.state_dict()[name]), name


def test_finished_fit_is_not_retrained(tmp_path):
    _, first = _fit(tmp_path, epochs=2)
    _, again = _fit(tmp_path, epochs=2, task=ToyTask(interrupt_at=1))
    assert again.resumed_from == 2 and again.best_epoch == first.best_epoch


def test_checkpoint_of_another_fit_is_refused(tmp_path):
    _fit(tmp_path, epochs=1, signature="one")
    with pytest.raises(ValueError, match="another fit"):
        _fit(tmp_path, epochs=2, signature="two")


def test_early_stopping_on_stale_validation(tmp_path):
    class Flat(ToyTask):
        def validate(self, model):
            return {"val_dice": 0.5, "val_loss": 1.0}

    _, result = _fit(tmp_path, epochs=10, task=Flat(), patience=2)
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1


def test_validation_dice_leaves_both_empty_scans_out_like_the_metric_suite():
    from msbench.benchmark.metrics import evaluate_case

    empty, hit = np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool)
    hit[1, 1, 1:3] = True
    half = hit.copy()
    half[1, 1, 2] = False
    scans = [(empty, empty), (half, hit), (hit, hit)]  # (prediction, reference)
    per_scan = [dice_score(p, r) for p, r in scans]
    assert np.isnan(per_scan[0]) and per_scan[1:] == [pytest.approx(2 / 3), 1.0]
    assert validation_dice(per_scan) == pytest.approx((2 / 3 + 1.0) / 2)  # not (1 + 2/3 + 1) / 3
    suite = [evaluate_case(p, r, (1.0, 1.0, 1.0))["dice"] for p, r in scans]
    assert np.isnan(suite[0]) and validation_dice(per_scan) == pytest.approx(np.nanmean(suite))
    assert np.isnan(validation_dice([float("nan"), float("nan")]))
    assert dice_score(empty, hit) == 0.0 and dice_score(hit, empty) == 0.0  # abstaining or guessing scores 0


class _Scripted(ToyTask):
    """Validation returns a scripted ``val_dice`` per epoch (NaN: every validation scan both-empty)."""

    def __init__(self, values):
        super().__init__()
        self.values = list(values)
        self.calls = 0

    def validate(self, model):
        self.calls += 1
        return {"val_dice": self.values[self.calls - 1], "val_loss": 1.0}


def test_model_selection_ignores_epochs_with_no_validation_evidence(tmp_path):
    nan = float("nan")
    _, result = _fit(tmp_path / "a", epochs=4, task=_Scripted([nan, 0.3, nan, 0.2]))
    assert result.best_epoch == 2 and result.best_metrics["val_dice"] == 0.3
    _, result = _fit(tmp_path / "b", epochs=3, task=_Scripted([0.1, nan, nan]), patience=2)
    assert result.best_epoch == 1 and result.stopped_early  # NaN epochs are stale epochs


def test_all_validation_scans_both_empty_keeps_the_last_epoch_and_warns(tmp_path):
    nan = float("nan")
    with pytest.warns(RuntimeWarning, match="NaN in every epoch.*last epoch \\(3\\) is kept"):
        _, result = _fit(tmp_path, epochs=3, task=_Scripted([nan, nan, nan]), patience=1)
    assert result.best_epoch == 3 and not result.stopped_early and np.isnan(result.best_metrics["val_dice"])


def test_bce_dice_loss_matches_hand_computation():
    logits = torch.tensor([[[[[2.0, -1.0], [0.0, 3.0]]]]])
    target = torch.tensor([[[[[1.0, 0.0], [1.0, 0.0]]]]])
    p = torch.sigmoid(logits)
    bce = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    dice = 1 - (2 * (p * target).sum() + 1e-5) / (p.sum() + target.sum() + 1e-5)
    total, terms = BceDiceLoss(0.3)(logits, target)
    assert total.item() == pytest.approx(0.3 * bce.item() + 0.7 * dice.item(), rel=1e-5)
    assert terms["bce"] == pytest.approx(bce.item(), rel=1e-5)
    with pytest.raises(ValueError, match="bce_weight"):
        BceDiceLoss(1.5)


def test_grid_starts_cover_the_axis():
    assert grid_starts(100, 64, 32) == [0, 32, 36]
    assert grid_starts(64, 64, 32) == [0]
    assert grid_starts(20, 32, 16) == [0]


def _volume(shape=(20, 24, 18), lesion=(slice(4, 7), slice(5, 8), slice(3, 6))):
    image = np.zeros((1, *shape), np.float32)
    mask = np.zeros(shape, bool)
    mask[lesion] = True
    image[0, 2:-2, 2:-2, 2:-2] = 0.5
    image[0][mask] = 1.0
    full = tuple(slice(0, s) for s in shape)
    return Volume("v", image, mask, image[0] > 0, full, shape, (1.0, 1.0, 1.0))


def test_patch_sampler_positive_patches_contain_lesion():
    sampler = PatchSampler([_volume()], (8, 8, 8), (4, 4, 4), positive_fraction=1.0)
    refs = sampler.sample(np.random.default_rng(0), 20)
    for ref in refs:
        _, mask = sampler.crop(ref)
        assert mask.shape == (1, 8, 8, 8) and mask.any()
    assert len(sampler) == len(sampler.positives) < len(sampler.patches)
    negatives = PatchSampler([_volume()], (8, 8, 8), (4, 4, 4), positive_fraction=0.0)
    drawn = negatives.sample(np.random.default_rng(0), 200)
    assert 0 < sum(r.positive for r in drawn) < 200


def test_patch_sampler_pads_small_volumes():
    sampler = PatchSampler([_volume()], (32, 32, 32), (16, 16, 16))
    image, mask = sampler.crop(sampler.sample(np.random.default_rng(0), 1)[0])
    assert image.shape == (1, 32, 32, 32) and mask.sum() == 27


def test_sliding_window_matches_a_whole_volume_pass():
    torch.manual_seed(0)
    model = nn.Conv3d(1, 1, 1).eval()
    image = np.random.default_rng(0).random((1, 20, 24, 18), dtype=np.float32)
    with torch.no_grad():
        logits = sliding_window_logits(model, image, patch_size=(8, 8, 8), stride=(4, 4, 4))
        whole = model(torch.from_numpy(image)[None])
    assert logits.shape == (1, 1, 20, 24, 18)
    torch.testing.assert_close(logits, whole, rtol=1e-5, atol=1e-5)


def test_augmentation_is_reproducible_and_keeps_labels_binary():
    spec = AugmentSpec(rotate_prob=1.0, rotate_deg=20, flip_prob=0.5, elastic_prob=1.0, noise_prob=1.0)
    aug = Augmentation(spec)
    volume = _volume((16, 16, 16), (slice(5, 10), slice(5, 10), slice(5, 10)))
    label = volume.mask[None].astype(np.float32)
    aug.reseed(3)
    a = aug(volume.image, label)
    aug.reseed(3)
    b = aug(volume.image, label)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert set(np.unique(a[1].numpy())) <= {0.0, 1.0}
    assert a[0].shape == (1, 16, 16, 16) and a[0].dtype == torch.float32


def test_normalise_and_crop_helpers():
    image = np.zeros((1, 10, 10, 10), np.float32)
    image[0, 2:8, 3:7, 4:6] = np.linspace(10, 20, 6 * 4 * 2).reshape(6, 4, 2)
    brain = image[0] > 0
    norm = normalise_01(image, brain)
    assert norm.min() == 0.0 and norm.max() == 1.0 and norm[0][brain].min() == 0.0
    assert brain_bbox(brain, margin=1) == (slice(1, 9), slice(2, 8), slice(3, 7))
    assert resample(np.ones((4, 4, 4), np.float32), (8, 6, 2)).shape == (8, 6, 2)
    assert np.isnan(dice_score(np.zeros(3, bool), np.zeros(3, bool)))  # the metric suite's convention
    assert dice_score(np.array([1, 1, 0], bool), np.array([1, 0, 0], bool), extra_ref=1) == pytest.approx(0.5)


def test_fits_use_every_core_unless_msbench_num_threads_caps_them(monkeypatch):
    from msbench.methods.engine import default_threads

    monkeypatch.delenv("MSBENCH_NUM_THREADS", raising=False)
    assert default_threads("cpu") == len(os.sched_getaffinity(0)) == default_threads("cuda")
    monkeypatch.setenv("MSBENCH_NUM_THREADS", "3")
    assert default_threads("cpu") == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("MSBENCH_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="MSBENCH_NUM_THREADS"):
            default_threads("cpu")


def _fit_bn(workdir, recalibration: int, epochs: int = 3, task=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(), nn.Conv3d(4, 1, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    config = EngineConfig(epochs=epochs, seed=7, progress=False, bn_recalibration_batches=recalibration)
    return model, fit_model(model, optimizer=optimizer, task=task or ToyTask(), config=config, workdir=workdir)


def test_batch_norm_recalibration_changes_running_statistics_not_training(tmp_path):
    plain_model, plain = _fit_bn(tmp_path / "plain", 0)
    model, recalibrated = _fit_bn(tmp_path / "recal", 2)
    train_keys = ("epoch", "steps", "loss", "bce", "dice_loss", "lr")
    assert [[r[k] for k in train_keys] for r in recalibrated.history] == [
        [r[k] for k in train_keys] for r in plain.history
    ]
    assert not torch.allclose(model[1].running_mean, plain_model[1].running_mean)
    # A plain average over the 2 recalibration batches, not an exponential one: the batch counter says 2.
    assert int(model[1].num_batches_tracked) == 2

    with pytest.raises(Interrupted):
        _fit_bn(tmp_path / "cut", 2, task=ToyTask(interrupt_at=3))
    resumed_model, resumed = _fit_bn(tmp_path / "cut", 2)
    assert _strip_seconds(resumed.history) == _strip_seconds(recalibrated.history)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, resumed_model.state_dict()[name]), name
    with pytest.raises(ValueError, match="bn_recalibration_batches"):
        EngineConfig(epochs=1, bn_recalibration_batches=-1)
