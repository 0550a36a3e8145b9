"""smp_unet2d: a segmentation-models-pytorch U-Net with a timm encoder on the shared slice pipeline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from msbench.datasets.case import Case
from msbench.methods import FitContext, build_adapter, get_card
from msbench.methods.smp_unet2d.adapter import count_parameters
from msbench.methods.smp_unet2d.network import SliceUnet, build_unet

pytestmark = pytest.mark.usefixtures("one_thread")


def _case(root: Path, name: str, shape=(26, 30, 6), blank_slices: tuple[int, ...] = ()) -> Case:
    root.mkdir(parents=True, exist_ok=True)
    image = np.zeros(shape, np.float32)
    image[3:-3, 3:-3, :] = 1.0
    image[..., list(blank_slices)] = 0.0  # axial slices outside the brain
    mask = np.zeros(shape, np.float32)
    mask[10:14, 12:16, 2:4] = 1.0
    image[mask > 0] = 3.0
    for data, kind in ((image, "flair"), (mask, "mask1")):
        nib.save(nib.Nifti1Image(data, np.eye(4)), root / f"{name}_{kind}.nii.gz")
    return Case(name, name, 1, {"flair": root / f"{name}_flair.nii.gz"}, {"mask1": root / f"{name}_mask1.nii.gz"})


def test_card_uses_a_timm_encoder_without_pretrained_weights():
    card = get_card("smp_unet2d")
    assert card.defaults["encoder"].startswith("tu-") and card.input_kind == "2D"
    unet = build_unet(card.hparams("smoke"))
    assert type(unet).__name__ == "Unet"
    assert "TimmUniversalEncoder" in type(unet.encoder).__name__
    assert count_parameters(card.hparams("paper")) > 10 * count_parameters(card.hparams("smoke")) > 0


def test_single_slices_in_logits_out():
    net = SliceUnet(build_unet(get_card("smp_unet2d").hparams("smoke"))).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, 1, 32, 32)).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="1 slice"):
        net(torch.rand(2, 3, 1, 32, 32))
    zoomed = SliceUnet(build_unet(get_card("smp_unet2d").hparams("smoke")), zoom=2).eval()
    with torch.no_grad():
        assert zoomed(torch.rand(2, 1, 1, 32, 32)).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="input_zoom"):
        SliceUnet(build_unet(get_card("smp_unet2d").hparams("smoke")), zoom=0)
    with pytest.raises(ValueError, match="encoder_depth=3 entries"):
        build_unet({**get_card("smp_unet2d").hparams("smoke"), "decoder_channels": (64, 32)})


def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch(tmp_path):
    torch.manual_seed(0)
    card = get_card("smp_unet2d")
    adapter = build_adapter(card, _context(card, tmp_path))
    net = adapter.build_network(1)
    x = torch.rand(4, 1, 1, 32, 32)
    y = torch.zeros(4, 1, 32, 32)
    y[..., 8:16, 10:18] = 1.0
    x[:, 0, :, 8:16, 10:18] += 1.0
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss, terms = adapter.loss(net(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert set(terms) == {"bce", "dice_loss"}
    assert losses[-1] < 0.8 * losses[0]


def _context(card, tmp_path):
    recipe = dataclasses.replace(card.recipe("smoke"), epochs=1, iterations_per_epoch=2, batch_size=2)
    return FitContext(
        workdir=tmp_path / "work",
        seed=0,
        device="cpu",
        budget="smoke",
        recipe=recipe,
        hparams=card.hparams("smoke", window_mm=24.0),
        progress=False,
    )


def test_fit_and_predict_give_a_mask_and_probability_on_the_case_grid(tmp_path):
    card = get_card("smp_unet2d")
    adapter = build_adapter(card, _context(card, tmp_path))
    report = adapter.fit([_case(tmp_path, "a")], [_case(tmp_path, "b")])
    assert report.chosen_epoch == 1 and report.n_parameters == count_parameters(card.hparams("smoke"))
    case = _case(tmp_path, "c", shape=(20, 36, 7), blank_slices=(0, 6))
    prediction = adapter.predict(case)
    assert prediction.mask.shape == case.shape and prediction.mask.dtype == bool
    assert prediction.probability.min() >= 0.0 and prediction.probability.max() <= 1.0
    # Axial slices without brain never reach the network: the paste back onto the case grid leaves them exactly 0.
    for k in (0, 6):
        assert not prediction.mask[..., k].any() and not prediction.probability[..., k].any()
    assert prediction.probability[..., 1:6].any()  # the slices with brain did go through the network
