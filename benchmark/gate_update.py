"""``msbench gate --update``: a baseline measured from the runs of a store, with the noise floor they measured."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .gate import _case_dice, _ident, _pick_run, _summary
from .gate_baseline import BASELINE_SCHEMA, Baseline, MethodBaseline
from .store import find_run, run_table
from .store.index import number_or_none

EXTRA_METRICS = ("ltpr", "lfpr", "hd95_mm")


def measure_baseline(
    results: Path,
    *,
    template: Baseline | None = None,
    runs: Sequence[str] = (),
    dataset: str | None = None,
    protocol: str | None = None,
    budget: str | None = None,
) -> dict[str, Any]:
    """A baseline (as a TOML-ready dict) measured from the newest runs of a store, with each run's noise floor.

    The rule's knobs and the run identity come from ``template`` (an existing baseline) when given, else from the
    arguments or, when the store holds runs of one identity only, from the store. Every method of ``template`` (else
    every method of that identity, or of ``runs``) needs a run over at least two seeds: ``noise_sd`` is the sd of
    its per-seed mean Dice. A method whose Dice does not move over seeds is written ``two_sided`` with bounds on
    ``EXTRA_METRICS`` at ``min_tolerance`` (relative for values above 1): a change there is a bug, not noise.

    A ``floor_only`` method of ``template`` is kept as written (no noise is measured for it).

    Raises:
        ValueError: No run to measure, several identities to choose from, or a run with fewer than two seeds.
    """
    table = run_table(results)
    ident = _update_identity(table, template, runs, results, dataset, protocol, budget)
    gate = _gate_settings(template, ident)
    reference = gate["reference"]
    table = table[table["reference"] == reference]
    pinned = {r: find_run(results, r).run_id for r in runs}
    chosen = table[table["run_id"].isin(pinned.values())] if runs else pd.DataFrame()
    names = list(template.methods) if template else []
    names = names or (sorted(set(chosen["method"])) if runs else [])
    if not names:
        names = sorted(set(table[(table["dataset"] == ident[0]) & (table["protocol"] == ident[1])
                                 & (table["budget"] == ident[2])]["method"]))  # fmt: skip
    methods: dict[str, Any] = {}
    for name in names:
        old = template.methods.get(name) if template else None
        if old is not None and old.floor_only:
            methods[name] = _kept_entry(old)
            continue
        rows = chosen[chosen["method"] == name] if runs else pd.DataFrame()
        row = rows.iloc[0] if not rows.empty else _pick_run(table, name, *ident)
        if isinstance(row, str):
            raise ValueError(f"cannot measure a baseline for {name!r}: {row}.")
        methods[name] = _measured_entry(results, row, reference, gate, old)
    return {"gate": gate, "methods": methods}


def _kept_entry(old: MethodBaseline) -> dict[str, Any]:
    """A ``floor_only`` entry as written: its floors and bounds, nothing measured."""
    entry: dict[str, Any] = {"floor_only": True}
    for key in ("min_dice", "threshold_fraction"):
        if getattr(old, key) is not None:
            entry[key] = getattr(old, key)
    if old.bounds:
        entry["metrics"] = {
            m: {k: v for k, v in zip(("min", "max"), b, strict=True) if v is not None} for m, b in old.bounds.items()
        }
    return entry


def _update_identity(
    table: pd.DataFrame,
    template: Baseline | None,
    runs: Sequence[str],
    results: Path,
    dataset: str | None,
    protocol: str | None,
    budget: str | None,
) -> tuple[str, str, str]:
    if template is not None:
        return _ident(template)
    if runs:
        first = table[table["run_id"] == find_run(results, runs[0]).run_id].iloc[0]
        return first["dataset"], first["protocol"], first["budget"]
    rows = table
    for col, want in (("dataset", dataset), ("protocol", protocol), ("budget", budget)):
        if want is not None:
            rows = rows[rows[col] == want]
    idents = sorted({(r.dataset, r.protocol, r.budget) for r in rows.itertuples()})
    if len(idents) != 1:
        found = ", ".join("/".join(i) for i in idents) or "none"
        raise ValueError(
            f"{results}: {len(idents)} run identities (dataset/protocol/budget: {found}); name one with --run or "
            "start from an existing baseline file."
        )
    return idents[0]


def _gate_settings(template: Baseline | None, ident: tuple[str, str, str]) -> dict[str, Any]:
    base = template or Baseline(path=Path("-"), dataset=ident[0], protocol=ident[1], budget=ident[2], methods={})
    gate: dict[str, Any] = {
        "schema": BASELINE_SCHEMA, "dataset": ident[0], "protocol": ident[1], "budget": ident[2],
        "reference": base.reference, "drop_test": base.drop_test, "noise_k": base.noise_k,
        "min_tolerance": base.min_tolerance, "machine_tolerance": base.machine_tolerance, "alpha": base.alpha,
    }  # fmt: skip
    if base.threshold_fraction is not None:
        gate["threshold_fraction"] = base.threshold_fraction
    if base.note:
        gate["note"] = base.note
    return gate


def _measured_entry(
    results: Path, row: pd.Series, reference: str, gate: Mapping[str, Any], old: MethodBaseline | None
) -> dict[str, Any]:
    run_id, name = row["run_id"], row["method"]
    summary = _summary(results, run_id, reference)
    per_seed = summary[(summary["metric"] == "dice") & (summary["seed"] != "all")].sort_values("seed")
    seed_dice = [round(float(v), 4) for v in per_seed["mean"]]
    if len(seed_dice) < 2:
        raise ValueError(
            f"run {run_id} ({name}) has {len(seed_dice)} seed(s): the noise floor needs the same job over at least "
            "two seeds; run it with e.g. --seeds 0,1,2."
        )
    sd = float(np.std(seed_dice, ddof=1))
    two_sided = sd < 1e-6
    entry: dict[str, Any] = {
        "reference_run": run_id,
        "reference_dice": round(float(row["dice_mean"]), 4),
        "noise_sd": round(sd, 4),
        "n_seeds": len(seed_dice),
        "seed_dice": seed_dice,
    }
    if old is not None and old.min_dice is not None:
        entry["min_dice"] = old.min_dice
    if old is not None and old.threshold_fraction is not None:
        entry["threshold_fraction"] = old.threshold_fraction
    if two_sided:
        entry["two_sided"] = True
        means = {r.metric: number_or_none(r.mean) for r in summary[summary["seed"] == "all"].itertuples()}
        tol = float(gate["min_tolerance"])
        entry["metrics"] = {
            m: {"min": round(v - tol * max(1.0, abs(v)), 4), "max": round(v + tol * max(1.0, abs(v)), 4)}
            for m in EXTRA_METRICS
            if (v := means.get(m)) is not None
        }
    elif old is not None and old.bounds:
        entry["metrics"] = {
            m: {k: v for k, v in zip(("min", "max"), b, strict=True) if v is not None} for m, b in old.bounds.items()
        }
    cases = _case_dice(results, run_id, reference)
    entry["reference_cases"] = {str(c): round(float(v), 4) for c, v in zip(cases["case"], cases["dice"], strict=True)}
    return entry


def dump_baseline(data: Mapping[str, Any], header: str = "") -> str:
    """TOML text of a baseline dict (flat values, inline tables for metrics and cases), ``header`` as comments."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    lines += ["", "[gate]"] + [f"{k} = {_toml(v)}" for k, v in data["gate"].items()]
    for name, entry in data["methods"].items():
        key = name if name.replace("_", "").isalnum() else json.dumps(name)
        lines += ["", f"[methods.{key}]"] + [f"{k} = {_toml(v)}" for k, v in entry.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to a baseline")
