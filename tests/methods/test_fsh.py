"""F.sh (3DR2AUNet): network shapes and parameter count, learning on a fixed batch, the adapter end to end."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from msbench.methods import FitContext, build_adapter, get_card
from msbench.methods.fsh.network import R2AttUNet3d, count_parameters

from .synthetic import synthetic_cases

pytestmark = pytest.mark.usefixtures("one_thread")


def _expected_parameters(in_ch: int, w: int, t: int) -> int:
    """Parameter count of F.sh by hand: R2 blocks, attention gates, trilinear up-sampling convs, head."""

    def r2(cin, cout):  # 1x1x1 projection (with bias) + 2 recurrent layers (shared conv, t+1 batch norms)
        return cin * cout + cout + 2 * (27 * cout * cout + (t + 1) * 2 * cout)

    def gate(c):  # W_g, W_x: 1x1x1 conv + BN to c // 2; psi: 1x1x1 conv + BN to 1
        i = c // 2
        return 2 * (c * i + i + 2 * i) + (i + 1 + 2)

    widths = [w * 2**k for k in range(5)]
    total = r2(in_ch, widths[0]) + sum(r2(a, b) for a, b in zip(widths, widths[1:], strict=False))
    for width, deeper in zip(widths[:-1], widths[1:], strict=True):
        total += 27 * deeper * width + 2 * width + gate(width) + r2(2 * width, width)
    return total + widths[0] + 1


@pytest.mark.parametrize(("in_ch", "w", "t"), [(1, 4, 2), (1, 16, 2), (3, 8, 1)])
def test_parameter_count_matches_the_architecture(in_ch, w, t):
    hparams = {"base_width": w, "recurrence_steps": t, "upsample": "upsample"}
    assert count_parameters(hparams, in_ch) == _expected_parameters(in_ch, w, t)


def test_paper_network_size():
    card = get_card("fsh")
    assert count_parameters(card.hparams("paper")) == _expected_parameters(1, 16, 2)


def test_output_shape_and_input_checks():
    model = R2AttUNet3d(in_channels=2, base_width=2, t=1, upsample="transpose").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 2, 16, 32, 16))
    assert out.shape == (1, 1, 16, 32, 16)
    with pytest.raises(ValueError, match="divisible by 16"):
        model(torch.rand(1, 2, 24, 16, 16))
    with pytest.raises(ValueError, match="up-sampling"):
        R2AttUNet3d(upsample="pixelshuffle")


def test_instance_norm_replaces_every_batch_norm_with_as_many_weights():
    batch = R2AttUNet3d(base_width=4, t=1, norm="batch")
    instance = R2AttUNet3d(base_width=4, t=1, norm="instance")
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in instance.modules())
    n_batch = sum(isinstance(m, torch.nn.BatchNorm3d) for m in batch.modules())
    assert sum(isinstance(m, torch.nn.InstanceNorm3d) for m in instance.modules()) == n_batch > 0
    assert sum(p.numel() for p in instance.parameters()) == sum(p.numel() for p in batch.parameters())
    # Instance norm does not mix the samples of a batch: one patch's output ignores its batch neighbours.
    instance.eval()
    x = torch.rand(2, 1, 32, 32, 32)
    with torch.no_grad():
        assert torch.allclose(instance(x)[:1], instance(x[:1]), atol=1e-3)  # batch norm in training: ~1
        with pytest.raises(ValueError, match="at least 32 voxels"):
            instance(torch.rand(1, 1, 16, 16, 16))
    with pytest.raises(ValueError, match="norm must be one of"):
        R2AttUNet3d(norm="group")


def test_attention_gates_sit_on_every_skip():
    model = R2AttUNet3d(base_width=2, t=1)
    assert len(model.gates) == 4 and len(model.encoders) == 5 and len(model.decoders) == 4


def test_training_steps_lower_the_loss_on_a_fixed_batch():
    from msbench.methods.engine import BceDiceLoss

    torch.manual_seed(0)
    model = R2AttUNet3d(base_width=2, t=2)
    x = torch.rand(2, 1, 16, 16, 16)
    y = (x > 0.7).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = BceDiceLoss(0.5)
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss, _ = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def _context(tmp_path, card, **recipe_changes):
    recipe = dataclasses.replace(card.recipe("smoke"), **recipe_changes)
    hparams = card.hparams("smoke", patch_mm=16.0, stride_mm=8.0, base_width=2, norm="batch")
    return FitContext(
        workdir=tmp_path / "work",
        seed=0,
        device="cpu",
        budget="smoke",
        recipe=recipe,
        hparams=hparams,
        modalities=("flair",),
        progress=False,
    )


def test_adapter_fits_predicts_and_resumes(tmp_path):
    cases = synthetic_cases(tmp_path / "data", n_patients=3)
    card = get_card("fsh")
    context = _context(tmp_path, card, epochs=2, iterations_per_epoch=2)
    report = build_adapter(card, context).fit(cases[:2], cases[2:])
    assert report.chosen_epoch in (1, 2) and len(report.history) == 2
    assert report.n_parameters == count_parameters(context.hparams)
    assert (context.workdir / "history.csv").exists()

    again = build_adapter(card, context)
    resumed = again.fit(cases[:2], cases[2:])
    assert resumed.chosen["resumed_from_epoch"] == 2
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in report.history]
    prediction = again.predict(cases[0])
    assert prediction.mask.dtype == bool and prediction.mask.shape == cases[0].shape
    assert prediction.probability.shape == cases[0].shape
    assert prediction.probability.min() >= 0.0 and prediction.probability.max() <= 1.0
    outside_brain = cases[0].load_image("flair") == 0
    assert not prediction.mask[outside_brain].any()


def test_predict_before_fit_is_an_error(tmp_path):
    card = get_card("fsh")
    adapter = build_adapter(card, _context(tmp_path, card))
    with pytest.raises(RuntimeError, match="before fit"):
        adapter.predict(synthetic_cases(tmp_path / "data", n_patients=1)[0])
