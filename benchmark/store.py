"""The results store: one directory per run, files written atomically, an index the leaderboard reads.

Layout (``RESULTS`` is the user's ``--results`` folder)::

    RESULTS/index.csv                              one row per (run, reference): what the leaderboard lists
    RESULTS/runs/<run_id>/manifest.json            versioned manifest (see ``manifest.py``)
    RESULTS/runs/<run_id>/cases.csv                per case and reference: the full metric suite
    RESULTS/runs/<run_id>/lesions.csv              per lesion (reference and predicted)
    RESULTS/runs/<run_id>/summary.csv              per seed ("all": over seeds), reference and metric: mean, sd,
                                                   median, bootstrap CI, n, spread over seeds
    RESULTS/runs/<run_id>/folds/fold<k>-seed<s>/   status.json, fit.json, train_log.csv, predictions/, work/

A fold whose ``status.json`` says ``ok`` is complete and is reused when the same run is started again.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

STORE_SCHEMA_VERSION = 1


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary sibling path; renames it onto ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: Path, payload: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n")
    return path


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); the file is damaged, delete it to recompute.") from err


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (Path, tuple, set)):
        return str(value) if isinstance(value, Path) else list(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


class RunStore:
    """The files of one run."""

    def __init__(self, results: Path, run_id: str) -> None:
        self.results = Path(results)
        self.run_id = run_id
        self.root = self.results / "runs" / run_id

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def fold_dir(self, fold: int, seed: int) -> Path:
        return self.root / "folds" / f"fold{fold}-seed{seed}"

    def fold_status(self, fold: int, seed: int) -> dict[str, Any] | None:
        path = self.fold_dir(fold, seed) / "status.json"
        if not path.is_file():
            return None
        try:
            return read_json(path)
        except ValueError:
            return None

    def fold_complete(self, fold: int, seed: int) -> bool:
        status = self.fold_status(fold, seed)
        return bool(status and status.get("status") == "ok" and (self.fold_dir(fold, seed) / "cases.csv").is_file())

    def fold_tables(self, name: str) -> pd.DataFrame:
        """Concatenates one table (``cases.csv``, ``lesions.csv``) over the run's completed folds."""
        frames = []
        for path in sorted((self.root / "folds").glob(f"fold*-seed*/{name}")):
            status = self.fold_status(*_fold_seed(path.parent.name))
            if status and status.get("status") == "ok":
                frames.append(pd.read_csv(path))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _fold_seed(name: str) -> tuple[int, int]:
    fold, seed = name.removeprefix("fold").split("-seed")
    return int(fold), int(seed)


def rebuild_index(results: Path) -> pd.DataFrame:
    """Rebuilds ``index.csv`` from every run's manifest and summary (the leaderboard reads only this and the runs)."""
    rows = []
    for manifest_path in sorted((Path(results) / "runs").glob("*/manifest.json")):
        try:
            manifest = read_json(manifest_path)
        except ValueError:
            continue
        summary_path = manifest_path.parent / "summary.csv"
        summary = pd.read_csv(summary_path) if summary_path.is_file() else pd.DataFrame()
        base = {
            "run_id": manifest["run_id"],
            "method": manifest["method"],
            "dataset": manifest["dataset"],
            "protocol": manifest["protocol"],
            "budget": manifest["budget"],
            "modalities": "+".join(manifest["modalities"]),
            "leaks_timepoints": manifest["split"]["leaks_timepoints"],
            "status": manifest.get("status", "unknown"),
            "n_folds_ok": manifest.get("n_folds_ok", 0),
            "n_folds_failed": manifest.get("n_folds_failed", 0),
            "updated": manifest.get("updated", ""),
        }
        dice = summary[summary["metric"] == "dice"] if not summary.empty else summary
        if "seed" in dice:  # the rows over all seeds; per-seed rows stay in summary.csv
            dice = dice[dice["seed"].astype(str) == "all"]
        if dice.empty:
            rows.append({**base, "reference": manifest.get("reference", ""), "n_cases": 0})
            continue
        for _, row in dice.iterrows():
            rows.append(
                {
                    **base,
                    "reference": row["reference"],
                    "dice_mean": row["mean"],
                    "dice_sd": row["sd"],
                    "dice_median": row["median"],
                    "dice_ci_low": row["ci_low"],
                    "dice_ci_high": row["ci_high"],
                    "n_cases": row["n_cases"],
                    "n_patients": row.get("n_patients"),
                    "n_seeds": row.get("n_seeds", 1),
                    "dice_seed_sd": row.get("seed_sd"),
                }
            )
    index = pd.DataFrame(rows)
    write_csv(Path(results) / "index.csv", index)
    return index
