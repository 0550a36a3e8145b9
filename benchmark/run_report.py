"""What ``msbench run`` prints at the end: the methods by Dice, the reference rows apart, and what this process did."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from .options import BASELINE, INTER_RATER
from .plan import MethodOutcome

"""The training-free baseline every method is compared with (the runner adds it to a run unless told not to)."""

REFERENCE_ROWS = {INTER_RATER: "human ceiling", BASELINE: "baseline"}
"""Rows that are yardsticks, not contenders: shown below the methods, never marked as beating the baseline."""


def outcome_table(outcomes: list[MethodOutcome], title: str, test_dataset: str | None = None) -> Table:
    """The methods ordered by mean Dice (best first), then the reference rows (human ceiling, baseline) apart."""
    table = Table(title=title, title_justify="left", caption="Dice: mean over the test scans, primary reference")
    table.add_column("method", overflow="fold")
    table.add_column("status")
    table.add_column("jobs")
    dices = ["Dice"] if test_dataset is None else ["in-domain Dice", "shifted Dice"]
    for column in (*dices, "vs threshold"):
        table.add_column(column, justify="right")
    contenders = [o for o in outcomes if o.method not in REFERENCE_ROWS]
    contenders.sort(key=lambda o: (o.dice_mean is None, -(o.dice_mean or 0.0), o.method))
    references = sorted(
        (o for o in outcomes if o.method in REFERENCE_ROWS), key=lambda o: list(REFERENCE_ROWS).index(o.method)
    )
    for outcome in contenders:
        table.add_row(*_cells(outcome, test_dataset))
    if contenders and references:
        table.add_section()
    for outcome in references:
        table.add_row(*_cells(outcome, test_dataset))
    return table


def _cells(o: MethodOutcome, test_dataset: str | None) -> list[str]:
    colour = {"ok": "green", "partial": "yellow"}.get(o.status, "red")
    counts = ((o.n_reused, "reused"), (o.n_failed, "failed"), (o.n_elsewhere, "in another process"))
    jobs = [f"{o.n_ok} ok", *(f"{n} {what}" for n, what in counts if n)]
    dices = [_dice(o.dice_mean)] + ([] if test_dataset is None else [_dice(o.shifted_dice)])
    if o.method in REFERENCE_ROWS:
        versus = REFERENCE_ROWS[o.method]
    elif o.beats_baseline is None:
        versus = "-"
    else:
        versus = "[green]beats[/]" if o.beats_baseline else "[red]below[/]"
    return [o.method, f"[{colour}]{o.status}[/]", ", ".join(jobs), *dices, versus]


def _dice(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def work_summary(outcomes: list[MethodOutcome]) -> str:
    """What this process did, e.g. ``this process ran 3 jobs (1 failed); 4 ran in another process; 2 reused``."""
    ran = sum(o.n_ok + o.n_failed for o in outcomes)
    failed = sum(o.n_failed for o in outcomes)
    elsewhere = sum(o.n_elsewhere for o in outcomes)
    reused = sum(o.n_reused for o in outcomes)
    return (
        f"this process ran {ran} job{'s' * (ran != 1)}"
        + (f" ({failed} failed)" if failed else "")
        + f"; {elsewhere} ran in another process; {reused} reused"
    )


def next_commands(results: Path) -> list[str]:
    """What to do with the results: browse them, and gate them against a committed baseline."""
    return [
        f"next: msbench leaderboard --results {results}   (browse and compare the runs)",
        f"      msbench gate --baseline FILE --results {results}   (pass/fail against a baseline file)",
    ]
