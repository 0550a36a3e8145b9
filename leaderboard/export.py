"""Exports of the leaderboard: the main table as Markdown, CSV, LaTeX or HTML, and challengeR's long CSV."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .data import StoreData
from .display import formatter
from .table import COST_COLUMNS, main_table

FORMATS = ("md", "csv", "latex", "html", "challenger")
#: Per-case metrics of the challengeR export (challengeR ranks on one metric per task; pick one with its filter).
CHALLENGER_METRICS = ("dice", "hd95_mm", "assd_mm", "ltpr", "lfpr", "lesion_f1", "anima_f1")
_DROP = ("run_id",)


def run_label(method: str, modalities: str) -> str:
    """The name a run is shown under: its method and modality set (two threshold rows never look alike)."""
    return f"{method} [{modalities}]"


def challenger_table(data: StoreData, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """ChallengeR's long format, one row per (task, algorithm, case, metric): the ``methods`` rows only.

    ``task`` is ``dataset/protocol/reference/budget``, ``algorithm`` the method and modality set, ``case`` the
    scan, ``value`` the per-case metric (averaged over seeds). Read it in R with ``as.challenge(data,
    by="task", algorithm="algorithm", case="case", value="value", smallBetter=FALSE)`` after filtering one metric.
    """
    table = main_table(data) if table is None else table
    ranked = table[table["section"] == "methods"]
    wide = data.wide_cases()
    frames = []
    for _, row in ranked.iterrows():
        cases = wide[(wide["run_id"] == row["run_id"]) & (wide["reference"] == row["reference"])]
        metrics = [m for m in CHALLENGER_METRICS if m in cases]
        mean = cases.groupby("case")[metrics].mean().reset_index()
        long = mean.melt(id_vars="case", var_name="metric", value_name="value")
        long.insert(0, "algorithm", run_label(row["method"], row["modalities"]))
        long.insert(0, "task", "/".join(str(row[k]) for k in ("dataset", "protocol", "reference", "budget")))
        frames.append(long)
    columns = ["task", "algorithm", "case", "metric", "value"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns].sort_values(columns[:4]).reset_index(drop=True)


def _text(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None or value is pd.NA else str(value)


def markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""
    header = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_text(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def export(data: StoreData, fmt: str) -> str:
    """The leaderboard in one format (see ``FORMATS``).

    Raises:
        ValueError: ``fmt`` is not one of ``FORMATS``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}.")
    table = main_table(data)
    if fmt == "challenger":
        return challenger_table(data, table).to_csv(index=False)
    shown = table.drop(columns=list(_DROP))
    if fmt == "csv":
        return shown.to_csv(index=False)
    text = shown.apply(lambda column: column.map(formatter(str(column.name))))  # by unit, as the page prints them
    for column in COST_COLUMNS:  # profiled but not measured: a training peak of a method that trains nothing
        text.loc[shown[column].isna(), column] = "not measured"
        text.loc[shown[column].isna() & (shown["profile"] == ""), column] = "not profiled"
    if fmt == "md":
        return markdown(text)
    if fmt == "latex":
        return text.to_latex(index=False, escape=True, longtable=True)
    return text.to_html(index=False, border=0, classes="msbench-leaderboard")


def write_export(data: StoreData, fmt: str, out: Path | None) -> str:
    """Writes the export to ``out`` (or returns it when ``out`` is None); returns the text."""
    text = export(data, fmt)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return text
