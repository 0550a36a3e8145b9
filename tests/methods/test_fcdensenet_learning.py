"""The slice methods learn on the smoke budget: each beats the FLAIR threshold on a held-out phantom patient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from msbench.methods import FitContext, build_adapter, get_card

SLICE_METHODS = ("fcdensenet", "fcdensenet_clstm", "fcdensenet_sa", "fcdensenet_sa_clstm", "smp_unet2d")


def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    denom = int(pred.sum() + ref.sum())
    return 1.0 if denom == 0 else 2.0 * int((pred & ref).sum()) / denom


def _test_dice(name: str, smoke_cases, workdir) -> float:
    by_patient: dict[str, list] = {}
    for case in smoke_cases:
        by_patient.setdefault(case.patient_id, []).append(case)
    patients = sorted(by_patient)
    train = [c for p in patients[2:] for c in by_patient[p]]
    val, test = by_patient[patients[1]], by_patient[patients[0]]
    card = get_card(name)
    context = FitContext(
        workdir=workdir,
        seed=0,
        device="cpu",
        budget="smoke",
        recipe=card.recipe("smoke"),
        hparams=card.hparams("smoke"),
        progress=False,
    )
    adapter = build_adapter(card, context)
    adapter.fit(train, val)
    return float(np.mean([_dice(adapter.predict(c).mask, c.load_mask("mask1")) for c in test]))


@pytest.mark.slow
@pytest.mark.parametrize("name", SLICE_METHODS)
def test_smoke_budget_beats_the_flair_threshold(name, smoke_cases, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        method = _test_dice(name, smoke_cases, tmp_path / name)
    finally:
        torch.set_num_threads(threads)
    floor = _test_dice("threshold", smoke_cases, tmp_path / "threshold")
    assert method > floor, f"{name}: test Dice {method:.3f} does not beat the threshold's {floor:.3f}"
