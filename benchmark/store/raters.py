"""Rows the runner derives once for the leaderboard: the human reference rows and each run's set-level scores.

An inter-rater run's folder holds ``raters.csv`` (one row per rater and scan: ``rater``, ``reference``, ``case``,
``patient`` and the metric suite's record) and ``raters_summary.csv`` (their Dice summary, the columns of
``summary.csv`` after ``rater``). Every run's folder holds ``scores.csv`` (``rater``, ``reference``, ``metric``,
``value``: the ISBI 2015 score and the volume correlation per reference over the seed-averaged cases; ``rater`` empty
for the run, else the rater's rows). The runner writes them when it refreshes the run; the index copies them into
``rater_case_metrics``, ``rater_summary`` and ``run_scores`` so that the leaderboard shows them and scores nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .files import read_table

RATER_CASES = "raters.csv"
RATER_SUMMARY = "raters_summary.csv"
RUN_SCORES = "scores.csv"
SCORE_COLUMNS = ("rater", "reference", "metric", "value")
RATER_TABLES = ("rater_case_metrics", "rater_summary", "run_scores")
#: Added to every index on open (``IF NOT EXISTS``): an index made before these tables gains them empty.
RATER_SCHEMA = """
CREATE TABLE IF NOT EXISTS rater_case_metrics (
    run_id TEXT, rater TEXT, "case" TEXT, patient TEXT, reference TEXT, metric TEXT, value REAL);
CREATE TABLE IF NOT EXISTS rater_summary (
    run_id TEXT, rater TEXT, seed TEXT, reference TEXT, metric TEXT, mean REAL, sd REAL, median REAL, ci_low REAL,
    ci_high REAL, n_valid REAL, n_cases REAL, n_patients REAL, n_both_empty REAL, seed_sd REAL, n_seeds REAL);
CREATE TABLE IF NOT EXISTS run_scores (run_id TEXT, rater TEXT, reference TEXT, metric TEXT, value REAL);
"""
RATER_IDS = ("rater", "reference", "case", "patient")
RATER_SUMMARY_COLUMNS = (
    "rater", "seed", "reference", "metric", "mean", "sd", "median", "ci_low", "ci_high", "n_valid", "n_cases",
    "n_patients", "n_both_empty", "seed_sd", "n_seeds",
)  # fmt: skip


def read_raters(run_root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A run folder's rater rows, their summary and its scores (empty frames for the files it lacks)."""
    return (
        read_table(run_root / RATER_CASES),
        read_table(run_root / RATER_SUMMARY, dtype={"seed": str}),
        read_table(run_root / RUN_SCORES, dtype={"rater": str}, keep_default_na=False, na_values={"value": [""]}),
    )
