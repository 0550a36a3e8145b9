"""The human reference rows of a run (each rater against the phantom's truth) as files of the run and index tables.

An inter-rater run's folder holds ``raters.csv`` (one row per rater and scan: ``rater``, ``reference``, ``case``,
``patient`` and the metric suite's record) and ``raters_summary.csv`` (their Dice summary, the columns of
``summary.csv`` after ``rater``). The runner writes both when it refreshes the run; the index copies them into
``rater_case_metrics`` and ``rater_summary`` so that the leaderboard shows the rows without reading a mask.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .files import read_table

RATER_CASES = "raters.csv"
RATER_SUMMARY = "raters_summary.csv"
RATER_TABLES = ("rater_case_metrics", "rater_summary")
#: Added to every index on open (``IF NOT EXISTS``): an index made before these tables gains them empty.
RATER_SCHEMA = """
CREATE TABLE IF NOT EXISTS rater_case_metrics (
    run_id TEXT, rater TEXT, "case" TEXT, patient TEXT, reference TEXT, metric TEXT, value REAL);
CREATE TABLE IF NOT EXISTS rater_summary (
    run_id TEXT, rater TEXT, seed TEXT, reference TEXT, metric TEXT, mean REAL, sd REAL, median REAL, ci_low REAL,
    ci_high REAL, n_valid REAL, n_cases REAL, n_patients REAL, n_both_empty REAL, seed_sd REAL, n_seeds REAL);
"""
RATER_IDS = ("rater", "reference", "case", "patient")
RATER_SUMMARY_COLUMNS = (
    "rater", "seed", "reference", "metric", "mean", "sd", "median", "ci_low", "ci_high", "n_valid", "n_cases",
    "n_patients", "n_both_empty", "seed_sd", "n_seeds",
)  # fmt: skip


def read_raters(run_root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run folder's rater rows and their summary (empty frames when the run has none)."""
    return read_table(run_root / RATER_CASES), read_table(run_root / RATER_SUMMARY, dtype={"seed": str})
