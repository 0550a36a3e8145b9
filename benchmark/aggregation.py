"""Run-level tables from the per-case rows of a run's finished folds: per-seed and over-seed summaries.

The summary has one block of rows per seed (``seed`` = "0", "1", ...) and one over all seeds (``seed`` = "all"):
there each case's values are averaged over the seeds first, so the patient bootstrap still resamples patients, and
``seed_sd`` is the spread of the per-seed means, ``n_seeds`` their count. Seeds are never pooled as if they were
more cases. Every block has the suite's summary per reference, the pooled-voxel Dice (labelled ``dice_pooled``)
and, where both ISBI raters exist, the ISBI 2015 challenge score normalised by rater 2 against rater 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from msbench.datasets import Case

from .metrics import MetricParams, evaluate_case, isbi_challenge_score, pooled_dice, summarize

ALL_SEEDS = "all"
RATERS = ("mask1", "mask2")
_ID_COLUMNS = ("method", "fold", "case", "patient", "timepoint", "reference")


def summarize_run(
    cases: pd.DataFrame, references: Sequence[str], scanned: Sequence[Case], params: MetricParams
) -> pd.DataFrame:
    """The run's ``summary.csv``: per seed, then over all seeds.

    Args:
        cases: Per-case rows of every finished fold and seed (``seed``, ``patient``, ``reference`` and the metrics).
        references: The dataset's references (the challenge score needs both ISBI raters).
        scanned: The dataset's cases, to score rater 2 against rater 1 on the same scans.
        params: Metric parameters of the run.
    """
    blocks = [
        _block(frame, references, scanned, params).assign(seed=str(seed))
        for seed, frame in cases.groupby("seed", sort=True)
    ]
    blocks.append(_over_seeds(cases, blocks, references, scanned, params))
    summary = pd.concat(blocks, ignore_index=True)
    summary.insert(1, "seed", summary.pop("seed"))
    return summary


def primary_dice(summary: pd.DataFrame, reference: str) -> float | None:
    """Mean Dice over all seeds against ``reference`` (None when the run has no such row)."""
    rows = summary[(summary["reference"] == reference) & (summary["metric"] == "dice") & (summary["seed"] == ALL_SEEDS)]
    return float(rows["mean"].iloc[0]) if not rows.empty else None


def _block(
    cases: pd.DataFrame, references: Sequence[str], scanned: Sequence[Case], params: MetricParams
) -> pd.DataFrame:
    summary = summarize(cases, patient_col="patient", group_cols=("reference",))
    return pd.concat(
        [summary, _pooled_rows(cases), _challenge_rows(cases, references, scanned, params)], ignore_index=True
    )


def _over_seeds(
    cases: pd.DataFrame,
    blocks: list[pd.DataFrame],
    references: Sequence[str],
    scanned: Sequence[Case],
    params: MetricParams,
) -> pd.DataFrame:
    numeric = [c for c in cases.columns if c not in _ID_COLUMNS and pd.api.types.is_numeric_dtype(cases[c])]
    averaged = cases.groupby(list(_ID_COLUMNS), sort=True, dropna=False)[numeric].mean().reset_index()
    block = _block(averaged.drop(columns="seed"), references, scanned, params).assign(seed=ALL_SEEDS)
    means = pd.concat(blocks, ignore_index=True).pivot_table(
        index=["reference", "metric"], columns="seed", values="mean", dropna=False
    )
    spread = pd.DataFrame({"seed_sd": means.std(axis=1, ddof=1), "n_seeds": means.notna().sum(axis=1)}).reset_index()
    return block.merge(spread, on=["reference", "metric"], how="left")


def _pooled_rows(cases: pd.DataFrame) -> pd.DataFrame:
    pooled = pooled_dice(cases, group_cols=("reference",))
    return pooled.rename(columns={"dice_pooled": "mean"}).assign(metric="dice_pooled")


def _challenge_rows(
    cases: pd.DataFrame, references: Sequence[str], scanned: Sequence[Case], params: MetricParams
) -> pd.DataFrame:
    """ISBI 2015 challenge score over both raters, normalised by rater 2 vs rater 1 on the same scans."""
    if not set(RATERS) <= set(references):
        return pd.DataFrame()
    scored = cases[cases["reference"].isin(RATERS)]
    by_id = {c.case_id: c for c in scanned}
    inter = pd.DataFrame(
        [
            {
                "case": cid,
                **evaluate_case(
                    by_id[cid].load_mask("mask2"), by_id[cid].load_mask("mask1"), by_id[cid].spacing_mm, params=params
                ),
            }
            for cid in sorted(set(scored["case"]))
        ]
    )
    inter_raw = isbi_challenge_score(inter, rater_col=None).raw
    score = isbi_challenge_score(scored, inter_rater_raw=inter_raw)
    n = score.n_valid
    both = "+".join(RATERS)
    return pd.DataFrame(
        [
            {"reference": both, "metric": "isbi_score_raw", "mean": score.raw, "n_valid": n},
            {"reference": both, "metric": "isbi_score_normalised", "mean": score.normalised, "n_valid": n},
            {"reference": "mask1", "metric": "isbi_score_inter_rater_raw", "mean": inter_raw, "n_valid": len(inter)},
        ]
    )
