"""Run-level tables from the per-case rows of a run's finished folds: per-seed and over-seed summaries.

The summary has one block of rows per seed (``seed`` = "0", "1", ...) and one over all seeds (``seed`` = "all"):
there each case's values are averaged over the seeds first, so the patient bootstrap still resamples patients, and
``seed_sd`` is the spread of the per-seed means, ``n_seeds`` their count. Seeds are never pooled as if they were
more cases. Every block has the suite's summary per reference, the pooled-voxel Dice (labelled ``dice_pooled``)
and, where both ISBI raters exist, the ISBI 2015 challenge score normalised by rater 2 against rater 1.

Raters are scored against each other in one place, :func:`score_raters`: rater 2 against rater 1 for that
normalisation, and the human reference rows of an inter-rater run (:func:`human_reference`: its primary rater against
the phantom's truth, stored by the runner as ``raters.csv`` so that the leaderboard reads them and scores nothing).

A cross-dataset run (``msbench run --test-dataset B``) has per-case rows of two domains (column ``domain``): the fold's
test patients of the training data set (``in-domain``, summarised in ``summary.csv`` as for any run) and every scan of
B (``shifted``, summarised in ``summary_shifted.csv``); the board's Shift page
(:mod:`msbench.leaderboard.shift`) puts the two side by side with the drop.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from msbench.datasets import Case

from .metrics import MetricParams, evaluate_case, isbi_challenge_score, pooled_dice, summarize, volume_correlation
from .store import ALL_SEEDS

IN_DOMAIN, SHIFTED = "in-domain", "shifted"
SHIFTED_SUMMARY = "summary_shifted.csv"
RATERS = ("mask1", "mask2")
TRUTH = "truth"
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


def split_domains(cases: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The in-domain and the shifted per-case rows (rows without a ``domain`` column are in-domain)."""
    if "domain" not in cases.columns:
        return cases, cases.iloc[0:0]
    shifted = cases["domain"] == SHIFTED
    return cases[~shifted].reset_index(drop=True), cases[shifted].reset_index(drop=True)


def run_scores(cases: pd.DataFrame, rater: str = "") -> pd.DataFrame:
    """The set-level scores the leaderboard shows per reference, over the cases averaged over seeds (``scores.csv``).

    Per reference: ``isbi_score_raw`` (the ISBI 2015 score of one rater's reference), ``volume_r`` (Pearson's r of
    the predicted and reference volumes over the scans with a lesion) and ``volume_r_scans`` (those scans).

    Args:
        cases: Per-case rows (``reference``, ``case``, ``patient`` and the suite's record), any number of seeds.
        rater: Empty for a run's own rows, else the rater whose rows these are (the ``rater`` column).
    """
    if cases.empty or "vol_ref_ml" not in cases:
        return pd.DataFrame(columns=["rater", "reference", "metric", "value"])
    means = cases.groupby(["reference", "case", "patient"]).mean(numeric_only=True).reset_index()
    rows = []
    for reference, frame in means.groupby("reference", sort=True):
        scanned = frame[frame["vol_ref_ml"] > 0]
        scores = {
            "isbi_score_raw": isbi_challenge_score(frame, rater_col=None).raw,
            "volume_r": volume_correlation(scanned),
            "volume_r_scans": float(len(scanned)),
        }
        rows += [{"rater": rater, "reference": reference, "metric": k, "value": v} for k, v in scores.items()]
    return pd.DataFrame(rows)


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
    tested = set(scored["case"])
    inter = score_raters(sorted((c for c in scanned if c.case_id in tested), key=lambda c: c.case_id), *RATERS[::-1],
                         params)  # fmt: skip
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


def score_raters(
    scanned: Sequence[Case],
    rater: str,
    against: str,
    params: MetricParams,
    modalities: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One rater's masks scored against another reference, one row per scan (``case``, ``patient``, the suite's record).

    Args:
        scanned: The scans, in the order of the rows.
        rater: The mask scored (e.g. ``mask2``, ``mask1``).
        against: The reference it is scored against (``mask1``, ``truth``).
        params: Metric parameters of the run.
        modalities: Modalities whose brain mask is the scored domain (None: the whole volume, which changes only the
            domain-bound scores such as nDSC and specificity, none of the ISBI score's terms).
    """
    rows = []
    for case in scanned:
        domain = case.load_brain(tuple(modalities)) if modalities else None
        record = evaluate_case(
            case.load_mask(rater), case.load_mask(against), case.spacing_mm, params=params, domain=domain
        )
        rows.append({"case": case.case_id, "patient": case.patient_id, **record})
    return pd.DataFrame(rows)


def human_reference(
    cases: pd.DataFrame, references: Sequence[str], primary: str, scanned: Sequence[Case], params: MetricParams,
    modalities: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """An inter-rater run's human rows beside the methods: its primary rater scored against the truth.

    The run itself scores rater 2 against every reference; rater 1 against the phantom's truth is in no run, so it is
    scored here on the run's test scans, with the run's metric parameters and scored domain.

    Args:
        cases: The run's in-domain per-case rows (which scans were tested).
        references: The dataset's references (nothing is scored without ``truth``).
        primary: The run's primary reference, the rater scored.
        scanned: The dataset's cases.
        params: Metric parameters of the run.
        modalities: The run's modalities (the brain mask of the scored domain).

    Returns:
        The per-case rows (``rater``, ``reference``, ``case``, ``patient``, the suite's record) and their Dice summary
        (``rater``, ``reference``, ``seed`` "all", then the summary's columns); both empty where there is no truth.
    """
    if TRUTH not in references or primary not in references or primary == TRUTH or cases.empty:
        return pd.DataFrame(), pd.DataFrame()
    tested = set(cases["case"])
    rows = score_raters([c for c in scanned if c.case_id in tested], primary, TRUTH, params, modalities)
    if rows.empty:
        return pd.DataFrame(), pd.DataFrame()
    summary = summarize(rows, ["dice"]).assign(seed=ALL_SEEDS)
    ids = {"rater": primary, "reference": TRUTH}
    return rows.assign(**ids)[[*ids, *rows.columns]], summary.assign(**ids)[[*ids, *summary.columns]]
