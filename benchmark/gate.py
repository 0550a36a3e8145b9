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
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .statistics import Alternative, min_p, min_patients, paired_test
from .store import find_run, job_table, read_index, run_table
from .store.index import number_or_none

BASELINE_SCHEMA = 1
DROP_TESTS = ("noise", "wilcoxon")
THRESHOLD_METHOD = "threshold"
PASS, FAIL, MISMATCH = "pass", "FAIL", "mismatch"

_GATE_KEYS = {
    "schema": int, "dataset": str, "protocol": str, "budget": str, "reference": str, "drop_test": str,
    "noise_k": float, "min_tolerance": float, "machine_tolerance": float, "threshold_fraction": float, "alpha": float,
    "note": str,
}  # fmt: skip
_METHOD_KEYS = {
    "min_dice": float, "threshold_fraction": float, "reference_dice": float, "noise_sd": float, "n_seeds": int,
    "max_drop": float, "two_sided": bool, "reference_cases": dict, "metrics": dict, "seed_dice": list,
    "reference_run": str, "floor_only": bool,
}  # fmt: skip
_BOUND_KEYS = {"min": float, "max": float}


class BaselineError(ValueError):
    """A baseline file that cannot be read: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class MethodBaseline:
    """What one method's run must reach (see the module docstring for the rules).

    Attributes:
        method: Registered method name.
        min_dice: Absolute floor on the mean Dice, or None.
        threshold_fraction: Floor as a fraction of the ``threshold`` run's mean Dice in the same store, or None.
        reference_dice: Mean Dice of the reference run over its seeds, or None (no drop check).
        noise_sd: Spread (sd) of the per-seed mean Dice of the reference run.
        n_seeds: Seeds the spread was measured over.
        max_drop: Explicit largest allowed drop; else the gate's rule from ``noise_sd``.
        two_sided: Judge a rise as well as a drop (training-free rows, where a change can only be a bug).
        reference_cases: Per-case Dice of the reference run (mean over seeds), for the paired test.
        bounds: Metric name -> (min, max), either None.
        seed_dice: The reference run's per-seed mean Dice (for the record).
        reference_run: The run id the reference numbers came from.
        floor_only: Judged by its floor and bounds alone, kept as written by ``--update`` (no noise measured).
    """

    method: str
    min_dice: float | None = None
    threshold_fraction: float | None = None
    reference_dice: float | None = None
    noise_sd: float | None = None
    n_seeds: int | None = None
    max_drop: float | None = None
    two_sided: bool = False
    reference_cases: Mapping[str, float] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    seed_dice: tuple[float, ...] = ()
    reference_run: str | None = None
    floor_only: bool = False


@dataclass(frozen=True)
class Baseline:
    """A parsed baseline file: the run identity every method is judged under, the rule's knobs and the methods."""

    path: Path
    dataset: str
    protocol: str
    budget: str
    methods: Mapping[str, MethodBaseline]
    reference: str = "mask1"
    drop_test: str = "noise"
    noise_k: float = 3.0
    min_tolerance: float = 0.01
    machine_tolerance: float = 0.0
    threshold_fraction: float | None = None
    alpha: float = 0.05
    note: str = ""

    def tolerance(self, entry: MethodBaseline) -> float:
        """Largest allowed drop of ``entry``'s mean Dice under the noise rule."""
        if entry.max_drop is not None:
            return entry.max_drop
        noise = self.noise_k * (entry.noise_sd or 0.0)
        floor = self.min_tolerance if entry.two_sided else max(self.min_tolerance, self.machine_tolerance)
        return max(noise, floor)


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


# --------------------------------------------------------------------------------------------------------- reading
def _typed(path: Path, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BaselineError(
            f"{path}: key '{key}' must be a {kind.__name__}, got {type(value).__name__} {value!r}; fix the value."
        )
    return value


def _section(path: Path, prefix: str, table: Mapping[str, Any], keys: Mapping[str, type]) -> dict[str, Any]:
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise BaselineError(f"{path}: unknown key '{prefix}{unknown[0]}'; known keys there: {', '.join(sorted(keys))}.")
    return {k: _typed(path, prefix + k, v, keys[k]) for k, v in table.items()}


def _method(path: Path, name: str, table: Any) -> MethodBaseline:
    prefix = f"methods.{name}."
    if not isinstance(table, dict):
        raise BaselineError(f"{path}: 'methods.{name}' must be a table ([methods.{name}]), got {table!r}.")
    values = _section(path, prefix, table, _METHOD_KEYS)
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for metric, bound in values.pop("metrics", {}).items():
        if not isinstance(bound, dict) or not bound:
            raise BaselineError(f"{path}: '{prefix}metrics.{metric}' must be a table like {{min = 0.1, max = 0.9}}.")
        b = _section(path, f"{prefix}metrics.{metric}.", bound, _BOUND_KEYS)
        bounds[metric] = (b.get("min"), b.get("max"))
    cases = {
        str(k): _typed(path, f"{prefix}reference_cases.{k}", v, float)
        for k, v in values.pop("reference_cases", {}).items()
    }
    seeds = tuple(_typed(path, f"{prefix}seed_dice", v, float) for v in values.pop("seed_dice", []))
    if "reference_dice" not in values and ("max_drop" in values or "noise_sd" in values):
        raise BaselineError(f"{path}: '{prefix}max_drop'/'noise_sd' need '{prefix}reference_dice' to drop from.")
    if values.get("floor_only") and "reference_dice" in values:
        raise BaselineError(f"{path}: '{prefix}floor_only' and '{prefix}reference_dice' exclude each other.")
    return MethodBaseline(method=name, bounds=bounds, reference_cases=cases, seed_dice=seeds, **values)


def load_baseline(path: Path, *, allow_no_methods: bool = False) -> Baseline:
    """Reads and checks a baseline TOML file (``allow_no_methods``: a [gate] table alone, as ``--update`` starts from).

    Raises:
        BaselineError: The file is missing, not TOML, or has an unknown, missing or mistyped key (named with the file).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file; write one with 'msbench gate --update'.") from None
    except tomllib.TOMLDecodeError as err:
        raise BaselineError(f"{path}: not valid TOML ({err}).") from None
    unknown = sorted(set(raw) - {"gate", "methods"})
    if unknown:
        raise BaselineError(f"{path}: unknown top-level key '{unknown[0]}'; a baseline has [gate] and [methods.*].")
    gate = _section(path, "gate.", raw.get("gate", {}), _GATE_KEYS)
    for key in ("dataset", "protocol", "budget"):
        if key not in gate:
            raise BaselineError(f"{path}: missing key 'gate.{key}' (the run identity every method is judged under).")
    if gate.pop("schema", BASELINE_SCHEMA) != BASELINE_SCHEMA:
        raise BaselineError(f"{path}: 'gate.schema' must be {BASELINE_SCHEMA} (this msbench's baseline schema).")
    if gate.get("drop_test", "noise") not in DROP_TESTS:
        raise BaselineError(
            f"{path}: 'gate.drop_test' must be one of {', '.join(DROP_TESTS)}, not {gate['drop_test']!r}."
        )
    methods = raw.get("methods", {})
    if not isinstance(methods, dict) or not (methods or allow_no_methods):
        raise BaselineError(f"{path}: no [methods.NAME] table; a baseline gates at least one method.")
    baseline = Baseline(path=path, methods={n: _method(path, n, t) for n, t in methods.items()}, **gate)
    if baseline.drop_test == "wilcoxon":
        for entry in baseline.methods.values():
            n = len(entry.reference_cases)  # patients <= cases: the run's patients are checked again when judged
            if entry.reference_dice is not None and min_p(n, two_sided=entry.two_sided) >= baseline.alpha:
                needed = min_patients(baseline.alpha, two_sided=entry.two_sided)
                raise BaselineError(
                    f"{path}: 'methods.{entry.method}.reference_cases' has {n} cases: a {_sides(entry)} Wilcoxon "
                    f"test on per-patient means cannot reach p < {baseline.alpha} with fewer than {needed} patients; "
                    "set 'gate.drop_test = \"noise\"' or gate on more patients."
                )
    return baseline


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
        from .store.index import profile_table  # type: ignore[attr-defined]
    except ImportError:
        return {}
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
    row = pinned.get(THRESHOLD_METHOD)
    if row is None:
        row = _pick_run(table, THRESHOLD_METHOD, *_ident(baseline))
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
    if fraction and name != THRESHOLD_METHOD:
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


def _sides(entry: MethodBaseline) -> str:
    return "two-sided" if entry.two_sided else "one-sided"


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
                     f"{over}: a {_sides(entry)} Wilcoxon test on per-patient means cannot reach p < "
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
