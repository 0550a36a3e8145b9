"""Library 3D baselines on the engine's patch pipeline: MONAI BasicUNet and DynUNet."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from msbench.methods import FitContext, build_adapter, get_card
from msbench.methods.basicunet import network as basicunet
from msbench.methods.dynunet import network as dynunet

from .synthetic import synthetic_cases

NETWORKS = {"basicunet": basicunet, "dynunet": dynunet}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_maps_patches_to_one_logit_channel(name):
    hparams = {"base_width": 8, "dropout": 0.0}
    model = NETWORKS[name].build_network(hparams, in_channels=2).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 2, 32, 32, 32)).shape == (1, 1, 32, 32, 32)
    n = NETWORKS[name].count_parameters(hparams, 2)
    assert n == sum(p.numel() for p in model.parameters())
    assert NETWORKS[name].count_parameters({"base_width": 16, "dropout": 0.0}, 2) > 3 * n


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_adapter_fits_and_predicts(name, tmp_path):
    cases = synthetic_cases(tmp_path / "data", n_patients=3)
    card = get_card(name)
    recipe = dataclasses.replace(card.recipe("smoke"), epochs=1, iterations_per_epoch=2)
    context = FitContext(
        workdir=tmp_path / "work",
        seed=0,
        device="cpu",
        budget="smoke",
        recipe=recipe,
        hparams=card.hparams("smoke", patch_mm=32.0, stride_mm=32.0),
        progress=False,
    )
    adapter = build_adapter(card, context)
    report = adapter.fit(cases[:2], cases[2:])
    assert report.chosen_epoch == 1 and 0.0 <= report.val_dice <= 1.0
    prediction = adapter.predict(cases[2])
    assert prediction.mask.dtype == bool and prediction.mask.shape == cases[2].shape
    assert prediction.probability.min() >= 0.0 and prediction.probability.max() <= 1.0
