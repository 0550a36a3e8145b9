"""FC-DenseNet + SA + C-LSTM (Rondinella 2023), its ablations, and the shared 2D / 2.5D slice pipeline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from msbench.datasets.case import Case
from msbench.methods import FitContext, build_adapter, get_card
from msbench.methods.fcdensenet.adapter import batch_dice_loss, count_parameters, network_config
from msbench.methods.fcdensenet.network import Tiramisu, TiramisuConfig
from msbench.methods.fcdensenet.slices import SliceSampler, load_slice_volume

FAMILY = ("fcdensenet", "fcdensenet_clstm", "fcdensenet_sa", "fcdensenet_sa_clstm")
PAPER_TOTAL = 13_242_782  # Table 1
TINY = TiramisuConfig(down_blocks=(2, 2, 2), up_blocks=(2, 2, 2), bottleneck_layers=2, growth_rate=4,
                      first_conv_channels=8, dropout=0.0)  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_case(root: Path, shape=(26, 30, 8), lesion=(slice(10, 14), slice(12, 16), slice(3, 6)), name="t01") -> Case:
    """A skull-stripped FLAIR-like volume (brain 1, lesion 3, background 0) and its mask, written as NIfTI."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    image = np.zeros(shape, np.float32)
    image[3:-3, 3:-3, :] = 1.0 + 0.05 * rng.standard_normal((shape[0] - 6, shape[1] - 6, shape[2]))
    mask = np.zeros(shape, np.float32)
    mask[lesion] = 1.0
    image[mask > 0] = 3.0
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(image, affine), root / f"{name}_flair.nii.gz")
    nib.save(nib.Nifti1Image(mask, affine), root / f"{name}_mask1.nii.gz")
    return Case(name, name, 1, {"flair": root / f"{name}_flair.nii.gz"}, {"mask1": root / f"{name}_mask1.nii.gz"})


def test_family_is_registered_with_the_paper_flags_and_claims():
    flags = {name: (get_card(name).defaults["use_sa"], get_card(name).defaults["use_clstm"]) for name in FAMILY}
    assert flags == {
        "fcdensenet": (False, False),
        "fcdensenet_clstm": (False, True),
        "fcdensenet_sa": (True, False),
        "fcdensenet_sa_clstm": (True, True),
    }
    table5 = {name: [c.value for c in get_card(name).claims if c.source == "Table 5"] for name in FAMILY}
    assert table5 == {
        "fcdensenet": [0.8432],
        "fcdensenet_clstm": [0.8216],
        "fcdensenet_sa": [0.8493],
        "fcdensenet_sa_clstm": [0.85],
    }
    assert {get_card(n).input_kind for n in FAMILY} == {"2D", "2.5D"}
    paper = get_card("fcdensenet_sa_clstm").recipe("paper")
    hp = get_card("fcdensenet_sa_clstm").hparams("paper")
    assert (paper.epochs, paper.batch_size) == (200, 4)
    assert (hp["optimizer"], hp["lr"], hp["weight_decay"], hp["window_mm"]) == ("sgd", 1e-4, 1e-4, 160.0)


def test_parameter_count_at_paper_width_matches_table_1():
    full = count_parameters(get_card("fcdensenet_sa_clstm").hparams("paper"))
    assert abs(full - PAPER_TOTAL) / PAPER_TOTAL < 0.03
    # The paper's total is exactly the SA network on 3 (replicated grey) channels, ConvLSTM weights not counted.
    assert count_parameters(get_card("fcdensenet_sa").hparams("paper"), in_channels=3) == PAPER_TOTAL


def test_ablation_flags_add_the_expected_parameters():
    counts = {name: count_parameters(get_card(name).hparams("paper")) for name in FAMILY}
    lstm = (60 + 60) * 4 * 60 * 3 * 3  # gates conv over [input, hidden] of the bottleneck's 5 x 12 maps, no bias
    assert counts["fcdensenet_clstm"] - counts["fcdensenet"] == lstm
    assert counts["fcdensenet_sa_clstm"] - counts["fcdensenet_sa"] == lstm
    sa = counts["fcdensenet_sa"] - counts["fcdensenet"]
    assert counts["fcdensenet_sa_clstm"] - counts["fcdensenet_clstm"] == sa > 10 * lstm


def test_three_slices_in_middle_slice_out_and_the_lstm_is_unidirectional():
    torch.manual_seed(0)
    net = Tiramisu(TINY).eval()
    x = torch.randn(2, 3, 1, 32, 32)
    with torch.no_grad():
        out = net(x)
        assert out.shape == (2, 2, 32, 32)
        changed_next, changed_prev = x.clone(), x.clone()
        changed_next[:, 2] += 1.0
        changed_prev[:, 0] += 1.0
        assert torch.equal(net(changed_next), out)  # the middle step of a forward LSTM has not seen slice k+1
        assert not torch.allclose(net(changed_prev), out)
        last = Tiramisu(dataclasses.replace(TINY, clstm_output="last")).eval()
        assert not torch.allclose(last(changed_next), last(x))


def test_shared_encoding_gives_the_same_logits_as_stacked_samples():
    torch.manual_seed(0)
    net = Tiramisu(TINY).eval()
    slices = torch.randn(5, 1, 16, 16)
    sequences = torch.tensor([[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4]])
    with torch.no_grad():
        torch.testing.assert_close(net.forward_indexed(slices, sequences), net(slices[sequences]))


def test_network_rejects_what_it_cannot_segment():
    with pytest.raises(ValueError, match="one slice per sample"):
        Tiramisu(dataclasses.replace(TINY, use_clstm=False))(torch.zeros(1, 3, 1, 16, 16))
    with pytest.raises(ValueError, match="multiple of 8.*24x24"):
        Tiramisu(TINY)(torch.zeros(1, 3, 1, 20, 20))
    with pytest.raises(ValueError, match="n_slices=3 needs use_clstm"):
        network_config({**get_card("fcdensenet").hparams("smoke"), "n_slices": 3})


def test_batch_dice_loss_by_hand():
    prob = torch.tensor([0.5, 1.0, 0.0, 0.25])
    target = torch.tensor([1.0, 1.0, 0.0, 0.0])
    # 1 - (2 * 1.5 + 0.1) / (1.75 + 2 + 0.1)
    assert batch_dice_loss(prob, target, 0.1).item() == pytest.approx(1 - 3.1 / 3.85)


def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch(tmp_path):
    torch.manual_seed(0)
    card = get_card("fcdensenet_sa_clstm")
    adapter = build_adapter(card, _context(card, tmp_path))
    net = Tiramisu(TINY)
    x = torch.rand(4, 3, 1, 16, 16)
    y = torch.zeros(4, 1, 16, 16)
    y[:, :, 4:9, 5:10] = 1.0
    x[:, 1, :, 4:9, 5:10] += 1.0
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss, _ = adapter.loss(net(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_slice_volume_window_round_trip(tmp_path):
    case = tiny_case(tmp_path, shape=(30, 20, 6), lesion=(slice(1, 29), slice(8, 11), slice(2, 4)))
    volume = load_slice_volume(case, ("flair",), "mask1", window_mm=48.0)  # 16 voxels at 3 mm
    # I: the brain (lesion included) spans 28 voxels, more than 16, and is kept whole; J: 14 voxels fit in 16.
    assert volume.image.shape == (1, 28, 16, 6) and volume.image.dtype == np.float32
    assert volume.image.min() >= 0.0 and volume.image.max() == pytest.approx(1.0)
    mask = case.load_mask("mask1")
    back = volume.to_case_grid(volume.mask)
    assert back.shape == case.shape and back.dtype == bool
    assert np.array_equal(back, mask)  # no brain, so no lesion, falls outside the window
    assert volume.outside_positives == 0
    assert np.array_equal(volume.stack(0, 3)[:, 0], np.moveaxis(volume.image[0][..., [0, 0, 1]], -1, 0))


def test_sampler_positive_fraction_and_full_passes(tmp_path):
    volume = load_slice_volume(tiny_case(tmp_path), ("flair",), "mask1", window_mm=72.0)
    rng = np.random.default_rng(0)
    sampler = SliceSampler([volume], n_slices=3, positive_fraction=0.5)
    for inputs, targets in sampler.batches(rng, batch_size=4, iterations=5):
        assert inputs.shape == (4, 3, 1, 24, 24) and targets.shape == (4, 1, 24, 24)
        assert (targets.flatten(1).amax(1) > 0).sum() >= 2
    every = SliceSampler([volume], n_slices=1, positive_fraction=0.0)
    seen = [b[0] for b in every.batches(rng, batch_size=3, iterations=None)]
    assert sum(len(b) for b in seen) == volume.n_slices == 8
    stacked = torch.cat(seen)[:, 0, 0].numpy()
    order = [next(k for k in range(8) if np.array_equal(volume.image[0, ..., k], s)) for s in stacked]
    assert sorted(order) == list(range(8))  # each slice exactly once


def _context(card, tmp_path, budget="smoke", **overrides):
    recipe = dataclasses.replace(card.recipe(budget), epochs=1, iterations_per_epoch=2, batch_size=2)
    return FitContext(
        workdir=tmp_path / "work",
        seed=0,
        device="cpu",
        budget=budget,
        recipe=recipe,
        hparams=card.hparams(budget, window_mm=72.0, **overrides),
        progress=False,
    )


@pytest.mark.parametrize("name", ["fcdensenet_sa_clstm", "fcdensenet"])
def test_fit_and_predict_give_a_mask_and_probability_on_the_case_grid(name, tmp_path):
    train = [tiny_case(tmp_path / "a", name="a"), tiny_case(tmp_path / "b", name="b")]
    case = tiny_case(tmp_path / "c", shape=(22, 34, 7), name="c")
    card = get_card(name)
    adapter = build_adapter(card, _context(card, tmp_path))
    report = adapter.fit(train[:1], train[1:])
    assert report.chosen_epoch == 1 and 0.0 <= report.val_dice <= 1.0
    assert report.n_parameters == count_parameters(card.hparams("smoke"))
    prediction = adapter.predict(case)
    assert prediction.mask.shape == case.shape and prediction.mask.dtype == bool
    prob = prediction.probability
    assert prob.shape == case.shape and prob.dtype == np.float32
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    assert np.array_equal(prediction.mask, prob > 0.5)
    assert (prob[:, :1] == 0).all()  # outside the window along J: the 28-voxel brain rounded up to 32 (34 wide)
    again = build_adapter(card, _context(card, tmp_path / "again"))
    again.fit(train[:1], train[1:])
    np.testing.assert_array_equal(again.predict(case).probability, prob)  # same seed, same numbers
