"""The SQLite file of the index: its schema and version, and opening it to write, to read, or to rebuild it.

:mod:`.index` holds what goes in and comes out; this module only connects. The schema version lives in
``PRAGMA user_version`` and is checked on open.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from .raters import RATER_SCHEMA

INDEX_NAME = "msbench.sqlite"


INDEX_SCHEMA_VERSION = 2


_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, method TEXT, dataset TEXT, protocol TEXT, budget TEXT, modalities TEXT,
    reference TEXT, config_hash TEXT, leaks_timepoints INTEGER, status TEXT, n_jobs_ok INTEGER,
    n_jobs_failed INTEGER, updated TEXT, manifest TEXT);
CREATE TABLE IF NOT EXISTS jobs (
    run_id TEXT, job_id TEXT, fold INTEGER, seed INTEGER, status TEXT, stale INTEGER, code_hash TEXT,
    git_commit TEXT, error TEXT, fit_seconds REAL, wall_seconds REAL, resumed_from INTEGER, record TEXT,
    PRIMARY KEY (run_id, job_id));
CREATE TABLE IF NOT EXISTS case_metrics (
    run_id TEXT, job_id TEXT, "case" TEXT, patient TEXT, reference TEXT, metric TEXT, value REAL);
CREATE INDEX IF NOT EXISTS case_metrics_by_run ON case_metrics (run_id, metric);
CREATE TABLE IF NOT EXISTS lesions (run_id TEXT, job_id TEXT, "case" TEXT, reference TEXT, row TEXT);
CREATE TABLE IF NOT EXISTS curves (run_id TEXT, job_id TEXT, epoch INTEGER, metric TEXT, value REAL);
CREATE TABLE IF NOT EXISTS summary (
    run_id TEXT, seed TEXT, reference TEXT, metric TEXT, mean REAL, sd REAL, median REAL, ci_low REAL,
    ci_high REAL, n_valid REAL, n_cases REAL, n_patients REAL, n_both_empty REAL, seed_sd REAL, n_seeds REAL);
CREATE TABLE IF NOT EXISTS studies (
    study TEXT PRIMARY KEY, method TEXT, dataset TEXT, protocol TEXT, budget TEXT, storage TEXT,
    n_trials_budget INTEGER, per_trial_budget TEXT, n_complete INTEGER, n_pruned INTEGER, n_failed INTEGER,
    best_trial INTEGER, best_value REAL, best_params TEXT, search_space TEXT, sampler TEXT, pruner TEXT, updated TEXT);
CREATE TABLE IF NOT EXISTS trials (
    study TEXT, number INTEGER, state TEXT, value REAL, params TEXT, intermediate TEXT, worker TEXT, started TEXT,
    finished TEXT, PRIMARY KEY (study, number));
CREATE TABLE IF NOT EXISTS profiles (
    profile_id TEXT PRIMARY KEY, run_id TEXT, job_id TEXT, method TEXT, device TEXT, device_name TEXT,
    memory_kind TEXT, params_total INTEGER, params_trainable INTEGER, flops_forward REAL, batch_size INTEGER,
    input_shape TEXT, peak_train_bytes REAL, peak_infer_bytes REAL, train_samples_per_s REAL,
    train_voxels_per_s REAL, latency_p50_s REAL, latency_p95_s REAL, volumes_per_hour REAL, created TEXT,
    record TEXT);
CREATE TABLE IF NOT EXISTS shifted_case_metrics (
    run_id TEXT, job_id TEXT, dataset TEXT, "case" TEXT, patient TEXT, reference TEXT, metric TEXT, value REAL);
CREATE INDEX IF NOT EXISTS shifted_case_metrics_by_run ON shifted_case_metrics (run_id, metric);
CREATE TABLE IF NOT EXISTS shifted_summary (
    run_id TEXT, seed TEXT, reference TEXT, metric TEXT, mean REAL, sd REAL, median REAL, ci_low REAL,
    ci_high REAL, n_valid REAL, n_cases REAL, n_patients REAL, n_both_empty REAL, seed_sd REAL, n_seeds REAL);
"""


def index_path(results: Path) -> Path:
    return Path(results) / INDEX_NAME


@contextmanager
def open_index(results: Path) -> Iterator[sqlite3.Connection]:
    """The writers' connection (runs, reindex, tuning, profiles): WAL mode, waits up to 60 s for another writer.

    Creates the index (with the mode an ordinary file gets: 0666 less the umask, which SQLite's -wal and -shm files
    copy) when it is missing; checks the schema version.

    Raises:
        ValueError: The index was written with another schema version, is damaged, or SQLite refused it (the disk is
            full, this user may not write it); the message says what to do.
    """
    path = index_path(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # SQLite creates its files 0644 whatever the umask; a group sharing the store under umask 002 must write it.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={INDEX_SCHEMA_VERSION}")
        elif version != INDEX_SCHEMA_VERSION:
            raise ValueError(_version_message(path, version))
        conn.executescript(RATER_SCHEMA)
        yield conn
    except sqlite3.DatabaseError as error:
        raise ValueError(_index_error(path, error)) from error
    finally:
        conn.close()


@contextmanager
def read_index(results: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the index (SQLite ``mode=ro``, no journal mode change); checks the schema version.

    Readers never write the store, so one the user may read but not write (a lab's shared folder, a read-only mount)
    reads like any other. SQLite reads a WAL database through its ``-shm`` file; in a folder this user cannot write,
    with no writer running (no ``-wal`` file), that file cannot be made, so the index is opened ``immutable`` and the
    read refused if a writer changed the file meanwhile.

    Raises:
        FileNotFoundError: The store has no index.
        ValueError: The index is damaged, not an msbench index, of another schema version, or cannot be read; the
            message says why and what to do (``msbench store reindex`` rebuilds it from the job folders).
    """
    path = index_path(results)
    if not path.is_file():
        raise FileNotFoundError(f"{results} has no results index ({INDEX_NAME}); run 'msbench run' first.")
    conn: sqlite3.Connection | None = None
    try:
        conn, unchanged = _connect_read_only(path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != INDEX_SCHEMA_VERSION:
            raise ValueError(_version_message(path, version))
        yield conn
        if unchanged is not None and _file_state(path) != unchanged:
            raise ValueError(f"{path} changed while it was read (a run is writing it); run the command again.")
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as error:  # pandas wraps the sqlite3 error of a query
        raise ValueError(_index_error(path, error)) from error
    finally:
        if conn is not None:
            conn.close()


def _connect_read_only(path: Path) -> tuple[sqlite3.Connection, tuple[int, int] | None]:
    """A ``mode=ro`` connection and None, or an ``immutable`` one and the file's state when opened (see read_index)."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
    try:
        conn.execute("PRAGMA schema_version").fetchone()  # opens the WAL index (-shm), or fails here
        return conn, None
    except sqlite3.OperationalError:
        conn.close()
        wal = Path(f"{path}-wal")
        if os.access(path.parent, os.W_OK) or (wal.is_file() and wal.stat().st_size > 0):
            raise  # immutable would miss the rows still in the -wal file
    state = _file_state(path)
    return sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None), state


def _file_state(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _version_message(path: Path, version: int) -> str:
    found = "is not an msbench index (schema version 0)" if version == 0 else f"has index schema version {version}"
    return (
        f"{path} {found}, this msbench reads version {INDEX_SCHEMA_VERSION}; rebuild it from the result files with "
        f"'msbench store reindex --results {path.parent}'."
    )


def _index_error(path: Path, error: Exception) -> str:
    """What msbench says when SQLite refuses the index: only a damaged file is called damaged."""
    if not isinstance(error, sqlite3.Error) and isinstance(error.__cause__, sqlite3.Error):
        error = error.__cause__
    name = getattr(error, "sqlite_errorname", "")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return (
            f"{path} is damaged or not an SQLite index ({error}); 'msbench store reindex --results {path.parent}' "
            "rebuilds it from the job folders and keeps the damaged file beside it."
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"{path} is locked by another msbench process ({error}); run the command again when it is done."
    if name.startswith("SQLITE_FULL"):
        return f"{path}: the disk is full ({error}); free some space and run the command again."
    return (
        f"{path} cannot be used ({error}); check that this user may read it and its -wal/-shm files, and may write "
        f"{path.parent} to run or index."
    )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def clear_unusable_index(results: Path, on_set_aside: Callable[[Path], None] | None) -> None:
    """Deletes an msbench index of another schema version; moves a damaged or foreign file aside."""
    path = index_path(results)
    if not path.is_file():
        return
    try:
        conn = sqlite3.connect(path, timeout=60.0)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            healthy = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        healthy, tables, version = False, set(), 0
    if healthy and version == INDEX_SCHEMA_VERSION:
        return
    if healthy and {"runs", "jobs", "case_metrics"} <= tables:  # msbench's own index, another version
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    aside = path.with_name(f"{INDEX_NAME}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("-wal", "-shm", ""):  # the file last: a crash in between leaves it where it was
        if Path(f"{path}{suffix}").exists():
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    if on_set_aside is not None:
        on_set_aside(aside)
