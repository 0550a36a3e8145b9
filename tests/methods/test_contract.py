"""The contract every registered method meets, swept over the whole registry (timm-style)."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys

import numpy as np
import pytest

from msbench.benchmark.metrics import METRIC_SPECS
from msbench.datasets import MODALITIES
from msbench.methods import BUDGETS, CategoricalParam, FitContext, build_adapter, get_card, list_methods

METHODS = list_methods()
EXTRA_MODALITIES = {"t1post", "gado"}
CLAIM_METRICS = set(METRIC_SPECS) | {"f1", "iou", "lesion_f1"}


SEED_METHODS = {"fsh", "unet3d", "nnunet2d", "fcdensenet_sa_clstm", "fcdensenet", "fcdensenet_clstm", "fcdensenet_sa"}
BASELINES = {"threshold", "inter-rater", "smp_unet2d", "basicunet", "dynunet"}


def test_registry_lists_the_seed_methods_and_baselines():
    assert set(METHODS) == SEED_METHODS | BASELINES, "a method was added or lost: update the lists above"
    assert len(METHODS) == len(set(METHODS))
    for name in METHODS:
        card = get_card(name)
        assert card.name == name
        recipes = [card.recipe(budget) for budget in BUDGETS]
        if card.trainable:
            assert all(r.epochs >= 1 for r in recipes), f"{name}: a trainable method trains on every budget"
        else:
            assert all(r.epochs == 0 for r in recipes), f"{name}: a training-free method has no epochs"
    assert {n for n in METHODS if not get_card(n).trainable} == {"threshold", "inter-rater"}


def test_cards_import_without_torch():
    code = "import sys, msbench.methods as m; m.list_methods(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "a card module imports torch; cards must stay torch-free"


@pytest.mark.parametrize("name", METHODS)
def test_card_is_complete(name):
    card = get_card(name)
    assert card.name == name and card.title and card.citation
    assert card.input_kind in ("voxel", "2D", "2.5D", "3D")
    assert card.modalities and card.modalities[0] == "flair"
    assert set(card.modalities) <= set(MODALITIES) | EXTRA_MODALITIES
    assert set(card.recipes) == set(BUDGETS), f"{name} needs a recipe for each of {BUDGETS}"
    for budget in BUDGETS:
        hparams = card.hparams(budget)
        assert set(hparams) == set(card.defaults), f"{name}/{budget} overrides unknown hyper-parameters"
    assert set(card.search_space) <= set(card.defaults), "the search space tunes only declared hyper-parameters"
    for key, param in card.search_space.items():
        if isinstance(param, CategoricalParam):
            assert param.choices, key
        else:
            assert param.low < param.high, key
    for claim in card.claims:
        assert claim.metric in CLAIM_METRICS, f"{name}: claim on unknown metric {claim.metric!r}"
        assert claim.dataset and claim.split and claim.source
    module_name, attr = card.adapter.split(":")
    assert hasattr(importlib.import_module(module_name), attr)


@pytest.mark.parametrize("name", METHODS)
def test_fit_then_predict_returns_a_full_volume_mask_on_the_reference_grid(name, smoke_cases, tmp_path):
    card = get_card(name)
    recipe = card.recipe("smoke")
    if card.trainable:  # the contract, not learning: one short epoch
        recipe = dataclasses.replace(recipe, epochs=1, iterations_per_epoch=min(recipe.iterations_per_epoch or 2, 2))
    by_patient = {}
    for case in smoke_cases:
        by_patient.setdefault(case.patient_id, []).append(case)
    patients = sorted(by_patient)
    train = by_patient[patients[0]][:2] + by_patient[patients[1]][:1]
    val = by_patient[patients[2]][:1]
    test = by_patient[patients[3]][0]
    context = FitContext(
        workdir=tmp_path / "work",
        seed=0,
        device="cpu",
        budget="smoke",
        recipe=recipe,
        hparams=card.hparams("smoke"),
        modalities=card.modalities,
        progress=False,
    )
    adapter = build_adapter(card, context)
    adapter.fit(train, val)
    prediction = adapter.predict(test)
    assert prediction.mask.dtype == bool and prediction.mask.shape == test.shape
    if prediction.probability is not None:
        prob = prediction.probability
        assert prob.shape == test.shape and np.isfinite(prob).all()
        assert prob.min() >= 0 and prob.max() <= 1
