"""Recipe selection sees the training and validation patients only, and the cards ship what its records chose."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from msbench.datasets.splits import load_split
from msbench.methods import get_card, list_methods, selection
from msbench.methods.selection import (
    fold_train_val,
    load_record,
    recipe_from_dict,
    recipe_to_dict,
    record_path,
    recorded_candidates,
)
from msbench.methods.show import describe_method, selection_lines

pytestmark = pytest.mark.usefixtures("one_thread")
TRAINABLE = [n for n in list_methods() if get_card(n).trainable]
RECORDED = [n for n in TRAINABLE if record_path(n).is_file()]


def test_fold_train_val_returns_no_test_case(smoke_cases):
    fold = load_split("synth-ms", "isbi2015", smoke_cases).folds[0]
    train, val = fold_train_val(smoke_cases, 0)
    assert {c.case_id for c in train} == set(fold.train) and {c.case_id for c in val} == set(fold.val)
    assert not {c.case_id for c in (*train, *val)} & set(fold.test)


@pytest.mark.parametrize("name", TRAINABLE)
def test_candidates_are_card_data_starting_with_the_smoke_recipe_and_round_trip_through_json(name):
    candidates = get_card(name).smoke_candidate_recipes()
    assert next(iter(candidates.items())) == ("card", get_card(name).recipe("smoke")) and len(candidates) >= 2
    for recipe in candidates.values():
        assert recipe_from_dict(json.loads(json.dumps(recipe_to_dict(recipe)))) == recipe


def test_a_card_without_candidates_says_so():
    with pytest.raises(ValueError, match="declares no smoke_candidates"):
        get_card("threshold").smoke_candidate_recipes()


@pytest.mark.parametrize("name", RECORDED)
def test_card_ships_the_recipe_its_record_chose_among_its_own_candidates(name):
    record = load_record(name)
    chosen = next(c for c in record["candidates"] if c["name"] == record["chosen"])
    assert recipe_from_dict(chosen["recipe"]) == get_card(name).recipe("smoke")
    assert chosen["val_dice"] == max(c["val_dice"] for c in record["candidates"])
    assert record["val_patients"] == ["training02"] and not set(record["val_cases"]) & set(record["train_cases"])
    assert recorded_candidates(name) == get_card(name).smoke_candidate_recipes()


MEASURED_DICE = re.compile(r"\bDice\b[^.;:,()]{0,25}?\d*\.\d+")
"""A Dice followed closely by a decimal number ('validation Dice 0.578'): a measured value, which lives in records."""
COMMIT_ID = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")


@pytest.mark.parametrize("name", list_methods())
def test_card_prose_holds_no_measured_dice_and_no_commit_id(name):
    card = get_card(name)
    prose = {**{f"choices[{k!r}]": v for k, v in card.choices.items()}, "title": card.title}
    prose |= {f"claim {c.metric} {c.source}": f"{c.note} {c.unit_note}" for c in card.claims}
    for where, text in prose.items():
        assert not COMMIT_ID.search(text), f"{name} {where}: a commit id: {COMMIT_ID.search(text)}"
        if not where.startswith("claim"):  # a claim's note quotes the paper's own numbers (per fold, spread)
            assert not MEASURED_DICE.search(text), f"{name} {where}: a measured Dice: {MEASURED_DICE.search(text)}"
        assert "test Dice" not in text and "test patient" not in text.replace("never a test patient", "")


def test_methods_show_renders_the_chosen_recipe_its_validation_dice_and_its_record():
    record = load_record("fsh")
    text = describe_method("fsh")
    assert f"chosen: 'card', validation Dice {record['chosen_val_dice']:.3f} (the card ships it)" in text
    for candidate in record["candidates"]:
        assert f"{candidate['name']}: validation Dice {candidate['val_dice']:.3f}" in text
    assert f"threshold baseline: validation Dice {record['threshold_val_dice']:.3f}" in text
    assert f"record: methods/smoke_selection/fsh.json (commit {record['commit']}" in text
    assert "on validation patient training02 of fold 0 of synth-ms (isbi2015, 3 mm), seed 0" in text


def test_methods_show_says_when_a_card_has_no_record_or_differs_from_it(tmp_path, monkeypatch):
    card = get_card("fsh")
    smoke = card.recipe("smoke")
    edited = dataclasses.replace(card, recipes={**card.recipes, "smoke": dataclasses.replace(smoke, epochs=3)})
    assert any("NOT the card smoke recipe" in line for line in selection_lines(edited))
    monkeypatch.setattr(selection, "RECORD_DIR", tmp_path)
    missing = f"no record: {tmp_path / 'fsh.json'} does not exist; make it with `msbench tune --method fsh"
    assert f"    {missing} --candidates smoke`" in selection_lines(card)
    assert "recipe selection: none (the card declares no smoke_candidates)" in describe_method("threshold")
