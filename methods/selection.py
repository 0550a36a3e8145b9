"""Recipe-selection records, the method side: where they live, how they read, what their numbers mean.

The selection itself is a mode of the harness (``msbench tune --method fsh --candidates smoke``,
:mod:`msbench.benchmark.recipe_selection`): it fits each of a card's smoke candidates (``MethodCard.smoke_candidates``)
on the training patients of one fold and scores that fold's validation patient. Its record
(``methods/smoke_selection/<method>.json``, committed beside the cards) holds every candidate's full recipe, its
validation Dice, the chosen one, the seed, the commit and the wall time, and the ``threshold`` baseline's validation
Dice under the same protocol; ``msbench methods show`` renders it. Version 1 records were written by the loop this
mode replaced (no ``sampler`` key); version 2 by the mode.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msbench.datasets.splits import load_split

from .card import Recipe

if TYPE_CHECKING:
    from msbench.datasets.case import Case

RECORD_DIR = Path(__file__).resolve().parent / "smoke_selection"
RECORD_VERSION = 2
READABLE_VERSIONS = (1, 2)
DATASET = "synth-ms"
PROTOCOL = "isbi2015"
BUDGET = "smoke"
CRITERION = (
    "mean over the validation patient's scans of the metric suite's 'dice' (whole volume, per scan; both-empty "
    "scans left out); the highest wins, ties go to the earlier candidate"
)


def record_path(method: str) -> Path:
    """Where the committed selection record of ``method`` lives."""
    return RECORD_DIR / f"{method}.json"


def recorded_candidates(method: str, path: Path | None = None) -> dict[str, Recipe]:
    """The candidates of a committed record, rebuilt as recipes (JSON lists back to tuples)."""
    record = load_record(method, path)
    return {c["name"]: recipe_from_dict(c["recipe"]) for c in record["candidates"]}


def load_record(method: str, path: Path | None = None) -> dict[str, Any]:
    """The committed selection record of ``method``; a missing file is an error that says how to make it."""
    path = path or record_path(method)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no recipe-selection record for {method!r}. Make it with `{rerun_command(method)}`."
        )
    record = json.loads(path.read_text())
    if record.get("record_version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{path}: record_version {record.get('record_version')!r} is not one this msbench reads "
            f"({', '.join(map(str, READABLE_VERSIONS))}); re-run `{rerun_command(method)}`."
        )
    return record


def rerun_command(method: str, candidates: str = "smoke") -> str:
    """The command that (re)makes ``method``'s record."""
    return f"msbench tune --method {method} --candidates {candidates}"


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """A recipe as JSON-ready data (overrides sorted by name)."""
    data = dataclasses.asdict(recipe)
    data["overrides"] = {k: recipe.overrides[k] for k in sorted(recipe.overrides)}
    return json.loads(json.dumps(data))


def recipe_from_dict(data: Mapping[str, Any]) -> Recipe:
    """Inverse of :func:`recipe_to_dict` (JSON lists become tuples, as the cards write them)."""

    def untuple(value: Any) -> Any:
        return tuple(untuple(v) for v in value) if isinstance(value, list) else value

    fields = {k: v for k, v in data.items() if k != "overrides"}
    return Recipe(**fields, overrides={k: untuple(v) for k, v in data["overrides"].items()})


def fold_train_val(cases: Sequence[Case], fold_index: int = 0) -> tuple[list[Case], list[Case]]:
    """The training and validation cases of one fold of synth-ms/isbi2015; its test cases are not returned."""
    split = load_split(DATASET, PROTOCOL, cases)
    folds = {f.index: f for f in split.folds}
    if fold_index not in folds:
        raise ValueError(f"fold {fold_index} does not exist in {split.path.name}; it has {sorted(folds)}.")
    fold = folds[fold_index]
    return fold.select(cases, "train"), fold.select(cases, "val")
