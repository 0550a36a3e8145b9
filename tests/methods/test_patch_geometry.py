"""Patch and window sizes follow the voxel spacing: mm in the recipes, voxels on each data set's grid."""

from __future__ import annotations

import numpy as np
import pytest

from msbench.methods import FitContext, build_adapter, get_card
from msbench.methods.engine.volumes import Volume

PATCH_METHODS = ("fsh", "basicunet", "dynunet")


def _volume(spacing: tuple[float, float, float]) -> Volume:
    shape = (8, 8, 8)
    whole = tuple(slice(0, s) for s in shape)
    return Volume("v", np.zeros((1, *shape), np.float32), None, np.ones(shape, bool), whole, shape, spacing)


def _adapter(name: str, budget: str, tmp_path):
    card = get_card(name)
    context = FitContext(tmp_path, 0, "cpu", budget, card.recipe(budget), card.hparams(budget), progress=False)
    return build_adapter(card, context)


@pytest.mark.parametrize("name", PATCH_METHODS)
def test_smoke_patches_on_the_3mm_phantom_stay_32_voxels_on_a_16_grid(name, tmp_path):
    adapter = _adapter(name, "smoke", tmp_path)
    assert adapter.patch_voxels([_volume((3.0, 3.0, 3.0))]) == ((32, 32, 32), (16, 16, 16))


@pytest.mark.parametrize("name", PATCH_METHODS)
def test_paper_patches_are_64mm_in_voxels_of_the_median_training_spacing(name, tmp_path):
    adapter = _adapter(name, "paper", tmp_path)
    assert adapter.patch_voxels([_volume((1.0, 1.0, 1.0))]) == ((64, 64, 64), (32, 32, 32))
    mixed = [_volume((0.5, 0.5, 1.2)), _volume((0.5, 0.5, 1.2)), _volume((1.0, 1.0, 1.0))]
    patch, stride = adapter.patch_voxels(mixed)
    assert patch == (128, 128, 48) and stride == (64, 64, 27)  # 53.3 voxels -> nearest multiple of 16


def test_a_stride_longer_than_the_patch_is_refused(tmp_path):
    card = get_card("fsh")
    hparams = card.hparams("smoke", stride_mm=200.0)
    adapter = build_adapter(card, FitContext(tmp_path, 0, "cpu", "smoke", card.recipe("smoke"), hparams))
    with pytest.raises(ValueError, match="stride_mm must lie in"):
        adapter.patch_voxels([_volume((3.0, 3.0, 3.0))])


@pytest.mark.parametrize(
    ("name", "budget", "multiple"),
    [("fcdensenet_sa_clstm", "paper", 32), ("fcdensenet_sa_clstm", "smoke", 8), ("smp_unet2d", "paper", 32)],
)
def test_slice_windows_are_multiples_of_the_networks_divisibility(name, budget, multiple, tmp_path):
    assert _adapter(name, budget, tmp_path).size_multiple == multiple


def test_slice_sampler_pads_windows_of_different_sizes_to_the_largest():
    from msbench.methods.fcdensenet.slices import SliceSampler, SliceVolume

    def volume(h: int, w: int) -> SliceVolume:
        mask = np.zeros((h, w, 2), bool)
        mask[1, 1, :] = True
        box = (slice(0, h), slice(0, w), slice(0, 2))
        return SliceVolume(np.ones((1, h, w, 2), np.float32), mask, box, (h, w, 2))

    sampler = SliceSampler([volume(16, 24), volume(24, 16)], n_slices=1)
    inputs, targets = next(sampler.batches(np.random.default_rng(0), batch_size=4, iterations=1))
    assert inputs.shape == (4, 1, 1, 24, 24) and targets.shape == (4, 1, 24, 24)
    assert float(inputs.sum()) == sum(16 * 24 for _ in range(4))  # the padding is zero
    assert float(targets.sum()) == 4.0
