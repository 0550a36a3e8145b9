"""The main table: one row per (run, reference), split into the compared methods and the rows shown apart.

Sections (``section`` column): ``methods`` (finished runs on a patient-level protocol: ranked by mean Dice where
their test patients can support a ranking, see :func:`msbench.benchmark.statistics.can_rank`, else ordered by mean
Dice and not numbered), ``human reference`` (the
inter-rater row: the second rater scored against the reference), ``leaking protocol`` (splits that put time points
of one patient on both sides, e.g. ``rondinella2023``: never ranked with the rest), ``failed or partial`` (a run
with a failed job or no scored case: shown with its error, never ranked).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pandas as pd

from msbench.benchmark.metrics.specs import RATER_AGREEMENT_SCORE, SUITE_VERSION
from msbench.benchmark.statistics import can_rank, not_ranked_reason

from .data import StoreData

HUMAN_METHODS = ("inter-rater",)
SECTIONS = ("methods", "human reference", "leaking protocol", "failed or partial")
GROUP = ("dataset", "protocol", "reference", "budget")
#: Per-case metrics averaged into the table (mean over the run's scored cases, NaN-aware): column -> metric key.
CASE_MEANS = {
    "HD95 mm": "hd95_mm",
    "ASSD mm": "assd_mm",
    "LTPR": "ltpr",
    "LFPR": "lfpr",
    "lesion F1 (ISBI)": "lesion_f1",
    "lesion F1 (ANIMA)": "anima_f1",
}
#: Cost columns from the profiles table: numbers, NaN where the run was not profiled (or, for the training peak, where
#: the profile measured no training: a training-free method, or one that trains in a worker process).
COST_COLUMNS = ("parameters", "GFLOPs", "train peak GiB", "inference peak GiB", "volumes/hour")
#: Which profile the cost columns come from: repeatable ones (``msbench profile``) are preferred over job-time ones.
COLUMNS = (
    "rank", "method", "modalities", "dataset", "protocol", "reference", "budget", "cases", "patients", "mean Dice",
    "Dice 95% CI", "median Dice", *CASE_MEANS, "ISBI score", "ISBI score (normalised)", "volume r", "volume r scans",
    *COST_COLUMNS, "profile", "tuning", "paper Dice", "paper data", "measured (paper's metric)",
    "stale", "status", "ranking", "section", "run_id",
)  # fmt: skip
#: Scores built on the volume correlation over the run's scans: shown with that n ("volume r scans"), never ordered by.
CORRELATION_COLUMNS = ("ISBI score", "ISBI score (normalised)", "volume r")


def ci_text(low: Any, high: Any, n_patients: Any) -> str:
    """The bootstrap CI as text; one tested patient has no interval ("n = 1"), never a zero-width one."""
    if pd.notna(n_patients) and int(n_patients) < 2:
        return f"n = {int(n_patients)}"
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return "-"
    return f"[{float(low):.3f}, {float(high):.3f}]"


def section_of(row: pd.Series) -> str:
    """Which part of the page a run's row belongs to (see the module's docstring)."""
    if row["status"] != "ok" or (row.get("n_jobs_failed") or 0) > 0 or not row.get("n_cases"):
        return "failed or partial"
    if bool(row["leaks_timepoints"]):
        return "leaking protocol"
    if row["method"] in HUMAN_METHODS:
        return "human reference"
    return "methods"


def main_table(data: StoreData) -> pd.DataFrame:
    """Every (run, reference) row with its metrics, cost, tuning, the paper's claim, stale flag and section.

    Ranks (1 = best mean Dice) are given inside each (dataset, protocol, reference, budget) to the ``methods`` rows
    only, and only where their test patients can support a ranking (``ranking`` says which, or why not).
    """
    if data.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    runs = data.runs.copy()
    per_case = per_case_means(data)
    scores = stored_scores(data)
    rows = []
    for _, run in runs.iterrows():
        manifest = data.manifests.get(run["run_id"], {})
        cases = per_case.get((run["run_id"], run["reference"]), _EMPTY)
        row = {
            "method": run["method"],
            "modalities": run["modalities"],
            **{k: run[k] for k in ("dataset", "protocol", "reference", "budget", "status", "run_id")},
            "cases": int(run["n_cases"] or 0),
            "patients": None if pd.isna(run["n_patients"]) else int(run["n_patients"]),
            "mean Dice": run["dice_mean"],
            "Dice 95% CI": ci_text(run["dice_ci_low"], run["dice_ci_high"], run["n_patients"]),
            "median Dice": run["dice_median"],
            **{col: _mean(cases, key) for col, key in CASE_MEANS.items()},
            **_volume_columns(scores, run["run_id"], run["reference"]),
            "tuning": tuning_text(manifest),
            "stale": stale_text(data, run["run_id"], run["method"]),
            "section": section_of(run),
            **_cost(data, run["run_id"], run["method"], run["budget"]),
            **_claim(manifest, cases, run["protocol"]),
        }
        rows.append(row)
    rows += _rater_rows(data, per_case, scores)
    table = pd.DataFrame(rows)
    table[["ISBI score", "ISBI score (normalised)"]] = [_isbi(table, per_case, scores, r) for _, r in table.iterrows()]
    table["rank"], table["ranking"] = pd.Series(pd.NA, index=table.index, dtype="Int64"), ""
    methods = table["section"] == "methods"
    for _, group in table[methods].groupby(list(GROUP)):
        n = group_patients(group)
        if can_rank(n):
            table.loc[group.index, "rank"] = group["mean Dice"].rank(ascending=False, method="min").astype("Int64")
            table.loc[group.index, "ranking"] = f"ranked by mean Dice ({n} test patients)"
        else:
            table.loc[group.index, "ranking"] = f"not ranked: {n} test patient{'' if n == 1 else 's'}"
    order = {s: i for i, s in enumerate(SECTIONS)}
    table["_section"] = table["section"].map(order)
    table = table.sort_values(["_section", *GROUP, "mean Dice"], ascending=[True, True, True, True, True, False])
    return table[list(COLUMNS)].reset_index(drop=True)


def group_patients(rows: pd.DataFrame) -> int:
    """Test patients a paired test between rows of one group can use: the fewest any row was tested on."""
    patients = pd.to_numeric(rows["patients"], errors="coerce").dropna()
    return int(patients.min()) if not patients.empty else 0


def not_ranked_reasons(rows: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """(dataset, protocol, reference, budget) -> why its ``methods`` rows are not numbered (groups that are: absent)."""
    reasons = {}
    for key, group in rows[rows["section"] == "methods"].groupby(list(GROUP)):
        reason = not_ranked_reason(group_patients(group))
        if reason is not None:
            reasons[tuple(str(k) for k in key)] = reason
    return reasons


def rater_run_id(run_id: str, rater: str) -> str:
    """The id a rater's rows are shown under (never a real run id: it holds ``::``)."""
    return f"{run_id}::{rater}"


def _rater_rows(
    data: StoreData, per_case: dict[tuple[str, str], pd.DataFrame], scores: dict[tuple[str, str], dict[str, float]]
) -> list[dict[str, Any]]:
    """Human reference rows of each rater against the truth, as the runner stored them (finished inter-rater runs).

    Adds each row's cases to ``per_case``.
    """
    cases, summary = data.table("rater_case_metrics"), data.table("rater_summary")
    if cases.empty or summary.empty:
        return []
    dice = summary[summary["metric"] == "dice"]
    wide = cases.pivot_table(
        index=["run_id", "rater", "reference", "case", "patient"], columns="metric", values="value", aggfunc="first",
        dropna=False,
    ).reset_index()  # fmt: skip
    wide.columns.name = None
    rows = []
    for (run_id, rater, reference), frame in wide.groupby(["run_id", "rater", "reference"], sort=True):
        manifest = data.manifests.get(run_id, {})
        found = dice[(dice["run_id"] == run_id) & (dice["rater"] == rater) & (dice["reference"] == reference)]
        if manifest.get("method") not in HUMAN_METHODS or manifest.get("status") != "ok" or found.empty:
            continue
        one = found.iloc[0]
        pseudo = rater_run_id(run_id, rater)
        rater_cases = frame.drop(columns=["run_id", "rater", "reference"]).reset_index(drop=True)
        per_case[(pseudo, reference)] = rater_cases
        rows.append(
            {
                "method": f"rater {rater}",
                "modalities": "+".join(manifest.get("modalities") or []),
                **{k: manifest[k] for k in ("dataset", "protocol", "budget")},
                "reference": reference,
                "status": "ok",
                "run_id": pseudo,
                "cases": int(one["n_cases"]),
                "patients": int(one["n_patients"]),
                "mean Dice": float(one["mean"]),
                "Dice 95% CI": ci_text(one["ci_low"], one["ci_high"], one["n_patients"]),
                "median Dice": float(one["median"]),
                **{col: _mean(rater_cases, key) for col, key in CASE_MEANS.items()},
                **_volume_columns(scores, pseudo, reference),
                "tuning": "untuned",
                "stale": stale_text(data, run_id, manifest["method"]),
                "section": "human reference",
                **dict.fromkeys(COST_COLUMNS, math.nan),
                "profile": "",
                **_claim({}, rater_cases),
            }
        )
    return rows


def filter_table(table: pd.DataFrame, **choices: list[str] | None) -> pd.DataFrame:
    """Rows whose column values lie in the chosen lists (``dataset=[...]``, ``protocol=[...]``, ...; None: all)."""
    keep = pd.Series(True, index=table.index)
    for column, values in choices.items():
        if values is not None:
            keep &= table[column].isin(values)
    return table[keep].reset_index(drop=True)


_EMPTY = pd.DataFrame()


def per_case_means(data: StoreData) -> dict[tuple[str, str], pd.DataFrame]:
    """(run id, reference) -> the run's scored cases, averaged over seeds: one row per case, one column per metric."""
    wide = data.wide_cases()
    if wide.empty:
        return {}
    means = wide.drop(columns=["job_id"]).groupby(["run_id", "reference", "case", "patient"]).mean(numeric_only=True)
    means = means.reset_index()
    return {key: frame.drop(columns=["run_id", "reference"]) for key, frame in means.groupby(["run_id", "reference"])}


def _mean(cases: pd.DataFrame, key: str) -> float:
    if cases.empty or key not in cases:
        return math.nan
    values = cases[key].astype(float)
    return float(values.mean()) if values.notna().any() else math.nan


def stored_scores(data: StoreData) -> dict[tuple[str, str], dict[str, float]]:
    """(shown run id, reference) -> the set-level scores the runner stored (``scores.csv``: ISBI raw, volume r)."""
    scores: dict[tuple[str, str], dict[str, float]] = {}
    table = data.table("run_scores")
    for run_id, rater, reference, metric, value in table.reindex(columns=_SCORE_IDS).itertuples(index=False):
        shown = rater_run_id(run_id, rater) if isinstance(rater, str) and rater else run_id
        scores.setdefault((shown, reference), {})[metric] = _float(value)
    return scores


_SCORE_IDS = ["run_id", "rater", "reference", "metric", "value"]


def _volume_columns(scores: dict[tuple[str, str], dict[str, float]], run_id: str, reference: str) -> dict[str, float]:
    """The volume correlation and the scans it (and the ISBI score's correlation term) is over; NaN when not stored."""
    stored = scores.get((run_id, reference), {})
    return {"volume r": stored.get("volume_r", math.nan), "volume r scans": stored.get("volume_r_scans", math.nan)}


def _isbi(
    table: pd.DataFrame,
    per_case: dict[tuple[str, str], pd.DataFrame],
    scores: dict[tuple[str, str], dict[str, float]],
    row: pd.Series,
) -> tuple[float, float]:
    """The stored ISBI 2015 score on this reference, and normalised against the inter-rater row on the same cases.

    The inter-rater run's stored score is over its own cases: it normalises a run tested on the same cases only.
    """
    cases = per_case.get((row["run_id"], row["reference"]), _EMPTY)
    if cases.empty:
        return math.nan, math.nan
    raw = scores.get((row["run_id"], row["reference"]), {}).get("isbi_score_raw", math.nan)
    if row["reference"] == "truth":  # the normalisation is against the raters' agreement, not a rater vs the truth
        return raw, math.nan
    same = (table["method"].isin(HUMAN_METHODS)) & (table["status"] == "ok")
    for key in ("dataset", "protocol", "reference"):
        same &= table[key] == row[key]
    for run_id in table.loc[same, "run_id"]:
        human = per_case.get((run_id, row["reference"]), _EMPTY)
        if not human.empty and set(human["case"]) == set(cases["case"]):
            inter = scores.get((run_id, row["reference"]), {}).get("isbi_score_raw", math.nan)
            return raw, RATER_AGREEMENT_SCORE * raw / inter if inter > 0 else math.nan
    return raw, math.nan


def tuning_text(manifest: dict[str, Any]) -> str:
    """The tuning budget of a run from its manifest's ``tuning`` key; "untuned" when absent or null."""
    tuning = manifest.get("tuning")
    if not tuning:
        return "untuned"
    budget = tuning.get("n_trials_budget")
    return f"{budget} trials (study {tuning.get('study')}, trial {tuning.get('trial')})"


def stale_text(data: StoreData, run_id: str, method: str) -> str:
    """Why the run is stale (jobs the index marks stale, or another metric suite); empty when it is not.

    Whether the method's code changed since is a question about the code, not the store: ``msbench store check``
    answers it (the board reads only the store and the metric specs).
    """
    jobs = data.jobs[data.jobs["run_id"] == run_id]
    reasons = []
    if jobs["stale"].fillna(0).astype(bool).any():
        reasons.append("jobs kept from other code")
    suites = set(jobs["suite_version"].dropna()) - {SUITE_VERSION}
    if suites:
        reasons.append(f"metric suite {', '.join(sorted(suites))} (now {SUITE_VERSION})")
    return "; ".join(reasons)


def profile_kind(profile: pd.Series) -> str:
    """Which kind a profiles row is: "repeatable (msbench profile, warmed, N repeats)" or "job-time (...)".

    A job's own profile (it has a ``job_id``) is timed once, cold, under whatever load the machine had; ``msbench
    profile`` warms up and repeats (its settings are in the record).
    """
    job_id = profile.get("job_id")
    if isinstance(job_id, str) and job_id:
        return "job-time (single un-warmed timing)"
    repeats = (_record(profile).get("settings") or {}).get("repeats")
    return f"repeatable (msbench profile, warmed, {repeats if repeats else '?'} repeats)"


def _record(profile: pd.Series) -> dict[str, Any]:
    try:
        record = json.loads(profile.get("record") or "{}")
    except (TypeError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _cost(data: StoreData, run_id: str, method: str, budget: str = "") -> dict[str, Any]:
    """Parameters, FLOPs, peak memory and throughput from one profile of the run's method; NaN where not profiled.

    The newest repeatable profile of the method at the run's budget (``msbench profile``) is used when there is one,
    else the run's own
    job-time profile; ``profile`` names which. The columns stay numeric, so the table sorts by them; the text
    exports write NaN as "not profiled".
    """
    profiles = data.table("profiles")
    none = {**dict.fromkeys(COST_COLUMNS, math.nan), "profile": ""}
    if profiles.empty or "method" not in profiles:
        return none
    job_ids = profiles["job_id"] if "job_id" in profiles else pd.Series(None, index=profiles.index)
    repeatable = profiles[(profiles["method"] == method) & job_ids.isna()]
    if budget and "record" in repeatable:
        repeatable = repeatable[[_record(r).get("budget", budget) == budget for _, r in repeatable.iterrows()]]
    mine = profiles[profiles["run_id"] == run_id] if "run_id" in profiles else profiles.iloc[0:0]
    chosen = repeatable if not repeatable.empty else mine
    if chosen.empty:
        return none
    best = chosen.sort_values("created").iloc[-1] if "created" in chosen else chosen.iloc[-1]
    return {
        "parameters": _float(best.get("params_total")),
        "GFLOPs": _float(best.get("flops_forward")) / 1e9,
        "train peak GiB": _float(best.get("peak_train_bytes")) / 2**30,
        "inference peak GiB": _float(best.get("peak_infer_bytes")) / 2**30,
        "volumes/hour": _float(best.get("volumes_per_hour")),
        "profile": profile_kind(best),
    }


def _float(value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _claim(manifest: Mapping[str, Any], cases: pd.DataFrame, protocol: str = "") -> dict[str, Any]:
    """The paper's claimed Dice, as the run's manifest recorded it from the method card, with msbench's number beside.

    Of several Dice claims, the first whose split names the run's protocol is shown, else the card's first one. A run
    planned before manifests recorded claims shows none (``msbench run`` again plans a new manifest only for a new
    run id: such runs keep an empty column).
    """
    empty = {"paper Dice": math.nan, "paper data": "", "measured (paper's metric)": math.nan}
    claims = [SimpleNamespace(**c) for c in manifest.get("claims") or [] if c.get("metric") == "dice"]
    if not claims:
        return empty
    claim = next((c for c in claims if protocol and c.split.startswith(protocol)), claims[0])
    notes = [claim.split, f"unit: {claim.unit}"]
    if claim.private_data:
        notes.append("private data: shown, never ranked")
    if not claim.comparable:
        notes.append(f"not like-for-like with {claim.msbench_metric}")
    if len(claims) > 1:
        notes.append(f"{len(claims) - 1} more Dice claims on the card")
    return {
        "paper Dice": claim.value,
        "paper data": f"{claim.dataset} ({'; '.join(n for n in notes if n)})",
        "measured (paper's metric)": _mean(cases, claim.msbench_metric),
    }
