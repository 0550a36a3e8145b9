"""The Shift page's table: a cross-dataset run's stored in-domain and shifted summaries side by side, with the drop.

Nothing is scored here: both summaries are read from the store's index as the runner wrote them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from msbench.benchmark.store import ALL_SEEDS, shift_inputs

SHIFT_METRICS = ("dice", "ndsc", "lesion_f1", "hd95_mm")


def domain_shift(
    in_domain: pd.DataFrame,
    shifted: pd.DataFrame,
    in_reference: str,
    shifted_reference: str,
    metrics: Sequence[str] = SHIFT_METRICS,
) -> pd.DataFrame:
    """In-domain and shifted summaries side by side, with the drop, over all seeds.

    Args:
        in_domain: The run's ``summary.csv`` (the training data set's test patients).
        shifted: Its ``summary_shifted.csv`` (every scan of the test data set).
        in_reference: The training data set's primary reference (e.g. ``truth`` for synth-ms).
        shifted_reference: The test data set's primary reference (e.g. ``consensus`` for 3D-MR-MS).
        metrics: The metrics to show (those present in both).

    Returns:
        One row per metric: ``metric``, ``in_domain`` (mean), ``in_domain_ci_low``/``_ci_high``, ``n_in_domain``
        (patients), ``shifted``, ``shifted_ci_low``/``_ci_high``, ``n_shifted``, ``drop`` (in-domain minus shifted;
        for a distance such as ``hd95_mm`` a negative drop is the loss) and ``relative_drop`` (drop / in-domain).
    """
    columns = ["mean", "ci_low", "ci_high", "n_patients"]

    def pick(summary: pd.DataFrame, reference: str, prefix: str) -> pd.DataFrame:
        if summary.empty:
            return pd.DataFrame(columns=["metric", *(f"{prefix}{c}" for c in columns)])
        rows = summary[(summary["seed"].astype(str) == ALL_SEEDS) & (summary["reference"] == reference)]
        rows = rows[rows["metric"].isin(metrics)].reindex(columns=["metric", *columns])
        return rows.rename(columns={c: f"{prefix}{c}" for c in columns})

    table = pick(in_domain, in_reference, "in_").merge(pick(shifted, shifted_reference, "sh_"), on="metric")
    out = pd.DataFrame(
        {
            "metric": table["metric"],
            "in_domain": table["in_mean"].astype(float),
            "in_domain_ci_low": table["in_ci_low"],
            "in_domain_ci_high": table["in_ci_high"],
            "n_in_domain": table["in_n_patients"],
            "shifted": table["sh_mean"].astype(float),
            "shifted_ci_low": table["sh_ci_low"],
            "shifted_ci_high": table["sh_ci_high"],
            "n_shifted": table["sh_n_patients"],
        }
    )
    out["drop"] = out["in_domain"] - out["shifted"]
    out["relative_drop"] = out["drop"] / out["in_domain"].where(out["in_domain"] != 0)
    order = {m: i for i, m in enumerate(metrics)}
    return out.sort_values("metric", key=lambda s: s.map(order)).reset_index(drop=True)


def shift_table(results: Path) -> pd.DataFrame:
    """In-domain and shifted results side by side, one row per (cross-dataset run, metric): what the leaderboard draws.

    Columns: ``run_id``, ``method``, ``dataset`` (trained and selected on), ``protocol``, ``budget``,
    ``test_dataset``, ``test_protocol`` (``all-scans``), ``reference`` and ``test_reference`` (each data set's
    primary), then :func:`domain_shift`'s columns (``metric``, ``in_domain``, ``shifted``, ``drop``,
    ``relative_drop``, CIs and patient counts), from the store's index. Empty when no run has a test data set.
    """
    manifests, summary, shifted = shift_inputs(results)
    tables = []
    for manifest in manifests:
        run_id, test = manifest["run_id"], manifest["test_dataset"]
        table = domain_shift(
            summary[summary["run_id"] == run_id],
            shifted[shifted["run_id"] == run_id],
            manifest.get("reference", ""),
            test["reference"],
        )
        ids = {
            "run_id": run_id,
            "method": manifest["method"],
            "dataset": manifest["dataset"],
            "protocol": manifest["protocol"],
            "budget": manifest["budget"],
            "test_dataset": test["dataset"],
            "test_protocol": test["protocol"],
            "reference": manifest.get("reference", ""),
            "test_reference": test["reference"],
        }
        tables.append(table.assign(**ids)[[*ids, *table.columns]])
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
