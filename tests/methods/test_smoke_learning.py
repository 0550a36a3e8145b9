"""Every trainable method learns on the smoke budget: on fold 0 of the phantom it beats the threshold baseline.

Both sides are scored on the fold's VALIDATION patient only (the metric suite's ``dice``, mean over its scans), the
patient the smoke recipes were chosen on (``methods/smoke_selection``); the threshold itself is chosen on that
patient too. No test case is opened. Each method is fitted on its own (one to five minutes each on 2 CPU cores, so
the tests are ``slow``).
"""

from __future__ import annotations

import pytest

from msbench.benchmark.fitting import validation_dice_of
from msbench.methods import FitContext, build_adapter, get_card, list_methods
from msbench.methods.selection import fold_train_val

NOT_TRAINED = ("threshold", "inter-rater")


def _validation_dice(name: str, cases, workdir) -> float:
    train, val = fold_train_val(cases, 0)
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
    dices = [d for d in validation_dice_of(adapter.predict, val, "mask1") if d == d]
    assert dices, f"{name}: every validation scan is both-empty"
    return sum(dices) / len(dices)


@pytest.fixture(scope="module")
def threshold_dice(smoke_cases, tmp_path_factory) -> float:
    return _validation_dice("threshold", smoke_cases, tmp_path_factory.mktemp("threshold"))


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in list_methods() if name not in NOT_TRAINED])
def test_smoke_budget_beats_the_threshold_baseline_on_the_validation_patient(
    name, smoke_cases, threshold_dice, tmp_path
):
    learned = _validation_dice(name, smoke_cases, tmp_path / name)
    assert learned > threshold_dice, f"{name}: validation Dice {learned:.3f}, threshold {threshold_dice:.3f}"
