"""The leaderboard's data layer: reads a results store with pandas and sqlite3 (no torch, no streamlit, no numba).

Everything the pages show comes from :func:`load_store`: the index's tables (runs, jobs, per-case metrics, lesions,
curves, the human reference rows), the optional tables other commands add (``profiles`` from profiling,
``studies``/``trials`` from tuning) and each run's manifest. It never writes the store and reads no job folder: a
missing or damaged index is refused with a :class:`StoreError` naming ``msbench store reindex``, an index that lacks
a run or a job the manifests name likewise, and run files changed after the index was built are listed in
``StoreData.behind`` (the page's banner). Checking every job file against the index is ``msbench store check``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from msbench.benchmark.store import INDEX_NAME, newer_than_index, read_index, run_table

#: Tables written by other commands or for some runs only (``rater_*``: the human reference rows; ``run_scores``:
#: the ISBI score and volume correlation the runner stores).
OPTIONAL_TABLES = ("profiles", "studies", "trials", "rater_case_metrics", "rater_summary", "run_scores")


class StoreError(ValueError):
    """The results folder is missing, empty or damaged; the message says which file and what to do."""


@dataclass(frozen=True)
class StoreData:
    """Everything the leaderboard reads from one results store.

    Attributes:
        results: The results folder.
        runs: ``run_table`` of the store: one row per (run, reference) with the summary's Dice.
        jobs: One row per committed job (status, stale flag, code hash, suite version, timings, error).
        cases: Per-case metrics in long form: ``run_id, job_id, case, patient, reference, metric, value``.
        lesions: One row per lesion (the lesions table's JSON rows, expanded), with ``run_id``.
        curves: Training curves in long form: ``run_id, job_id, epoch, metric, value``.
        manifests: Run id -> the run's ``manifest.json``.
        optional: Tables written by other commands or for some runs only (``OPTIONAL_TABLES``); an absent table is
            an empty frame.
        behind: Run files (manifests, run tables) and profiles changed after the index was built: the index may not
            show them until ``msbench store reindex``.
    """

    results: Path
    runs: pd.DataFrame
    jobs: pd.DataFrame
    cases: pd.DataFrame
    lesions: pd.DataFrame
    curves: pd.DataFrame
    manifests: dict[str, dict[str, Any]]
    optional: dict[str, pd.DataFrame] = field(default_factory=dict)
    behind: tuple[Path, ...] = ()

    @property
    def empty(self) -> bool:
        return self.runs.empty

    @property
    def unscored(self) -> list[str]:
        """Runs with finished jobs but no stored ISBI score or volume correlation (made before the runner stored them).

        The page shows those columns empty until the run's command is run again.
        """
        scores = self.table("run_scores")
        scored = set(scores["run_id"]) if "run_id" in scores else set()
        finished = self.runs.loc[pd.to_numeric(self.runs["n_jobs_ok"]).fillna(0) > 0, "run_id"]
        return sorted(set(finished) - scored)

    def table(self, name: str) -> pd.DataFrame:
        """An optional table (``profiles``, ``studies``, ``trials``), empty when the store has none."""
        return self.optional.get(name, pd.DataFrame())

    def wide_cases(self, run_id: str | None = None, reference: str | None = None) -> pd.DataFrame:
        """Per-case metrics as one row per (run, job, case, reference) and one column per metric."""
        frame = self.cases
        if run_id is not None:
            frame = frame[frame["run_id"] == run_id]
        if reference is not None:
            frame = frame[frame["reference"] == reference]
        ids = ["run_id", "job_id", "case", "patient", "reference"]
        if frame.empty:
            return pd.DataFrame(columns=ids)
        wide = frame.pivot_table(index=ids, columns="metric", values="value", aggfunc="first", dropna=False)
        wide = wide.reset_index()
        wide.columns.name = None
        return wide


def store_signature(results: Path) -> str:
    """Changes whenever the index or a run folder changes (the pages' cache key)."""
    results = Path(results)
    paths = [results / INDEX_NAME, results / f"{INDEX_NAME}-wal", *sorted((results / "runs").glob("*/manifest.json"))]
    return ";".join(f"{p.name}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in paths if p.exists())


def load_store(results: Path) -> StoreData:
    """Reads a results store (never writes it, reads no job folder).

    Raises:
        StoreError: The folder does not exist, holds no results, has no index, or its index is damaged or lacks a run
            or job its manifests name (the message names the file and the fix: ``msbench store reindex``, or a new
            ``--results`` folder).
    """
    results = Path(results)
    if not results.is_dir():
        raise StoreError(
            f"results folder {results} does not exist; make one with 'msbench run --method threshold "
            f"--results {results}' or pass --results pointing to an existing store."
        )
    if not (results / INDEX_NAME).is_file():
        if not any((results / "runs").glob("*/manifest.json")):
            raise StoreError(
                f"{results} holds no msbench results (no {INDEX_NAME}, no runs/*/manifest.json); run "
                f"'msbench run --method threshold --results {results}' first, or pass the folder 'msbench run' wrote."
            )
        raise StoreError(_no_index(results))
    manifests = _read_manifests(results)
    tables = _read_index(results)
    _check_index(results, manifests, tables)
    return StoreData(
        results=results,
        runs=_run_rows(results),
        jobs=_job_rows(tables["jobs"]),
        cases=tables["case_metrics"],
        lesions=_lesion_rows(tables["lesions"]),
        curves=tables["curves"],
        manifests=manifests,
        optional={name: tables[name] for name in OPTIONAL_TABLES if name in tables},
        behind=tuple(newer_than_index(results)),
    )


def _no_index(results: Path) -> str:
    reindex = f"msbench store reindex --results {results}"
    if not os.access(results, os.W_OK):
        return (
            f"{results} has no index ({INDEX_NAME}) and this user may not write the folder to build one; ask the "
            f"store's owner to run '{reindex}'."
        )
    return f"{results} has no index ({INDEX_NAME}); build it from the run folders with '{reindex}', then reload."


def _read_manifests(results: Path) -> dict[str, dict[str, Any]]:
    manifests = {}
    for path in sorted((results / "runs").glob("*/manifest.json")):
        try:
            manifest = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise StoreError(
                f"{path} is damaged ({error}); restore it or delete the run folder {path.parent}, then run "
                f"'msbench store reindex --results {results}'."
            ) from error
        manifests[manifest.get("run_id", path.parent.name)] = manifest
    return manifests


def _read_index(results: Path) -> dict[str, pd.DataFrame]:
    """Every table the pages use, read through the store's read-only connection (it never writes the store)."""
    wanted = ("runs", "jobs", "case_metrics", "shifted_case_metrics", "lesions", "curves", "summary", *OPTIONAL_TABLES)
    try:
        with read_index(results) as conn:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            return {name: pd.read_sql_query(f"SELECT * FROM {name}", conn) for name in wanted if name in names}
    except (FileNotFoundError, ValueError) as error:
        raise StoreError(str(error)) from error


def _run_rows(results: Path) -> pd.DataFrame:
    try:
        return run_table(results)
    except (FileNotFoundError, ValueError) as error:
        raise StoreError(str(error)) from error


def _check_index(results: Path, manifests: dict[str, dict[str, Any]], tables: dict[str, pd.DataFrame]) -> None:
    """The index holds every run and every finished job the manifests name (no job folder is read)."""
    reindex = f"run 'msbench store reindex --results {results}' to rebuild the index from the job folders"
    missing = sorted(set(manifests) - set(tables["runs"]["run_id"]))
    if missing:
        raise StoreError(f"{results / INDEX_NAME} lacks the runs {', '.join(missing)}; {reindex}.")
    jobs = tables["jobs"]
    for run_id, manifest in manifests.items():
        absent = sorted(set(manifest.get("jobs") or []) - set(jobs.loc[jobs["run_id"] == run_id, "job_id"]))
        if absent:
            folders = ", ".join(str(results / "runs" / run_id / "jobs" / job) for job in absent)
            raise StoreError(f"{results / INDEX_NAME} lacks the committed jobs {folders}; {reindex}.")


def _job_rows(jobs: pd.DataFrame) -> pd.DataFrame:
    records = [json.loads(r) if isinstance(r, str) else {} for r in jobs.get("record", [])]
    frame = jobs.drop(columns=["record"], errors="ignore").copy()
    frame["suite_version"] = [r.get("suite_version") for r in records]
    frame["predict_seconds"] = [r.get("predict_seconds") for r in records]
    frame["n_test_cases"] = [len(r.get("test_cases") or []) for r in records]
    return frame


def _lesion_rows(lesions: pd.DataFrame) -> pd.DataFrame:
    if lesions.empty:
        return pd.DataFrame(columns=["run_id", "job_id", "case", "reference", "family", "source", "volume_vox"])
    rows = [{"run_id": run, **json.loads(row)} for run, row in zip(lesions["run_id"], lesions["row"], strict=True)]
    frame = pd.DataFrame(rows)
    frame["job_id"] = lesions["job_id"].to_numpy()
    return frame


def load_index(results: Path) -> pd.DataFrame:
    """The store's ``run_table`` (one row per run and reference), for ``msbench runs list`` (the pages: load_store).

    Raises:
        FileNotFoundError: ``results`` holds no msbench results.
        StoreError: The store has no index (the message names ``msbench store reindex``).
        ValueError: The folder was written by an older store, or its index by another schema (says what to do).
    """
    results = Path(results)
    if not (results / INDEX_NAME).is_file():
        if not (results / "runs").is_dir():
            raise FileNotFoundError(f"{results} holds no msbench results (no {INDEX_NAME}, no runs/).")
        raise StoreError(_no_index(results))
    return _run_rows(results)
