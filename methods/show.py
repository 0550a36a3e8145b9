"""Human-readable method cards (``msbench methods show``)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .card import SCORING_UNITS, Claim, MethodCard
from .registry import get_card
from .selection import RECORD_DIR, load_record, recipe_from_dict, record_path, rerun_command


def parameter_count(name: str, budget: str = "paper") -> int | None:
    """Trainable parameters of the method's network at a budget's width, if its adapter module can count them."""
    card = get_card(name)
    module = importlib.import_module(card.adapter.split(":")[0])
    counter = getattr(module, "count_parameters", None)
    return None if counter is None else int(counter(card.hparams(budget)))


def claim_lines(claim: Claim) -> list[str]:
    """A claim as text: value, data, split and source, then its scoring unit and the msbench key beside it."""
    private = " [private data: shown, never ranked]" if claim.private_data else ""
    match = "like for like" if claim.comparable else f"NOT like for like: it scores {claim.metric_unit}"
    lines = [
        f"    {claim.metric} = {claim.value:g} on {claim.dataset} ({claim.split}; {claim.source}){private}",
        f"      unit: {claim.unit} ({SCORING_UNITS[claim.unit]}); aggregation: {claim.aggregation}",
        f"      msbench metric: {claim.msbench_metric} ({match})",
    ]
    if claim.unit_note:
        lines.append(f"      unit evidence: {claim.unit_note}")
    if claim.note:
        lines.append(f"      note: {claim.note}")
    return lines


def describe_method(name: str) -> str:
    """The card as text: what a user needs to know before running or comparing the method."""
    card = get_card(name)
    lines = [
        f"{card.name}: {card.title}",
        f"  citation:    {card.citation}",
        f"  input:       {card.input_kind}, modalities {', '.join(card.modalities)}",
        f"  trainable:   {'yes' if card.trainable else 'no'}",
        f"  adapter:     {card.adapter}",
    ]
    if card.trainable:
        for budget in card.recipes:
            count = parameter_count(name, budget)
            if count is not None:
                lines.append(f"  parameters:  {count:,} ({budget} width)")
    lines.append("  claims:" if card.claims else "  claims:      none (no paper)")
    for claim in card.claims:
        lines += claim_lines(claim)
    lines.append("  defaults:")
    lines += [f"    {k} = {v!r}" for k, v in card.defaults.items()]
    lines.append("  search space:")
    lines += [f"    {k}: {type(p).__name__}{tuple(asdict(p).values())}" for k, p in card.search_space.items()]
    lines.append("  recipes:")
    for budget, recipe in card.recipes.items():
        extra = f", overrides {dict(recipe.overrides)}" if recipe.overrides else ""
        lines.append(
            f"    {budget}: {recipe.epochs} epochs x {recipe.iterations_per_epoch or 'all'} iterations, "
            f"batch {recipe.batch_size}, patience {recipe.patience}{extra}"
        )
    if card.choices:
        lines.append("  choices where the paper is silent:")
        lines += [f"    {k}: {v}" for k, v in card.choices.items()]
    lines += selection_lines(card)
    return "\n".join(lines)


def selection_lines(card: MethodCard) -> list[str]:
    """The card's recipe selection as text: its candidates, and from the committed record the chosen one and why."""
    if not card.smoke_candidates:
        return ["  recipe selection: none (the card declares no smoke_candidates)"]
    lines = ["  recipe selection (smoke): candidates card (the smoke recipe)"]
    lines += [f"    {name}: {dict(changes)}" for name, changes in card.smoke_candidates.items()]
    path = record_path(card.name)
    if not path.is_file():
        return [*lines, f"    no record: {_shown(path)} does not exist; make it with `{rerun_command(card.name)}`"]
    return lines + record_lines(card, load_record(card.name), path)


def _shown(path: Path) -> str:
    """A record's path from the repository root (``methods/smoke_selection/fsh.json``) where it lies there."""
    root = RECORD_DIR.parents[1]
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def record_lines(card: MethodCard, record: Mapping[str, Any], path: Path) -> list[str]:
    """A committed selection record as text: the chosen recipe, every candidate's validation Dice, provenance."""
    chosen = next(c for c in record["candidates"] if c["name"] == record["chosen"])
    same = recipe_from_dict(chosen["recipe"]) == card.recipe("smoke")
    lines = [
        f"    chosen: {record['chosen']!r}, validation Dice {record['chosen_val_dice']:.3f} "
        f"({'the card ships it' if same else 'NOT the card smoke recipe: the card differs from its record'})",
        f"    on validation patient {', '.join(record['val_patients'])} of fold {record['fold']} of "
        f"{record['dataset']} ({record['protocol']}, {record['synth_resolution_mm']:g} mm), seed {record['seed']}, "
        f"{record['device']}",
    ]
    for candidate in record["candidates"]:
        lines.append(f"      {candidate['name']}: validation Dice {candidate['val_dice']:.3f}")
    lines.append(f"      threshold baseline: validation Dice {record['threshold_val_dice']:.3f}")
    lines.append(
        f"    record: {_shown(path)} (commit {record['commit']}, started "
        f"{record['started_utc']}, {record['wall_seconds']} s)"
    )
    lines.append(
        f"    re-run: `{rerun_command(card.name)}` (or `{rerun_command(card.name, 'recorded')}`: the record's own "
        "candidates)"
    )
    return lines
