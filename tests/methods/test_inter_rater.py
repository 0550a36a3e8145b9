from __future__ import annotations

import numpy as np
import pytest

from msbench.methods import FitContext, build_adapter, get_card


def _adapter(tmp_path, reference="mask1"):
    card = get_card("inter-rater")
    context = FitContext(tmp_path, 0, "cpu", "smoke", card.recipe("smoke"), card.hparams("smoke"), reference=reference)
    return build_adapter(card, context)


def test_predicts_rater_two_for_rater_one(smoke_cases, tmp_path):
    case = smoke_cases[0]
    prediction = _adapter(tmp_path).predict(case)
    np.testing.assert_array_equal(prediction.mask, case.load_mask("mask2"))
    assert prediction.copied_reference == "mask2"  # so the runner does not score it against itself
    assert not np.array_equal(prediction.mask, case.load_mask("mask1"))  # the phantom's raters disagree


def test_single_reference_is_a_clear_error(smoke_cases, tmp_path):
    from dataclasses import replace

    case = replace(smoke_cases[0], masks={"mask1": smoke_cases[0].masks["mask1"]})
    with pytest.raises(ValueError, match="needs a second rater"):
        _adapter(tmp_path).predict(case)
