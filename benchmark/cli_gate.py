"""``msbench gate``: judge the newest runs of a store against a committed baseline, or write that baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ._console import err, out
from ._console import fail as _fail

RULE_TEXT = """msbench gate baseline (written by 'msbench gate --update'; edit the [gate] knobs, then update again).
Rule, per method, judged on the newest run of [gate] dataset/protocol/budget in the store (mean Dice against
[gate] reference over the run's seeds):
- floor: Dice >= min_dice, and Dice >= threshold_fraction x the Dice of the 'threshold' run in the same store
  (a training-free baseline measured on the same machine and data: a method predicting nothing or not learning
  falls under it, an unchanged method on another machine stays above it);
- drop (drop_test = "noise"): Dice >= reference_dice - max(noise_k x noise_sd, machine_tolerance, min_tolerance),
  noise_sd being the sd of the per-seed mean Dice of reference_run; max_drop replaces that tolerance when set.
  two_sided rows (Dice identical over seeds: training-free) must stay within reference_dice +- min_tolerance, and
  their metrics within the bounds below: a change there is a metric or data bug, not noise.
  drop_test = "wilcoxon": one-sided Wilcoxon signed-rank test of per-patient means of Dice against reference_cases
  fails at p < alpha when the mean drop exceeds min_tolerance (needs at least 5 patients for alpha 0.05, 6 for a
  two_sided row; fewer is a mismatch: the test cannot judge);
- metrics.NAME = {min, max}: bounds on any summary metric (ltpr, hd95_mm, ...) or profile key (latency_p95_s).
- floor_only = true: a method judged by its floor and bounds alone (no noise measured yet); --update keeps it.
Exit status: 0 all pass, 1 a failure, 2 a baseline/run mismatch (no run of a method, other protocol or budget)."""


def _table(frame) -> Table:
    table = Table("method", "metric", "baseline", "measured", "delta", "verdict", "note")
    colour = {"pass": "green", "FAIL": "red", "mismatch": "yellow"}
    for row in frame.itertuples(index=False):
        measured = "-" if row.measured is None or row.measured != row.measured else f"{row.measured:.3f}"
        delta = "-" if row.delta is None or row.delta != row.delta else f"{row.delta:+.3f}"
        verdict = f"[{colour[row.verdict]}]{row.verdict}[/{colour[row.verdict]}]"
        table.add_row(row.method, escape(row.metric), escape(row.baseline), measured, delta, verdict, escape(row.note))
    return table


def gate(
    baseline: Annotated[Path, typer.Option(help="Baseline TOML file (committed with the code it gates).")],
    results: Annotated[Path, typer.Option(help="Results store folder.")] = Path("results"),
    run: Annotated[
        list[str] | None,
        typer.Option(help="Run id (or unique prefix) to judge instead of its method's newest run; repeatable."),
    ] = None,
    update: Annotated[
        bool,
        typer.Option(help="Write BASELINE from the store's runs (each over >= 2 seeds) with their noise floor."),
    ] = False,
    dataset: Annotated[str | None, typer.Option(help="--update without a BASELINE file: the dataset.")] = None,
    protocol: Annotated[str | None, typer.Option(help="--update without a BASELINE file: the protocol.")] = None,
    budget: Annotated[str | None, typer.Option(help="--update without a BASELINE file: the budget.")] = None,
) -> None:
    """Gate the newest runs against a baseline: exit 0 all pass, 1 a failure, 2 a baseline/run mismatch."""
    # scipy.stats (the paired test): about 0.4 s of every 'msbench --help' at the top (python -X importtime)
    from .gate import check_gate, checks_frame, exit_code
    from .gate_baseline import BaselineError, load_baseline
    from .gate_update import dump_baseline, measure_baseline
    from .store import check_results_dir

    runs = tuple(run or ())
    try:
        check_results_dir(results, write=False)
        if update:
            template = load_baseline(baseline, allow_no_methods=True) if baseline.exists() else None
            data = measure_baseline(
                results, template=template, runs=runs, dataset=dataset, protocol=protocol, budget=budget
            )
            baseline.parent.mkdir(parents=True, exist_ok=True)
            baseline.write_text(dump_baseline(data, RULE_TEXT), encoding="utf-8")
            load_baseline(baseline)  # what was written reads back
            table = Table("method", "reference run", "mean Dice", "sd over seeds", "seeds", "per seed")
            for name, entry in data["methods"].items():
                if entry.get("floor_only"):
                    table.add_row(name, "-", "floor only (kept)", "-", "-", "-")
                    continue
                table.add_row(
                    name, entry["reference_run"], f"{entry['reference_dice']:.3f}", f"{entry['noise_sd']:.3f}",
                    str(entry["n_seeds"]), ", ".join(f"{v:.3f}" for v in entry["seed_dice"]),
                )  # fmt: skip
            out.print(table)
            out.print(f"wrote {baseline}")
            return
        checks = check_gate(load_baseline(baseline), results, runs)
    except (BaselineError, FileNotFoundError, ValueError) as error:
        _fail(str(error))
    out.print(_table(checks_frame(checks)))
    code = exit_code(checks)
    message = {0: "gate passed", 1: "gate FAILED", 2: "gate could not judge every method (baseline/run mismatch)"}
    (out if code == 0 else err).print(message[code])
    raise typer.Exit(code)
