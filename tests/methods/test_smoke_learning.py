"""Every trainable method learns on the smoke budget: on fold 0 of the phantom it beats the threshold baseline.

This is what ``msbench run --method all --dataset synth-ms --budget smoke --folds 0`` checks and records in each
manifest; here each method is fitted on its own (about a minute each on 2 CPU cores, so the tests are ``slow``).
"""

from __future__ import annotations

import numpy as np
import pytest

from msbench.datasets.splits import load_split
from msbench.methods import FitContext, build_adapter, get_card, list_methods

NOT_TRAINED = ("threshold", "inter-rater")


def _fold0(cases):
    fold = load_split("synth-ms", "isbi2015", cases).folds[0]
    return tuple(fold.select(cases, role) for role in ("train", "val", "test"))


def _test_dice(name: str, cases, workdir) -> float:
    train, val, test = _fold0(cases)
    card = get_card(name)
    context = FitContext(
        workdir=workdir,
        seed=0,
        device="cpu",
        budget="smoke",
        recipe=card.recipe("smoke"),
        hparams=card.hparams("smoke"),
        modalities=card.modalities,
        progress=False,
    )
    adapter = build_adapter(card, context)
    adapter.fit(train, val)
    dices = []
    for case in test:
        prediction, reference = adapter.predict(case).mask, case.load_mask("mask1")
        dices.append(2.0 * (prediction & reference).sum() / max(int(prediction.sum() + reference.sum()), 1))
    return float(np.mean(dices))


@pytest.fixture(scope="module")
def threshold_dice(smoke_cases, tmp_path_factory) -> float:
    return _test_dice("threshold", smoke_cases, tmp_path_factory.mktemp("threshold"))


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in list_methods() if name not in NOT_TRAINED])
def test_smoke_budget_beats_the_threshold_baseline(name, smoke_cases, threshold_dice, tmp_path):
    learned = _test_dice(name, smoke_cases, tmp_path / name)
    assert learned > threshold_dice, f"{name}: test Dice {learned:.3f}, threshold {threshold_dice:.3f}"
