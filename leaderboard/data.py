"""The leaderboard's data layer: reads a results store with pandas and sqlite3 (no torch, no streamlit).

Everything the pages show comes from :func:`load_store`: the index's tables (runs, jobs, per-case metrics, lesions,
curves), the optional tables other commands add (``profiles`` from profiling, ``studies``/``trials`` from tuning)
and each run's manifest. Damaged input is refused with a :class:`StoreError` that names the file and the fix: a
corrupt SQLite index, a truncated CSV in a run or job folder, or an index that no longer matches the job folders.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

INDEX_NAME = "msbench.sqlite"
#: Tables written by other commands or for some runs only (``rater_*``: the human reference rows of inter-rater runs).
OPTIONAL_TABLES = ("profiles", "studies", "trials", "rater_case_metrics", "rater_summary")
_CHECKED_CSVS = ("cases.csv", "lesions.csv", "summary.csv")
_JOB_CSVS = ("cases.csv", "lesions.csv", "train_log.csv")


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
        optional: Tables written by other commands when present (``profiles``, ``studies``, ``trials``); an absent
            table is an empty frame.
    """

    results: Path
    runs: pd.DataFrame
    jobs: pd.DataFrame
    cases: pd.DataFrame
    lesions: pd.DataFrame
    curves: pd.DataFrame
    manifests: dict[str, dict[str, Any]]
    optional: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.runs.empty

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
    """Reads and checks a results store.

    Raises:
        StoreError: The folder does not exist, holds no results, or is damaged (the message names the file and the
            fix: ``msbench store reindex``, deleting the damaged job, or a new ``--results`` folder).
    """
    results = Path(results)
    if not results.is_dir():
        raise StoreError(
            f"results folder {results} does not exist; make one with 'msbench run --method threshold "
            f"--results {results}' or pass --results pointing to an existing store."
        )
    index = results / INDEX_NAME
    if not index.is_file():
        if not any((results / "runs").glob("*/manifest.json")):
            raise StoreError(
                f"{results} holds no msbench results (no {INDEX_NAME}, no runs/*/manifest.json); run "
                f"'msbench run --method threshold --results {results}' first, or pass the folder 'msbench run' wrote."
            )
        _reindex(results)
    manifests = _read_manifests(results)
    tables = _read_index(results)
    _check_files(results, manifests, tables)
    runs = _run_rows(results)
    return StoreData(
        results=results,
        runs=runs,
        jobs=_job_rows(tables["jobs"]),
        cases=tables["case_metrics"],
        lesions=_lesion_rows(tables["lesions"]),
        curves=tables["curves"],
        manifests=manifests,
        optional={name: tables[name] for name in OPTIONAL_TABLES if name in tables},
    )


def _reindex(results: Path) -> None:
    from msbench.benchmark.store import reindex

    if not os.access(results, os.W_OK):
        raise StoreError(
            f"{results} has no index ({INDEX_NAME}) and this user may not write the folder to build one; ask the "
            f"store's owner to run 'msbench store reindex --results {results}'."
        )
    try:
        reindex(results)
    except (ValueError, KeyError, pd.errors.ParserError) as error:
        raise StoreError(f"cannot index {results}: {error}") from error


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
    from msbench.benchmark.store import read_index

    wanted = ("runs", "jobs", "case_metrics", "shifted_case_metrics", "lesions", "curves", "summary", *OPTIONAL_TABLES)
    try:
        with read_index(results) as conn:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            return {name: pd.read_sql_query(f"SELECT * FROM {name}", conn) for name in wanted if name in names}
    except (FileNotFoundError, ValueError) as error:
        raise StoreError(str(error)) from error


def _run_rows(results: Path) -> pd.DataFrame:
    from msbench.benchmark.store import run_table

    try:
        return run_table(results)
    except (FileNotFoundError, ValueError) as error:
        raise StoreError(str(error)) from error


def check_csv(path: Path) -> int:
    """Number of data rows of a CSV the store wrote; refuses a truncated or ragged file.

    Raises:
        StoreError: The file does not end with a newline, or a row has another number of fields than the header.
    """
    text = path.read_text()
    if not text.strip():
        return 0
    fix = "the file is damaged (cut short by a full disk or an interrupted copy): delete the job folder and rerun it"
    if not text.endswith("\n"):
        raise StoreError(f"{path} is truncated (its last line has no line end); {fix}.")
    rows = list(csv.reader(io.StringIO(text)))
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise StoreError(f"{path} line {number} has {len(row)} fields, its header {width}; {fix}.")
    return len(rows) - 1


def _check_files(results: Path, manifests: dict[str, dict[str, Any]], tables: dict[str, pd.DataFrame]) -> None:
    """Every CSV the pages rely on is whole, and the index holds every committed job with all its case rows."""
    reindex = f"run 'msbench store reindex --results {results}' to rebuild the index from the job folders"
    indexed_runs = set(tables["runs"]["run_id"])
    missing = sorted(set(manifests) - indexed_runs)
    if missing:
        raise StoreError(f"{results / INDEX_NAME} lacks the runs {', '.join(missing)}; {reindex}.")
    jobs = tables["jobs"]
    # cases.csv holds a cross-dataset run's shifted rows too; the index keeps them in shifted_case_metrics.
    counts: dict[tuple[str, str], int] = {}
    for name, keys in (("case_metrics", ["case"]), ("shifted_case_metrics", ["dataset", "case"])):
        if name in tables:
            rows = tables[name].drop_duplicates(["run_id", "job_id", *keys, "reference"])
            for key, n in rows.groupby(["run_id", "job_id"]).size().items():
                counts[key] = counts.get(key, 0) + int(n)
    for run_id in manifests:
        root = results / "runs" / run_id
        for name in _CHECKED_CSVS:
            if (root / name).is_file():
                check_csv(root / name)
        indexed_jobs = set(jobs.loc[jobs["run_id"] == run_id, "job_id"])
        for job_dir in sorted(p for p in (root / "jobs").glob("*") if p.is_dir() and not p.name.startswith(".")):
            if not (job_dir / "job.json").is_file():
                continue
            if job_dir.name not in indexed_jobs:
                raise StoreError(f"{results / INDEX_NAME} lacks the committed job {job_dir}; {reindex}.")
            n_cases = 0
            for name in _JOB_CSVS:
                if (job_dir / name).is_file():
                    rows = check_csv(job_dir / name)
                    n_cases = rows if name == "cases.csv" else n_cases
            if n_cases != counts.get((run_id, job_dir.name), 0):
                raise StoreError(
                    f"{job_dir / 'cases.csv'} has {n_cases} rows, the index {counts.get((run_id, job_dir.name), 0)}; "
                    f"{reindex}."
                )


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
    """The store's ``run_table`` (one row per run and reference), the index rebuilt from the run files when missing.

    Kept for ``msbench runs list``; the pages read :func:`load_store`.

    Raises:
        FileNotFoundError: ``results`` holds no msbench results.
        ValueError: The folder was written by an older store, or its index by another schema (says what to do).
    """
    results = Path(results)
    if not (results / INDEX_NAME).is_file():
        if not (results / "runs").is_dir():
            raise FileNotFoundError(f"{results} holds no msbench results (no {INDEX_NAME}, no runs/).")
        _reindex(results)
    return _run_rows(results)
