"""The one plain overlap Dice (datasets.masks.dice_score) and its agreement with the metric suite."""

from __future__ import annotations

import math

import numpy as np
import pytest

from msbench.benchmark.metrics._voxel import confusion_counts, voxel_scores
from msbench.datasets.masks import dice_score


def _suite_dice(pred: np.ndarray, ref: np.ndarray) -> float:
    counts = confusion_counts(np.flatnonzero(pred), ref, pred.size)
    return float(voxel_scores(counts, voxel_volume_mm3=1.0)["dice"])


@pytest.mark.parametrize("seed", range(20))
def test_dice_equals_the_metric_suites_dice_to_the_last_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(3, 17, size=3))
    pred = rng.random(shape) < rng.uniform(0.0, 0.5)
    ref = rng.random(shape) < rng.uniform(0.0, 0.5)
    ours, suite = dice_score(pred, ref), _suite_dice(pred, ref)
    assert (math.isnan(ours) and math.isnan(suite)) or ours == suite


def test_dice_both_empty_is_nan_and_extra_reference_counts_as_missed() -> None:
    empty = np.zeros((2, 2, 2), bool)
    assert math.isnan(dice_score(empty, empty))
    assert dice_score(empty, empty, extra_ref=3) == 0.0
    hit = np.array([1, 1, 0], bool)
    assert dice_score(hit, np.array([1, 0, 0], bool), extra_ref=1) == pytest.approx(0.5)


def test_dice_reads_non_boolean_masks_as_non_zero_foreground() -> None:
    pred = np.array([0, 2, 1, 0], np.uint8)
    ref = np.array([0, 1, 0, 0], np.int64)
    assert dice_score(pred, ref) == dice_score(pred > 0, ref > 0) == pytest.approx(2 / 3)


def test_methods_and_phantom_statistics_use_the_one_dice() -> None:
    from msbench.datasets.phantom import realism, stats
    from msbench.methods.engine import volumes
    from msbench.methods.nnunet2d import adapter

    assert volumes.dice_score is adapter.dice_score is realism.dice_score is dice_score
    assert not hasattr(stats, "dice")
