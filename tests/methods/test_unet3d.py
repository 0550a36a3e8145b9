"""3D U-Net (Kabulov / Cicek): architecture size, pre-processing, learning on a fixed batch, the adapter."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from msbench.methods import FitContext, build_adapter, get_card
from msbench.methods.unet3d.adapter import enhance
from msbench.methods.unet3d.network import UNet3d, count_parameters

from .synthetic import synthetic_cases

pytestmark = pytest.mark.usefixtures("one_thread")


def test_parameter_count_is_cicek_2016():
    # Cicek et al. 2016 report 19,069,955 parameters (3 inputs, 3 classes): conv weights and biases, transposed
    # convs without bias. Here batch norm replaces the conv biases, so count one bias per normalised conv.
    model = UNet3d(in_channels=3, base_width=32, levels=3, out_channels=3)
    total = 0
    for module in model.modules():
        if isinstance(module, nn.Conv3d | nn.ConvTranspose3d):
            total += module.weight.numel()
            if isinstance(module, nn.Conv3d):
                total += module.out_channels
    assert total == 19_069_955


def test_output_shape_channels_and_size_checks():
    model = UNet3d(in_channels=3, base_width=2, levels=3).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 16, 24, 8)).shape == (1, 1, 16, 24, 8)
    with pytest.raises(ValueError, match="divisible by 8"):
        model(torch.rand(1, 3, 12, 16, 16))
    assert count_parameters({"base_width": 2, "levels": 3}, 3) == sum(p.numel() for p in model.parameters())


def test_enhance_blurs_then_sharpens_within_unit_range():
    rng = np.random.default_rng(0)
    image = rng.random((1, 12, 12, 12), dtype=np.float32)
    np.testing.assert_array_equal(enhance(image, 0.0, 0.0, 0.0), image)
    blurred = enhance(image, 1.0, 0.0, 0.0)
    assert blurred.std() < 0.5 * image.std()
    sharpened = enhance(blurred, 0.0, 1.0, 1.0)
    assert sharpened.std() > blurred.std() and sharpened.min() >= 0.0 and sharpened.max() <= 1.0


def test_training_steps_lower_the_loss_on_a_fixed_batch():
    from msbench.methods.engine import BceDiceLoss

    torch.manual_seed(0)
    model = UNet3d(in_channels=1, base_width=2, levels=3)
    x = torch.rand(2, 1, 16, 16, 16)
    y = (x > 0.7).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = BceDiceLoss(0.3)
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss, _ = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_adapter_with_three_modalities_returns_full_volume_masks(tmp_path):
    cases = synthetic_cases(tmp_path / "data", n_patients=3, shape=(22, 26, 18))
    card = get_card("unet3d")
    recipe = dataclasses.replace(card.recipe("smoke"), epochs=2, iterations_per_epoch=2)
    context = FitContext(
        workdir=tmp_path / "work",
        seed=0,
        device="cpu",
        budget="smoke",
        recipe=recipe,
        hparams=card.hparams("smoke", input_shape=(16, 16, 16), base_width=2),
        modalities=("flair", "t1", "t2"),
        progress=False,
    )
    adapter = build_adapter(card, context)
    report = adapter.fit(cases[:2], cases[2:])
    assert len(report.history) == 2 and report.n_parameters == count_parameters(context.hparams, 3)
    assert adapter.model.encoders[0][0].in_channels == 3
    prediction = adapter.predict(cases[2])
    assert prediction.mask.dtype == bool and prediction.mask.shape == cases[2].shape
    assert prediction.probability.min() >= 0.0 and prediction.probability.max() <= 1.0
    assert not prediction.mask[cases[2].load_image("flair") == 0].any()


def test_input_shape_must_fit_the_poolings(tmp_path):
    cases = synthetic_cases(tmp_path / "data", n_patients=2)
    card = get_card("unet3d")
    context = FitContext(
        workdir=tmp_path / "work",
        seed=0,
        device="cpu",
        budget="smoke",
        recipe=card.recipe("smoke"),
        hparams=card.hparams("smoke", input_shape=(20, 16, 16)),
        progress=False,
    )
    with pytest.raises(ValueError, match="divisible by 8"):
        build_adapter(card, context).fit(cases[:1], cases[1:])
