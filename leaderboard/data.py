"""The leaderboard's data layer: reads the results store with pandas alone (no torch, no streamlit)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = (
    "method",
    "dataset",
    "protocol",
    "budget",
    "modalities",
    "reference",
    "dice_mean",
    "dice_ci_low",
    "dice_ci_high",
    "dice_ci",
    "n_patients",
    "n_seeds",
    "dice_seed_sd",
    "n_cases",
    "status",
    "leaks_timepoints",
    "run_id",
)


def load_index(results: Path) -> pd.DataFrame:
    """One row per run and reference from the store's SQLite index, rebuilt from the run files when missing.

    Raises:
        FileNotFoundError: ``results`` holds no msbench results.
        ValueError: The folder was written by an older store, or its index by another schema (says what to do).
    """
    from msbench.benchmark.store import INDEX_NAME, reindex, run_table

    results = Path(results)
    if not (results / INDEX_NAME).is_file():
        if not (results / "runs").is_dir():
            raise FileNotFoundError(f"{results} holds no msbench results (no {INDEX_NAME}, no runs/).")
        reindex(results)
    return run_table(results)


def leaderboard_table(index: pd.DataFrame, reference: str | None = "mask1") -> pd.DataFrame:
    """Ranked rows for one reference: best mean Dice first inside each (dataset, protocol, budget)."""
    table = index.copy()
    if reference is not None and "reference" in table:
        table = table[table["reference"] == reference]
    for column in COLUMNS:
        if column not in table:
            table[column] = pd.NA
    table["dice_ci"] = [
        _ci_text(lo, hi, n)
        for lo, hi, n in zip(table["dice_ci_low"], table["dice_ci_high"], table["n_patients"], strict=True)
    ]
    table = table.sort_values(["dataset", "protocol", "budget", "dice_mean"], ascending=[True, True, True, False])
    return table[list(COLUMNS)].reset_index(drop=True)


def _ci_text(low: float, high: float, n_patients: float) -> str:
    """The bootstrap CI as text; one tested patient has no interval ("n = 1"), never a zero-width one."""
    if pd.notna(n_patients) and int(n_patients) < 2:
        return f"n = {int(n_patients)}"
    if pd.isna(low) or pd.isna(high):
        return "-"
    return f"[{low:.3f}, {high:.3f}]"
