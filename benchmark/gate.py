"""Regression gates: a committed TOML baseline checked against the newest matching run of a results store.

A baseline names, per method, what its run on one dataset, protocol and budget must reach: a floor on the mean Dice
(absolute, and/or a fraction of the training-free ``threshold`` baseline's Dice measured in the same store), a drop
against a stored reference judged either by a noise tolerance (``k`` times the spread of the same job over seeds,
never less than ``min_tolerance``) or by a one-sided Wilcoxon signed-rank test on per-patient means of Dice (the
leaderboard's test, :mod:`.statistics`), and optional bounds on other metrics (any key of the run summary such as
``ltpr`` or ``hd95_mm``, or a profile key such as ``latency_p95_s`` when the store has a profile of the run). A
method whose Dice does not move over seeds (a training-free row: ``threshold``, ``inter-rater``) is judged in both
directions: a metric bug moves it either way.

``check_gate`` returns one :class:`Check` per comparison; ``exit_code`` maps them to 0 (all pass), 1 (a failure)
or 2 (a baseline/run mismatch: a method without a run, another protocol or budget). ``gate_update.measure_baseline``
writes a baseline from the runs of a store with the noise floor they measured (``msbench gate --update``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .gate_baseline import Baseline, MethodBaseline, sides
from .options import BASELINE
from .statistics import Alternative, min_p, min_patients, paired_test
from .store import find_run, job_table, read_index, run_table
from .store.index import number_or_none, profile_table

PASS, FAIL, MISMATCH = "pass", "FAIL", "mismatch"


@dataclass(frozen=True)
class Check:
    """One row of the gate's table."""

    method: str
    metric: str
    baseline: str
    measured: float | None
    delta: float | None
    verdict: str
    note: str = ""


# ---------------------------------------------------------------------------------------------------- measurements
def _summary(results: Path, run_id: str, reference: str) -> pd.DataFrame:
    with read_index(results) as conn:
        return pd.read_sql_query(
            "SELECT seed, metric, mean, seed_sd, n_seeds FROM summary WHERE run_id = ? AND reference = ?",
            conn,
            params=(run_id, reference),
        )


def _case_dice(results: Path, run_id: str, reference: str) -> pd.DataFrame:
    """Per-case Dice of a run, averaged over its seeds (the run summary's 'all' convention), with each case's patient.

    Returns:
        Columns ``case``, ``patient``, ``dice``: one row per scored case.
    """
    with read_index(results) as conn:
        rows = pd.read_sql_query(
            "SELECT \"case\", patient, value FROM case_metrics WHERE run_id = ? AND reference = ? AND metric = 'dice'",
            conn,
            params=(run_id, reference),
        )
    means = rows.groupby(["case", "patient"])["value"].mean().dropna()
    return means.rename("dice").reset_index()


def _profile(results: Path, run_id: str) -> dict[str, float]:
    """Numeric keys of the newest profile of a run, or {} when the store has no profiles (an optional table)."""
    try:
        table = profile_table(results)
    except Exception:  # an index written before profiles existed has no such table
        return {}
    rows = table[table["run_id"] == run_id] if "run_id" in table else table.iloc[0:0]
    if rows.empty:
        return {}
    newest = rows.sort_values("created").iloc[-1]
    return {k: float(v) for k, v in newest.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _newest_runs(results: Path, baseline: Baseline) -> pd.DataFrame:
    runs = run_table(results)
    return runs[runs["reference"].isin([baseline.reference]) | (runs["n_cases"] == 0)]


def _pick_run(runs: pd.DataFrame, method: str, dataset: str, protocol: str, budget: str) -> pd.Series | str:
    """The newest run of ``method`` under the identity, or a message saying why there is none."""
    mine = runs[runs["method"] == method]
    same = mine[(mine["dataset"] == dataset) & (mine["protocol"] == protocol) & (mine["budget"] == budget)]
    if not same.empty:
        return same.sort_values("updated").iloc[-1]
    if mine.empty:
        return f"no run of {method!r} in the store"
    other = ", ".join(sorted({f"{r.dataset}/{r.protocol}/{r.budget}" for r in mine.itertuples()}))
    return f"no run of {method!r} on {dataset}/{protocol}/{budget}; its runs are on {other}"


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


# --------------------------------------------------------------------------------------------------------- checking
def check_gate(baseline: Baseline, results: Path, runs: Sequence[str] = ()) -> list[Check]:
    """Judges the newest matching run of every method of ``baseline`` (or the pinned ``runs``) in ``results``.

    Args:
        baseline: A loaded baseline.
        results: The results store.
        runs: Run ids (or unique prefixes) that replace the newest run of their method.
    """
    table = _newest_runs(results, baseline)
    pinned: dict[str, pd.Series] = {}
    checks: list[Check] = []
    for run in runs:
        run_id = find_run(results, run).run_id
        row = table[table["run_id"] == run_id]
        row = (row if not row.empty else run_table(results).query("run_id == @run_id")).iloc[0]
        identity = (row["dataset"], row["protocol"], row["budget"])
        if identity != (baseline.dataset, baseline.protocol, baseline.budget):
            checks.append(Check(row["method"], "run", "/".join(_ident(baseline)), None, None, MISMATCH,
                                f"run {run_id} is on {'/'.join(identity)}"))  # fmt: skip
            continue
        if row["method"] not in baseline.methods:
            checks.append(Check(row["method"], "run", "-", None, None, MISMATCH,
                                f"run {run_id}: method not in {baseline.path}"))  # fmt: skip
            continue
        pinned[row["method"]] = row
    threshold = _threshold_dice(baseline, table, pinned)
    for name, entry in baseline.methods.items():
        row = pinned.get(name)
        if row is None:
            row = _pick_run(table, name, *_ident(baseline))
        if isinstance(row, str):
            checks.append(Check(name, "run", "/".join(_ident(baseline)), None, None, MISMATCH, row))
            continue
        checks += _check_method(baseline, entry, results, row, threshold)
    return checks


def _ident(baseline: Baseline) -> tuple[str, str, str]:
    return baseline.dataset, baseline.protocol, baseline.budget


def _threshold_dice(baseline: Baseline, table: pd.DataFrame, pinned: Mapping[str, pd.Series]) -> float | str | None:
    needed = any(e.threshold_fraction or baseline.threshold_fraction for e in baseline.methods.values())
    if not needed:
        return None
    row = pinned.get(BASELINE)
    if row is None:
        row = _pick_run(table, BASELINE, *_ident(baseline))
    return row if isinstance(row, str) else number_or_none(row["dice_mean"])


def _check_method(
    baseline: Baseline, entry: MethodBaseline, results: Path, row: pd.Series, threshold: float | str | None
) -> list[Check]:
    name, run_id = entry.method, row["run_id"]
    checks: list[Check] = []
    jobs = job_table(results, run_id)
    failed = jobs[jobs["status"] != "ok"]
    if not failed.empty or int(row["n_cases"]) == 0:
        first = failed["error"].dropna().astype(str).head(1).tolist()
        note = f"{len(failed)} of {len(jobs)} jobs not ok" + (f": {first[0][:120]}" if first else "")
        checks.append(Check(name, "jobs", f"{len(jobs)} ok", float(len(jobs) - len(failed)), None, FAIL, note))
        if int(row["n_cases"]) == 0:
            return checks
    dice = number_or_none(row["dice_mean"])
    if baseline.drop_test == "wilcoxon" and entry.reference_dice is not None:
        checks += judge_dice(baseline, replace(entry, reference_dice=None), dice, threshold)
        checks.append(_paired(baseline, entry, results, run_id, dice))
    else:
        checks += judge_dice(baseline, entry, dice, threshold)
    if entry.bounds:
        checks += _bounds(baseline, entry, results, run_id)
    return checks


def judge_dice(
    baseline: Baseline, entry: MethodBaseline, dice: float | None, threshold: float | str | None
) -> list[Check]:
    """The floor and noise-rule drop checks of one method's measured mean Dice (no store needed).

    Args:
        baseline: The baseline (its knobs).
        entry: The method's entry.
        dice: The measured mean Dice (None: undefined).
        threshold: The ``threshold`` run's mean Dice in the same store, or why there is none (a message).
    """
    name, checks = entry.method, []
    fraction = entry.threshold_fraction if entry.threshold_fraction is not None else baseline.threshold_fraction
    if entry.min_dice is not None:
        checks.append(_floor(name, "dice >= min_dice", entry.min_dice, dice, ""))
    if fraction and name != BASELINE:
        label = f"dice >= {fraction:g} x threshold"
        if isinstance(threshold, str) or threshold is None:
            checks.append(Check(name, label, "-", dice, None, MISMATCH, threshold or "the threshold run has no Dice"))
        else:
            checks.append(_floor(name, label, fraction * threshold, dice, f"threshold {threshold:.3f}"))
    if entry.reference_dice is not None:
        checks.append(_drop(baseline, entry, dice))
    return checks


def _floor(name: str, label: str, floor: float, dice: float | None, note: str) -> Check:
    delta = None if dice is None else dice - floor
    verdict = PASS if dice is not None and dice >= floor else FAIL
    return Check(name, label, f">= {floor:.3f}", dice, delta, verdict, note)


def _drop(baseline: Baseline, entry: MethodBaseline, dice: float | None) -> Check:
    ref = float(entry.reference_dice)  # type: ignore[arg-type]
    delta = None if dice is None else dice - ref
    tol = baseline.tolerance(entry)
    sd = f"sd {entry.noise_sd:.3f} over {entry.n_seeds} seeds" if entry.noise_sd is not None else "no noise floor"
    if entry.two_sided:
        ok = delta is not None and abs(delta) <= tol
        return Check(entry.method, "dice change (two-sided)", f"{ref:.3f} +- {tol:.3f}", dice, delta,
                     PASS if ok else FAIL, sd)  # fmt: skip
    ok = delta is not None and delta >= -tol
    return Check(entry.method, "dice drop", f"{ref:.3f} - {tol:.3f}", dice, delta, PASS if ok else FAIL, sd)


def _paired(baseline: Baseline, entry: MethodBaseline, results: Path, run_id: str, dice: float | None) -> Check:
    return judge_paired(baseline, entry, _case_dice(results, run_id, baseline.reference), dice, run_id)


def judge_paired(
    baseline: Baseline, entry: MethodBaseline, measured: pd.DataFrame, dice: float | None, run_id: str = ""
) -> Check:
    """The Wilcoxon drop check: the run's per-case Dice against ``entry.reference_cases`` (no store needed).

    The test is :func:`msbench.benchmark.statistics.paired_test` on per-patient means, the leaderboard's: a run on
    fewer patients than the test needs to reach ``alpha`` is a mismatch (it cannot be judged), never a pass.

    Args:
        baseline: The baseline (``alpha``, ``min_tolerance``).
        entry: The method's entry (its reference cases; ``two_sided``).
        measured: The run's cases: ``case``, ``patient``, ``dice`` (seeds averaged).
        dice: The run's mean Dice.
        run_id: The run, for the messages.
    """
    label = "dice drop (Wilcoxon)"
    by_case = measured.set_index("case")
    common = sorted(set(by_case.index) & set(entry.reference_cases))
    if len(common) < len(entry.reference_cases):
        missing = sorted(set(entry.reference_cases) - set(by_case.index))
        return Check(entry.method, label, f"{len(entry.reference_cases)} cases", float(len(common)), None, MISMATCH,
                     f"cases missing from run {run_id}: {', '.join(missing[:5])}")  # fmt: skip
    x = by_case.loc[common, "dice"].to_numpy(float)
    y = np.array([entry.reference_cases[c] for c in common])
    test = paired_test(x, y, by_case.loc[common, "patient"].to_numpy(), alternative=_alternative(entry))
    ref = float(entry.reference_dice)  # type: ignore[arg-type]
    delta = None if dice is None else dice - ref
    shown = f"{ref:.3f}, p >= {baseline.alpha:g}"
    over = f"{test.n_patients} patients ({test.n_cases} paired cases)"
    smallest = min_p(test.n_patients, two_sided=entry.two_sided)
    if smallest >= baseline.alpha:
        return Check(entry.method, label, shown, dice, delta, MISMATCH,
                     f"{over}: a {sides(entry)} Wilcoxon test on per-patient means cannot reach p < "
                     f"{baseline.alpha:g} (smallest attainable p {smallest:.3g}); gate on at least "
                     f"{min_patients(baseline.alpha, two_sided=entry.two_sided)} patients or set "
                     "gate.drop_test = \"noise\"")  # fmt: skip
    mean_drop = -float((x - y).mean())  # the effect on the run's mean Dice, the scale of min_tolerance
    significant = test.p < baseline.alpha and abs(mean_drop) > baseline.min_tolerance
    bad = significant and (entry.two_sided or mean_drop > 0)
    return Check(entry.method, label, shown, dice, delta, FAIL if bad else PASS, f"p = {test.p:.3g} over {over}")


def _alternative(entry: MethodBaseline) -> Alternative:
    return "two-sided" if entry.two_sided else "less"


def _bounds(baseline: Baseline, entry: MethodBaseline, results: Path, run_id: str) -> list[Check]:
    summary = _summary(results, run_id, baseline.reference)
    values = {r.metric: number_or_none(r.mean) for r in summary[summary["seed"] == "all"].itertuples()}
    profile = _profile(results, run_id)
    checks = []
    for metric, (low, high) in entry.bounds.items():
        shown = f"{_fmt(low) if low is not None else '-inf'} .. {_fmt(high) if high is not None else 'inf'}"
        if metric in values:
            value = values[metric]
        elif metric in profile:
            value = profile[metric]
        else:
            where = "the run summary" + (" or its profile" if profile else " (and the store has no profile of it)")
            checks.append(Check(entry.method, metric, shown, None, None, MISMATCH, f"no '{metric}' in {where}"))
            continue
        ok = value is not None and (low is None or value >= low) and (high is None or value <= high)
        delta = _margin(value, low, high)
        checks.append(Check(entry.method, metric, shown, value, delta, PASS if ok else FAIL))
    return checks


def _margin(value: float | None, low: float | None, high: float | None) -> float | None:
    """Distance of ``value`` to the nearer of its bounds: positive inside, negative outside."""
    if value is None:
        return None
    margins = [
        m for m in (None if low is None else value - low, None if high is None else high - value) if m is not None
    ]
    return min(margins) if margins else None


def exit_code(checks: Sequence[Check]) -> int:
    """2 if any check is a mismatch (the gate could not judge everything), else 1 on any failure, else 0."""
    verdicts = {c.verdict for c in checks}
    return 2 if MISMATCH in verdicts else 1 if FAIL in verdicts else 0


def checks_frame(checks: Sequence[Check]) -> pd.DataFrame:
    """The checks as a table (method, metric, baseline, measured, delta, verdict, note)."""
    return pd.DataFrame([c.__dict__ for c in checks])
