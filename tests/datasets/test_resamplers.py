"""The two resamplers compute one map (edges aligned) in two precisions; both are kept (see their docstrings)."""

from __future__ import annotations

import numpy as np
import pytest

from msbench.datasets.preprocessing import resample_to_shape
from msbench.methods.engine.volumes import resample


@pytest.mark.parametrize(("source", "target"), [((10, 12, 6), (21, 16, 9)), ((21, 16, 9), (10, 12, 6))])
def test_torch_and_scipy_resamplers_agree_to_float32_rounding_and_not_bit_for_bit(source, target) -> None:
    rng = np.random.default_rng(0)
    image = rng.random(source).astype(np.float32)
    torch_out, scipy_out = resample(image, target), resample_to_shape(image, target, order=1)
    assert np.abs(torch_out - scipy_out).max() < 1e-5
    mask = rng.random(source) < 0.3
    assert np.array_equal(
        resample(mask.astype(np.float32), target, mode="nearest") >= 0.5, resample_to_shape(mask, target, order=0)
    )


def test_the_resamplers_differ_in_the_last_bits_so_neither_replaces_the_other() -> None:
    image = np.random.default_rng(1).random((21, 16, 9)).astype(np.float32)
    assert not np.array_equal(resample(image, (10, 12, 6)), resample_to_shape(image, (10, 12, 6), order=1))
