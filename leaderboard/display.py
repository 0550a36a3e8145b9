"""How the pages print numbers: each column by its unit, a missing value as "—", the main table's column groups.

Pure pandas (a ``Styler``): the grid keeps the numbers, so its columns still sort by value, and shows the text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from .table import CASE_MEANS, CORRELATION_COLUMNS, COST_COLUMNS

MISSING = "—"
#: Fixed-point decimals by unit: Dice-type ratios 3, millimetres 1, millilitres 2, GiB 2, the raw ISBI score 3.
DECIMALS = {
    **dict.fromkeys(
        (
            "mean Dice",
            "median Dice",
            "LTPR",
            "LFPR",
            "lesion F1 (ISBI)",
            "lesion F1 (ANIMA)",
            "paper Dice",
            "measured (paper's metric)",
            "Dice",
            "detected",
            "in_domain",
            "shifted",
            "drop",
        ),
        3,
    ),  # fmt: skip
    "HD95 mm": 1,
    "ASSD mm": 1,
    "GFLOPs": 1,
    "relative_drop": 3,
}
INTEGERS = ("rank", "cases", "patients", "parameters", "lesions", "volume r scans", "n_in_domain", "n_shifted")
#: Noisy timings: three significant figures (704,626 volumes/h is "705,000"), never a false precision.
SIGNIFICANT = ("volumes/hour",)
#: Memory peaks span MiB to tens of GiB: three significant figures (a 3 MiB peak is 0.00276 GiB, not "0.00").
SIGNIFICANT_SMALL = ("train peak GiB", "inference peak GiB")
#: Column groups of the main table, picked in the page: Dice always shown, the others on demand.
GROUPS = {
    "Dice": ("rank", "method", "modalities", "protocol", "budget", "cases", "patients", "mean Dice", "Dice 95% CI",
             "median Dice"),
    "distances and lesions": tuple(CASE_MEANS),
    "challenge scores (correlation-based)": CORRELATION_COLUMNS,
    "cost": (*COST_COLUMNS, "profile"),
    "tuning, paper, provenance": ("tuning", "paper Dice", "paper data", "measured (paper's metric)", "stale",
                                  "status"),
}  # fmt: skip
DEFAULT_GROUPS = ("Dice", "distances and lesions")


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def format_value(column: str, value: Any) -> str:
    """``value`` as the pages print it in ``column`` (see ``DECIMALS``, ``INTEGERS`` and the ``SIGNIFICANT`` sets)."""
    if _missing(value):
        return MISSING
    if isinstance(value, str):
        return value  # an empty text says "none" in its own column (no stale reason, no profile)
    if column in INTEGERS:
        return f"{int(round(float(value))):,}"
    if column in SIGNIFICANT:
        return f"{float(f'{float(value):.3g}'):,.0f}"
    if column in SIGNIFICANT_SMALL:
        return f"{float(value):.3g}"
    if column in DECIMALS:
        return f"{float(value):.{DECIMALS[column]}f}"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def formatter(column: str) -> Callable[[Any], str]:
    return lambda value: format_value(column, value)


def with_scans(table: pd.DataFrame) -> pd.DataFrame:
    """The correlation-based columns as text carrying their n ("0.41 (4 scans)"): read, never sorted or ranked by."""
    out = table.copy()
    if "volume r scans" not in out:
        return out
    scans = out["volume r scans"]
    for column in (c for c in CORRELATION_COLUMNS if c in out):
        decimals = 1 if column == "ISBI score (normalised)" else 2
        out[column] = [
            MISSING if _missing(v) else f"{float(v):.{decimals}f} ({format_value('volume r scans', n)} scans)"
            for v, n in zip(out[column], scans, strict=True)
        ]
    return out.drop(columns=["volume r scans"])


def styled(frame: pd.DataFrame) -> Any:
    """A ``Styler`` printing every column by its unit and missing values as "—" (the numbers stay sortable)."""
    return frame.style.format({c: formatter(str(c)) for c in frame.columns})


def row_height_px(rows: int) -> int:
    """A grid height that shows every row (Streamlit's rows are 35 px, plus the header and border)."""
    return 35 * (rows + 1) + 3
