"""Recipe selection on the validation patient only: which smoke recipe a card ships, and why.

For one method and a list of candidate recipes (``dataclasses.replace`` variants of the card's smoke recipe), the
tool fits each candidate on the training patients of one fold and scores it on that fold's validation patient, with
the metric suite's ``dice`` (whole volume, per scan, both-empty scans left out). The fold's test cases are never
handed to it: :func:`fold_train_val` returns the training and validation cases alone, and :func:`select_recipe`
receives nothing else. The record it writes (``methods/smoke_selection/<method>.json``, committed beside the cards)
holds every candidate's full recipe, its validation Dice, the chosen one, the seed, the commit and the wall time,
and the ``threshold`` baseline's validation Dice under the same protocol, so that a card's smoke recipe can be
checked against it and the selection re-run.

Re-run (one fit at a time; a smoke fit takes about 0.5-2 minutes on 2 CPU cores)::

    MSBENCH_NUM_THREADS=2 python -m msbench.methods.selection fsh
    python -m msbench.methods.selection fsh --recorded   # exactly the candidates of the committed record
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .card import Recipe
from .registry import get_card, list_methods

if TYPE_CHECKING:
    from msbench.datasets.case import Case

RECORD_DIR = Path(__file__).resolve().parent / "smoke_selection"
RECORD_VERSION = 1
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


def _with(recipe: Recipe, *, epochs: int | None = None, steps: int | None = None, **overrides: Any) -> Recipe:
    """The recipe with other epochs / steps per epoch and some hyper-parameters changed."""
    changes: dict[str, Any] = {"overrides": {**recipe.overrides, **overrides}}
    if epochs is not None:
        changes["epochs"] = epochs
    if steps is not None:
        changes["iterations_per_epoch"] = steps
    return dataclasses.replace(recipe, **changes)


_PATCH_3D = ("fsh", "basicunet", "dynunet")
_FC_DENSENET = ("fcdensenet", "fcdensenet_clstm", "fcdensenet_sa", "fcdensenet_sa_clstm")


def smoke_candidates(method: str) -> dict[str, Recipe]:
    """The candidate smoke recipes of a trainable method: the card's own (``card``) first, then variants of it.

    The variants change one knob each, preferably one that an earlier smoke recipe fixed by looking at a test
    patient (the share of lesion-containing samples, the BCE weight, the input zoom, the paper's augmentation), so
    that the validation patient decides it now. On a shared 2-core machine a 3D smoke fit takes about 5 minutes,
    so most methods get the card's recipe and one variant.
    """
    card = get_card(method)
    if not card.trainable:
        raise ValueError(f"method {method!r} is not trainable: it has no recipe to select.")
    base = card.recipe(BUDGET)
    lr = base.overrides.get("lr", card.defaults.get("lr"))
    if method in _PATCH_3D:
        variants = {"positive_fraction 1.0": _with(base, positive_fraction=1.0)}  # F.sh's: lesion patches only
    elif method == "unet3d" or method == "fcdensenet_clstm":
        variants = {"lr/3": _with(base, lr=lr / 3)}
    elif method in _FC_DENSENET:
        variants = {"positive_fraction 0.75": _with(base, positive_fraction=0.75)}
    elif method == "smp_unet2d":
        variants = {"bce_weight 0.2": _with(base, bce_weight=0.2), "input_zoom 1": _with(base, input_zoom=1)}
    elif method == "nnunet2d":
        variants = {
            "paper_augmentation": _with(base, paper_augmentation=True),
            "entropy_threshold 0.01": _with(base, entropy_threshold=0.01),  # the paper's slice filter
        }
    else:
        raise ValueError(f"no smoke candidates are defined for {method!r}; add them to smoke_candidates().")
    return {"card": base, **variants}


def recorded_candidates(method: str, path: Path | None = None) -> dict[str, Recipe]:
    """The candidates of a committed record, rebuilt as recipes (JSON lists back to tuples)."""
    record = load_record(method, path)
    return {c["name"]: recipe_from_dict(c["recipe"]) for c in record["candidates"]}


def load_record(method: str, path: Path | None = None) -> dict[str, Any]:
    """The committed selection record of ``method``; a missing file is an error that says how to make it."""
    path = path or record_path(method)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no recipe-selection record for {method!r}. Make it with `python -m msbench.methods.selection "
            f"{method}`."
        )
    return json.loads(path.read_text())


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
    from msbench.datasets.splits import load_split

    split = load_split(DATASET, PROTOCOL, cases)
    folds = {f.index: f for f in split.folds}
    if fold_index not in folds:
        raise ValueError(f"fold {fold_index} does not exist in {split.path.name}; it has {sorted(folds)}.")
    fold = folds[fold_index]
    return fold.select(cases, "train"), fold.select(cases, "val")


def validation_dice_of(predict: Callable[[Case], Any], val: Sequence[Case], reference: str) -> list[float]:
    """The metric suite's ``dice`` of each validation scan (NaN for a both-empty scan)."""
    from msbench.benchmark.metrics import evaluate_case

    return [float(evaluate_case(predict(c).mask, c.load_mask(reference), c.spacing_mm)["dice"]) for c in val]


def finite_mean(values: Sequence[float]) -> float:
    """Mean of the non-NaN values (NaN when there is none): the validation Dice over scans, both-empty ones left out."""
    valid = [v for v in values if v == v]
    return sum(valid) / len(valid) if valid else float("nan")


def _fit_and_score(
    method: str, recipe: Recipe, train: Sequence[Case], val: Sequence[Case], workdir: Path, seed: int, reference: str
) -> dict[str, Any]:
    # The harness's one door fits every candidate; imported here because methods import no harness module at load
    # time (selection becomes a mode of 'msbench tune', in the harness, where this import goes to the top).
    from msbench.benchmark.fitting import FitSpec, Overrides, fit

    spec = FitSpec.from_card(
        get_card(method),
        BUDGET,
        overrides=Overrides(recipe=recipe),
        workdir=workdir,
        seed=seed,
        device="cpu",
        reference=reference,
    )
    start = time.perf_counter()
    adapter, report = fit(spec, train, val)
    per_case = validation_dice_of(adapter.predict, val, reference)
    return {
        "val_dice": finite_mean(per_case),
        "val_dice_per_case": dict(zip([c.case_id for c in val], per_case, strict=True)),
        "chosen_epoch": report.chosen_epoch,
        "chosen": report.chosen,
        "fit_seconds": round(time.perf_counter() - start, 1),
    }


def select_recipe(
    method: str,
    candidates: Mapping[str, Recipe],
    train: Sequence[Case],
    val: Sequence[Case],
    *,
    workdir: Path,
    seed: int = 0,
    reference: str = "mask1",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fits every candidate on ``train`` and scores it on ``val``; the best validation Dice wins.

    Args:
        method: A trainable registered method.
        candidates: Name -> recipe; the first is the incumbent and wins ties.
        train: Training cases (the fold's training patients).
        val: Validation cases (the fold's validation patient): the only data scored.
        workdir: Scratch folder; each candidate fits in its own sub-folder.
        seed: Seed of every fit.
        reference: Reference mask for training and scoring.
        log: Receives one line per finished candidate.

    Returns:
        The record: candidates (name, recipe, validation Dice per scan and mean, chosen epoch, seconds), the chosen
        candidate and the ``threshold`` baseline's validation Dice, with the cases used.
    """
    if not candidates:
        raise ValueError(f"{method}: no candidate recipe to select from.")
    if not val:
        raise ValueError(f"{method}: recipe selection needs the validation patient's cases; none given.")
    overlap = {c.case_id for c in train} & {c.case_id for c in val}
    if overlap:
        raise ValueError(f"{method}: cases {sorted(overlap)} are both training and validation cases.")
    workdir = Path(workdir)
    rows = []
    for index, (name, recipe) in enumerate(candidates.items()):
        scored = _fit_and_score(method, recipe, train, val, workdir / f"candidate{index}", seed, reference)
        rows.append({"name": name, "recipe": recipe_to_dict(recipe), **scored})
        log(f"{method} [{name}]: validation Dice {scored['val_dice']:.4f} ({scored['fit_seconds']} s)")
        sys.stdout.flush()
    finite = [r for r in rows if r["val_dice"] == r["val_dice"]]
    if not finite:
        raise RuntimeError(f"{method}: every candidate's validation Dice is NaN (validation scans without lesion?).")
    chosen = max(finite, key=lambda r: r["val_dice"])  # max keeps the first of equal values
    baseline = _fit_and_score(
        "threshold", get_card("threshold").recipe(BUDGET), train, val, workdir / "t", seed, reference
    )
    return {
        "method": method,
        "criterion": CRITERION,
        "train_cases": sorted(c.case_id for c in train),
        "val_cases": sorted(c.case_id for c in val),
        "val_patients": sorted({c.patient_id for c in val}),
        "candidates": rows,
        "chosen": chosen["name"],
        "chosen_val_dice": chosen["val_dice"],
        "threshold_val_dice": baseline["val_dice"],
        "threshold_chosen": baseline["chosen"],
    }


def git_commit(repo: Path | None = None) -> str:
    """``git describe --always --dirty`` of the code that ran (``unknown`` outside a git checkout)."""
    repo = repo or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=40"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def run_smoke_selection(
    method: str,
    *,
    candidates: Mapping[str, Recipe] | None = None,
    fold: int = 0,
    seed: int = 0,
    data_root: Path | None = None,
    workdir: Path | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Selects ``method``'s smoke recipe on fold ``fold`` of synth-ms (isbi2015, smoke grid) and writes the record.

    Args:
        method: A trainable registered method.
        candidates: Name -> recipe (default :func:`smoke_candidates`).
        fold: Outer fold whose training patients train and whose validation patient scores.
        seed: Seed of every fit.
        data_root: Phantom folder (default: the cache ``msbench run`` uses).
        workdir: Scratch folder for the fits (default: a temporary folder, removed after).
        out: Record file (default :func:`record_path`); None-equivalent ``Path('-')`` writes nothing.

    Returns:
        The record as written.
    """
    from msbench.benchmark.protocol import get_budget
    from msbench.datasets import get_dataset

    from .engine.loop import default_threads

    candidates = dict(candidates or smoke_candidates(method))
    spec = get_dataset(DATASET)
    resolution = get_budget(BUDGET).synth_resolution_mm
    root = spec.prepare_root(data_root, resolution_mm=resolution, progress=False)
    train, val = fold_train_val(spec.load_cases(root), fold)
    started, commit = time.time(), git_commit()  # the code that runs, before anyone edits the tree
    with tempfile.TemporaryDirectory(prefix=f"msbench-select-{method}-") as scratch:
        record = select_recipe(method, candidates, train, val, workdir=Path(workdir or scratch), seed=seed)
    record = {
        "record_version": RECORD_VERSION,
        "method": method,
        "dataset": DATASET,
        "protocol": PROTOCOL,
        "fold": fold,
        "budget": BUDGET,
        "synth_resolution_mm": resolution,
        "seed": seed,
        "commit": commit,
        "device": "cpu",
        "torch_threads": default_threads("cpu"),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        **{k: v for k, v in record.items() if k != "method"},
    }
    out = out or record_path(method)
    if str(out) != "-":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + "\n")
    return record


def card_sentence(record: Mapping[str, Any]) -> str:
    """The sentence a card says about its smoke recipe's selection (validation numbers only)."""

    def label(name: str) -> str:
        return "the card's recipe before the selection" if name == "card" else name

    chosen = "the card's recipe, kept" if record["chosen"] == "card" else record["chosen"]
    others = ", ".join(
        f"{label(c['name'])} {c['val_dice']:.3f}" for c in record["candidates"] if c["name"] != record["chosen"]
    )
    return (
        f"chosen on validation patient {', '.join(record['val_patients'])} of fold {record['fold']} of "
        f"{record['dataset']} ({record['protocol']}, {record['synth_resolution_mm']:g} mm) among "
        f"{len(record['candidates'])} candidates ({chosen}), validation Dice "
        f"{record['chosen_val_dice']:.3f} "
        f"(others: {others}; threshold baseline {record['threshold_val_dice']:.3f}); record "
        f"methods/smoke_selection/{record['method']}.json"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m msbench.methods.selection", description=__doc__.split("\n")[0])
    parser.add_argument("methods", nargs="+", help=f"trainable methods, or 'all' ({', '.join(list_methods())})")
    parser.add_argument("--recorded", action="store_true", help="re-run exactly the committed record's candidates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=None, help=f"record folder (default {RECORD_DIR})")
    args = parser.parse_args(argv)
    names = [n for n in list_methods() if get_card(n).trainable] if args.methods == ["all"] else args.methods
    for name in names:
        get_card(name)
        candidates = recorded_candidates(name) if args.recorded else None
        out = (args.out_dir / f"{name}.json") if args.out_dir else None
        record = run_smoke_selection(name, candidates=candidates, fold=args.fold, seed=args.seed, out=out)
        print(f"{name}: chose {record['chosen']!r} ({card_sentence(record)}) in {record['wall_seconds']} s")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
