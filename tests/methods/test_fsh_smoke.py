"""The smoke budget teaches F.sh and the 3D U-Net something: on the phantom they beat the threshold baseline."""

from __future__ import annotations

import numpy as np
import pytest

from msbench.methods import FitContext, build_adapter, get_card
from msbench.methods.engine import dice_score


def _fold(cases):
    by_patient: dict[str, list] = {}
    for case in cases:
        by_patient.setdefault(case.patient_id, []).append(case)
    patients = sorted(by_patient)
    test, val = by_patient[patients[0]], by_patient[patients[1]]
    train = [case for p in patients[2:] for case in by_patient[p]]
    return train, val, test


def _test_dice(name, train, val, test, workdir):
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
    return float(np.mean([dice_score(adapter.predict(c).mask, c.load_mask("mask1")) for c in test]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fsh", "unet3d"])
def test_smoke_budget_beats_the_threshold_baseline(name, smoke_cases, tmp_path):
    train, val, test = _fold(smoke_cases)
    baseline = _test_dice("threshold", train, val, test, tmp_path / "threshold")
    learned = _test_dice(name, train, val, test, tmp_path / name)
    assert learned > baseline, f"{name}: Dice {learned:.3f} vs threshold {baseline:.3f}"
