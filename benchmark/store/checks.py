"""Checks of a ``--results`` folder: before every command that takes one, while a command writes it, and of its files.

:func:`check_results_dir` refuses a folder the command cannot use; :func:`store_writes` also turns the operating
system's refusals mid-write (a full disk, a permission lost) into one line; :func:`check_store` (``msbench store
check``) compares every file with the index and says what is out of date or damaged and what to run;
:func:`newer_than_index` is its cheap part, the run-level files only, for the leaderboard's banner.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ._db import INDEX_NAME, open_index, read_index
from .files import JOB_RECORD, read_json
from .index import PROFILE_FILE, PROFILES_DIR
from .raters import RATER_CASES, RATER_SUMMARY, RUN_SCORES

#: Below this much free space a writing command is refused before it starts: a job's files (predictions, checkpoint,
#: tables) take tens of MiB on the smoke grid, and a command stopped by a full disk wastes the work it did.
MIN_FREE_BYTES = 200 * 2**20
_FULL = (errno.ENOSPC, errno.EDQUOT)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def check_results_dir(results: Path, *, write: bool, index: bool = True) -> Path:
    """Refuses a ``--results`` folder the command cannot use, before it reads or writes anything.

    Args:
        results: The ``--results`` folder.
        write: The command writes the store (run, tune, profile, reindex): the folder, or the nearest existing folder
            above it, must be writable with ``MIN_FREE_BYTES`` free. Readers need an existing, readable store (a
            ``runs/`` folder or an index).
        index: Also open an existing index (read-only for readers) so a damaged one is named now, not after hours of
            training; ``store reindex``, which repairs it, passes False.

    Returns:
        ``results`` as a Path.

    Raises:
        ValueError: One line naming the option, the problem and what to do.
    """
    results = Path(results)
    option = f"--results {results}"
    if results.exists() and not results.is_dir():
        raise ValueError(f"{option} is a file, not a folder; pass the results folder (a new folder for a first run).")
    if write:
        _check_writable(results, option)
    elif not results.exists():
        raise ValueError(f"{option} does not exist; pass the folder 'msbench run' wrote, or run it there first.")
    elif not os.access(results, os.R_OK | os.X_OK):
        raise ValueError(f"{option}: this user may not read the folder; ask its owner for read access.")
    elif not (results / "runs").is_dir() and not (results / INDEX_NAME).is_file():
        raise ValueError(
            f"{option} holds no msbench results (no runs/ folder, no {INDEX_NAME}); run 'msbench run ... "
            f"--results {results}' first, or pass the folder 'msbench run' wrote."
        )
    if index and (results / INDEX_NAME).is_file():
        try:
            with open_index(results) if write else read_index(results):
                pass
        except FileNotFoundError:  # removed meanwhile: a writer makes it again
            pass
    return results


def _check_writable(results: Path, option: str) -> None:
    existing = next(p for p in (results.absolute(), *results.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"{option}: {existing} is a file, so the folder cannot be made there; pass another folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "the folder" if existing == results.absolute() else f"{existing}, where the folder would be made"
        raise ValueError(
            f"{option}: this user may not write {where}; pass a folder you can write (reading commands such as "
            "'msbench runs list' and 'msbench leaderboard' need no write access)."
        )
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise ValueError(
            f"{option}: the disk holding it has {free / 2**20:.0f} MiB free, msbench needs at least "
            f"{MIN_FREE_BYTES / 2**20:.0f} MiB to write results; free some space or pass a folder on another disk."
        )


@contextmanager
def store_writes(results: Path, *, index: bool = True) -> Iterator[None]:
    """Checks ``results`` for writing, then turns the OS refusing a write during the block into one ValueError line.

    A full disk or a permission lost mid-run is the user's to fix, not a traceback: what was committed stays (jobs
    commit by one rename), and the same command resumes once the disk has room. ``index``: as in
    :func:`check_results_dir`.
    """
    check_results_dir(results, write=True, index=index)
    try:
        yield
    except OSError as error:
        if error.errno in _FULL:
            raise ValueError(
                f"the disk is full ({error}); what --results {results} holds is kept: free some space and run the "
                "same command again to resume."
            ) from error
        if error.errno in _DENIED:  # the store, or a file the command reads (data, a scratch folder)
            raise ValueError(f"{error}; check that this user may read and write it.") from error
        raise


#: Files of a run folder the index copies (the board's banner compares their times with the index's).
RUN_FILES = ("manifest.json", "cases.csv", "lesions.csv", "summary.csv", "summary_shifted.csv", RATER_CASES,
             RATER_SUMMARY, RUN_SCORES)  # fmt: skip
#: Files of a committed job folder the index copies.
JOB_FILES = (JOB_RECORD, "cases.csv", "lesions.csv", "train_log.csv", PROFILE_FILE)
_CSV_FIX = "it is damaged (cut short by a full disk or an interrupted copy)"


def index_time(results: Path) -> int | None:
    """When the index last changed (its file or its write-ahead log), in ns; None when the store has no index."""
    index, wal = results / INDEX_NAME, Path(f"{results / INDEX_NAME}-wal")
    if not index.is_file():
        return None
    # a reader makes an empty -wal file when it opens the index: only a log holding writes counts
    return max(p.stat().st_mtime_ns for p in (index, wal) if p.is_file() and (p == index or p.stat().st_size > 0))


def newer_than_index(results: Path) -> list[Path]:
    """Run-level files and standalone profiles changed after the index (job folders are not walked: see check_store)."""
    results = Path(results)
    built = index_time(results)
    if built is None:
        return []
    paths = [p for run in sorted((results / "runs").glob("*/")) for p in (run / name for name in RUN_FILES)]
    paths += sorted((results / PROFILES_DIR).glob("*.json"))
    return [p for p in paths if p.is_file() and p.stat().st_mtime_ns > built]


def check_csv(path: Path) -> int:
    """Number of data rows of a CSV the store wrote.

    Raises:
        ValueError: The file does not end with a newline, or a row has another number of fields than the header.
    """
    text = path.read_text()
    if not text.strip():
        return 0
    if not text.endswith("\n"):
        raise ValueError(f"{path} is truncated (its last line has no line end); {_CSV_FIX}")
    rows = list(csv.reader(io.StringIO(text)))
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise ValueError(f"{path} line {number} has {len(row)} fields, its header {width}; {_CSV_FIX}")
    return len(rows) - 1


def check_store(results: Path, *, rater_methods: Sequence[str] = ()) -> list[str]:
    """What in the store's files is out of date against its index, or damaged: one line each, naming what to run.

    Reads every run and committed job folder (``msbench store check``; the leaderboard never does this on a load).

    Args:
        results: The results store.
        rater_methods: Methods whose finished runs store human reference rows (``raters.csv``) where their dataset
            has a ``truth`` reference.

    Returns:
        The problems found, empty when every file matches the index.
    """
    results = Path(results)
    reindex = f"run 'msbench store reindex --results {results}'"
    if index_time(results) is None:
        return [f"{results / INDEX_NAME} is missing; {reindex} to build it from the run folders."]
    with read_index(results) as conn:
        runs = set(pd.read_sql_query("SELECT run_id FROM runs", conn)["run_id"])
        jobs = set(pd.read_sql_query("SELECT run_id, job_id FROM jobs", conn).itertuples(index=False, name=None))
        counts = _indexed_case_counts(conn)
    problems = [f"{path} changed after the index was built; {reindex}." for path in newer_than_index(results)]
    built = index_time(results) or 0
    on_disk: set[str] = set()
    for manifest_path in sorted((results / "runs").glob("*/manifest.json")):
        root = manifest_path.parent
        try:
            manifest = json.loads(manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            problems.append(f"{manifest_path} is damaged ({error}); restore it or delete the run folder {root}.")
            continue
        run_id = manifest.get("run_id", root.name)
        on_disk.add(run_id)
        if run_id not in runs:
            problems.append(f"the run {root} is not in the index; {reindex}.")
        rerun = "run the same 'msbench run' command again (it reuses every job and rewrites the run's tables)"
        for name in ("cases.csv", "lesions.csv", "summary.csv"):
            problems += _csv_problems(root / name, rerun)
        has_truth = "truth" in (manifest.get("references") or [])
        finished = manifest.get("method") in rater_methods and manifest.get("status") == "ok"
        if finished and has_truth and not (root / RATER_CASES).is_file():
            problems.append(f"{root / RATER_CASES} is missing (the human reference rows); {rerun}.")
        if manifest.get("n_jobs_ok") and not (root / RUN_SCORES).is_file():
            problems.append(f"{root / RUN_SCORES} is missing (the ISBI score and volume r the board shows); {rerun}.")
        for job_dir in sorted(p for p in (root / "jobs").glob("*") if p.is_dir() and not p.name.startswith(".")):
            problems += _job_problems(job_dir, run_id, jobs, counts, built, reindex)
    for run_id, job_id in sorted(jobs):
        if run_id in on_disk and not (results / "runs" / run_id / "jobs" / job_id / JOB_RECORD).is_file():
            problems.append(f"the job {run_id}/{job_id} is in the index but not on disk; {reindex}.")
    problems += [f"the run {run_id} is in the index but not on disk; {reindex}." for run_id in sorted(runs - on_disk)]
    return problems


def _indexed_case_counts(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """(run, job) -> scored (case, reference) pairs in the index: the rows of the job's cases.csv."""
    counts: dict[tuple[str, str], int] = {}
    for table, keys in (("case_metrics", '"case", reference'), ("shifted_case_metrics", 'dataset, "case", reference')):
        query = (
            f"SELECT run_id, job_id, COUNT(*) FROM (SELECT DISTINCT run_id, job_id, {keys} FROM {table}) GROUP BY 1, 2"
        )
        for run_id, job_id, n in conn.execute(query):
            counts[(run_id, job_id)] = counts.get((run_id, job_id), 0) + int(n)
    return counts


def _job_problems(
    job_dir: Path, run_id: str, jobs: set[tuple[str, str]], counts: dict[tuple[str, str], int], built: int, reindex: str
) -> list[str]:
    record_path = job_dir / JOB_RECORD
    if not record_path.is_file():
        return []  # not committed (a job in flight writes .partial-*, a committed one always has its record)
    rerun = f"delete the job folder {job_dir} and run the same 'msbench run' command again"
    try:
        record = read_json(record_path)
    except (ValueError, UnicodeDecodeError) as error:
        return [f"{record_path} is damaged ({error}); {rerun}."]
    if (run_id, job_dir.name) not in jobs:
        return [f"the committed job {job_dir} is not in the index; {reindex}."]
    if record.get("status") == "ok" and not (job_dir / "cases.csv").is_file():
        return [f"{job_dir / 'cases.csv'} is missing; {rerun}."]
    problems = []
    for name in ("cases.csv", "lesions.csv", "train_log.csv"):
        problems += _csv_problems(job_dir / name, rerun)
    if problems:
        return problems
    changed = [p for p in (job_dir / n for n in JOB_FILES) if p.is_file() and p.stat().st_mtime_ns > built]
    problems += [f"{path} changed after the index was built; {reindex}." for path in changed]
    rows = check_csv(job_dir / "cases.csv") if (job_dir / "cases.csv").is_file() else 0
    indexed = counts.get((run_id, job_dir.name), 0)
    if rows != indexed and not changed:
        problems.append(f"{job_dir / 'cases.csv'} has {rows} rows, the index {indexed}; {reindex}.")
    return problems


def _csv_problems(path: Path, fix: str) -> list[str]:
    if not path.is_file():
        return []
    try:
        check_csv(path)
    except ValueError as error:
        return [f"{error}: {fix}."]
    return []
