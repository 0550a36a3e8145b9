"""Human-readable method cards (``msbench methods show``)."""

from __future__ import annotations

import importlib
from dataclasses import asdict

from .card import SCORING_UNITS, Claim
from .registry import get_card


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
    return "\n".join(lines)
