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
    "n_cases",
    "status",
    "leaks_timepoints",
    "run_id",
)


def load_index(results: Path) -> pd.DataFrame:
    """The store's index (one row per run and reference), rebuilt from the runs when missing."""
    results = Path(results)
    path = results / "index.csv"
    if not path.is_file():
        if not (results / "runs").is_dir():
            raise FileNotFoundError(f"{results} holds no msbench results (no index.csv, no runs/).")
        from msbench.benchmark.store import rebuild_index

        return rebuild_index(results)
    return pd.read_csv(path)


def leaderboard_table(index: pd.DataFrame, reference: str | None = "mask1") -> pd.DataFrame:
    """Ranked rows for one reference: best mean Dice first inside each (dataset, protocol, budget)."""
    table = index.copy()
    if reference is not None and "reference" in table:
        table = table[table["reference"] == reference]
    for column in COLUMNS:
        if column not in table:
            table[column] = pd.NA
    table = table.sort_values(["dataset", "protocol", "budget", "dice_mean"], ascending=[True, True, True, False])
    return table[list(COLUMNS)].reset_index(drop=True)
