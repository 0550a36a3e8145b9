"""The SQLite index of a results store (``RESULTS/msbench.sqlite``), what the leaderboard, tuning and gates query.

It holds runs, jobs, per-case metrics, lesions, training curves, run summaries and cost profiles (a job's
``profile.json`` and the standalone ``profiles/<id>.json`` of ``msbench profile``), so that no reader walks hundreds
of files.

It is a cache of the files, never the record: ``reindex`` rebuilds it from the committed job folders at any time.
WAL mode lets readers (the leaderboard) query while a run writes; each committed job is indexed in one transaction.
Writers (run, reindex, tune, profile) open it with :func:`open_index`; readers with :func:`read_index`, read-only, so
a store the user may read but not write is read like any other. The schema version lives in ``PRAGMA user_version``
and is checked on open.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from .files import RunStore, check_store_version, read_json, read_manifest, read_table
from .raters import RATER_IDS, RATER_SCHEMA, RATER_SUMMARY_COLUMNS, RATER_TABLES, SCORE_COLUMNS, read_raters

INDEX_NAME = "msbench.sqlite"
INDEX_SCHEMA_VERSION = 2
PROFILES_DIR = "profiles"
PROFILE_FILE = "profile.json"

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
STUDY_COLUMNS = (
    "study", "method", "dataset", "protocol", "budget", "storage", "n_trials_budget", "per_trial_budget",
    "n_complete", "n_pruned", "n_failed", "best_trial", "best_value", "best_params", "search_space", "sampler",
    "pruner", "updated",
)  # fmt: skip
TRIAL_COLUMNS = ("study", "number", "state", "value", "params", "intermediate", "worker", "started", "finished")
PROFILE_COLUMNS = (
    "profile_id", "run_id", "job_id", "method", "device", "device_name", "memory_kind", "params_total",
    "params_trainable", "flops_forward", "batch_size", "input_shape", "peak_train_bytes", "peak_infer_bytes",
    "train_samples_per_s", "train_voxels_per_s", "latency_p50_s", "latency_p95_s", "volumes_per_hour", "created",
)  # fmt: skip
# shifted_*: a cross-dataset run's scores on its test data set (manifest "test_dataset"); case_metrics and summary
# hold only the in-domain rows, as for every run.
_CASE_IDS = ("method", "fold", "seed", "case", "patient", "timepoint", "reference", "domain", "dataset")
SUMMARY_COLUMNS = (
    "seed", "reference", "metric", "mean", "sd", "median", "ci_low", "ci_high", "n_valid", "n_cases", "n_patients",
    "n_both_empty", "seed_sd", "n_seeds",
)  # fmt: skip


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
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def number_or_none(value: Any) -> float | None:
    """``value`` as a float; None for NaN or what is not a number (SQL NULL)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _job_rows(store: RunStore, job_id: str, record: dict[str, Any]) -> dict[str, list[tuple]]:
    run_id, folder = store.run_id, store.job_dir(job_id)
    rows: dict[str, list[tuple]] = {"case_metrics": [], "shifted_case_metrics": [], "lesions": [], "curves": []}
    cases = read_table(folder / "cases.csv")
    metrics = [c for c in cases.columns if c not in _CASE_IDS and pd.api.types.is_numeric_dtype(cases[c])]
    for row in cases.to_dict("records"):
        ids = (run_id, job_id, str(row["case"]), str(row["patient"]), str(row["reference"]))
        if row.get("domain") == "shifted":
            rows["shifted_case_metrics"] += [
                (run_id, job_id, str(row["dataset"]), *ids[2:], m, number_or_none(row[m])) for m in metrics
            ]
        else:
            rows["case_metrics"] += [(*ids, m, number_or_none(row[m])) for m in metrics]
    for row in read_table(folder / "lesions.csv").to_dict("records"):
        if row.get("domain") == "shifted":
            continue  # a shifted scan's lesions stay in the job's lesions.csv (lesions: in-domain, as before)
        rows["lesions"].append((run_id, job_id, str(row["case"]), str(row["reference"]), json.dumps(row, default=str)))
    curve = read_table(folder / "train_log.csv")
    if "epoch" in curve:
        for row in curve.to_dict("records"):
            rows["curves"] += [
                (run_id, job_id, int(row["epoch"]), k, number_or_none(v)) for k, v in row.items() if k != "epoch"
            ]
    return rows


def index_job(conn: sqlite3.Connection, store: RunStore, job_id: str, record: dict[str, Any]) -> None:
    """Replaces one job's rows (record, per-case metrics, lesions, curve) in one transaction."""
    rows = _job_rows(store, job_id, record)
    with _transaction(conn):
        _delete_job(conn, store.run_id, job_id)
        conn.execute(
            "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                store.run_id,
                job_id,
                record.get("fold"),
                record.get("seed"),
                record.get("status"),
                int(bool(record.get("stale"))),
                record.get("code_hash"),
                (record.get("git") or {}).get("commit"),
                record.get("error"),
                record.get("fit_seconds"),
                record.get("wall_seconds"),
                record.get("resumed_from_epoch"),
                json.dumps(record, default=str),
            ),  # fmt: skip
        )
        conn.executemany("INSERT INTO case_metrics VALUES (?,?,?,?,?,?,?)", rows["case_metrics"])
        conn.executemany("INSERT INTO shifted_case_metrics VALUES (?,?,?,?,?,?,?,?)", rows["shifted_case_metrics"])
        conn.executemany("INSERT INTO lesions VALUES (?,?,?,?,?)", rows["lesions"])
        conn.executemany("INSERT INTO curves VALUES (?,?,?,?,?)", rows["curves"])
        profile = store.job_dir(job_id) / PROFILE_FILE
        if profile.is_file():
            _insert_profile(conn, {**read_json(profile), "run_id": store.run_id, "job_id": job_id})


def _profile_row(record: dict[str, Any]) -> tuple:
    """The ``profiles`` row of one profile record (``msbench.benchmark.profiling``); the full record goes last."""
    values = []
    for column in PROFILE_COLUMNS:
        value = record.get(column)
        if column == "input_shape" and value is not None:
            value = json.dumps(value)
        elif column in ("params_total", "params_trainable", "batch_size") and value is not None:
            value = int(value)
        elif column not in ("profile_id", "run_id", "job_id", "method", "device", "device_name", "memory_kind",
                            "created", "input_shape"):  # fmt: skip
            value = number_or_none(value)
        values.append(value)
    if not values[0]:
        raise ValueError(f"profile record of method {record.get('method')!r} has no profile_id.")
    return (*values, json.dumps(record, default=str))


def _insert_profile(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO profiles VALUES ({','.join('?' * (len(PROFILE_COLUMNS) + 1))})", _profile_row(record)
    )


def index_profile(results: Path, record: dict[str, Any]) -> None:
    """Adds (or replaces) one profile's row in the store's index."""
    with open_index(results) as conn, _transaction(conn):
        _insert_profile(conn, record)


def profile_table(results: Path) -> pd.DataFrame:
    """One row per stored profile (``PROFILE_COLUMNS``; ``input_shape`` as JSON text), oldest first."""
    with read_index(results) as conn:
        return pd.read_sql_query(
            f"SELECT {', '.join(PROFILE_COLUMNS)} FROM profiles ORDER BY created, profile_id", conn
        )


def _delete_job(conn: sqlite3.Connection, run_id: str, job_id: str) -> None:
    for table in ("jobs", "case_metrics", "shifted_case_metrics", "lesions", "curves", "profiles"):
        conn.execute(f"DELETE FROM {table} WHERE run_id=? AND job_id=?", (run_id, job_id))


def index_run(
    conn: sqlite3.Connection, manifest: dict[str, Any], summary: pd.DataFrame, shifted: pd.DataFrame | None = None
) -> None:
    """Replaces one run's row and its summary in one transaction.

    ``shifted``: a cross-dataset run's ``summary_shifted.csv``, replacing its shifted summary (None leaves it).
    """
    run_id = manifest["run_id"]
    with _transaction(conn):
        conn.execute("DELETE FROM runs WHERE run_id=?", (run_id,))
        conn.execute("DELETE FROM summary WHERE run_id=?", (run_id,))
        conn.execute(
            "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                manifest["method"],
                manifest["dataset"],
                manifest["protocol"],
                manifest["budget"],
                "+".join(manifest["modalities"]),
                manifest.get("reference", ""),
                manifest.get("config_hash"),
                int(bool(manifest["split"]["leaks_timepoints"])),
                manifest.get("status", "unknown"),
                manifest.get("n_jobs_ok", 0),
                manifest.get("n_jobs_failed", 0),
                manifest.get("updated", ""),
                json.dumps(manifest, default=str),
            ),  # fmt: skip
        )
        _insert_summary(conn, "summary", run_id, summary)
        if shifted is not None:
            conn.execute("DELETE FROM shifted_summary WHERE run_id=?", (run_id,))
            _insert_summary(conn, "shifted_summary", run_id, shifted)


def _insert_summary(conn: sqlite3.Connection, table: str, run_id: str, summary: pd.DataFrame) -> None:
    if summary.empty:
        return
    frame = summary.reindex(columns=list(SUMMARY_COLUMNS))
    conn.executemany(
        f"INSERT INTO {table} VALUES ({','.join('?' * (len(SUMMARY_COLUMNS) + 1))})",
        [(run_id, str(r[0]), *r[1:3], *(number_or_none(v) for v in r[3:])) for r in frame.itertuples(index=False)],
    )


def index_raters(
    conn: sqlite3.Connection, run_id: str, cases: pd.DataFrame, summary: pd.DataFrame, scores: pd.DataFrame
) -> None:
    """Replaces one run's derived rows (``raters.csv``, ``raters_summary.csv``, ``scores.csv``) in one transaction."""
    metrics = [c for c in cases.columns if c not in RATER_IDS and pd.api.types.is_numeric_dtype(cases[c])]
    ids = list(RATER_IDS)
    with _transaction(conn):
        for table in RATER_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE run_id=?", (run_id,))
        conn.executemany(
            "INSERT INTO rater_case_metrics VALUES (?,?,?,?,?,?,?)",
            [
                (run_id, *(str(row[k]) for k in (ids[0], ids[2], ids[3], ids[1])), m, number_or_none(row[m]))
                for row in cases.to_dict("records")
                for m in metrics
            ],
        )
        frame = summary.reindex(columns=list(RATER_SUMMARY_COLUMNS))
        conn.executemany(
            f"INSERT INTO rater_summary VALUES ({','.join('?' * (len(RATER_SUMMARY_COLUMNS) + 1))})",
            [(run_id, *map(str, r[:4]), *(number_or_none(v) for v in r[4:])) for r in frame.itertuples(index=False)],
        )
        conn.executemany(
            "INSERT INTO run_scores VALUES (?,?,?,?,?)",
            [
                (run_id, str(rater), str(reference), str(metric), number_or_none(value))
                for rater, reference, metric, value in scores.reindex(columns=list(SCORE_COLUMNS)).to_numpy()
            ],
        )


def index_study(conn: sqlite3.Connection, study: dict[str, Any], trials: list[dict[str, Any]]) -> None:
    """Replaces one Optuna study's row and all its trials in one transaction.

    The rows are ``STUDY_COLUMNS`` / ``TRIAL_COLUMNS`` dicts, made by ``msbench.benchmark.tuning.study_row`` and
    ``trial_rows``.
    """
    with _transaction(conn):
        conn.execute("DELETE FROM studies WHERE study=?", (study["study"],))
        conn.execute("DELETE FROM trials WHERE study=?", (study["study"],))
        conn.execute(f"INSERT INTO studies VALUES ({','.join('?' * len(STUDY_COLUMNS))})",
                     tuple(study[c] for c in STUDY_COLUMNS))  # fmt: skip
        conn.executemany(
            f"INSERT INTO trials VALUES ({','.join('?' * len(TRIAL_COLUMNS))})",
            [tuple(number_or_none(t[c]) if c == "value" else t[c] for c in TRIAL_COLUMNS) for t in trials],
        )


def reindex(results: Path, *, on_set_aside: Callable[[Path], None] | None = None) -> dict[str, int]:
    """Rebuilds the index from the result files; returns counts (runs, jobs, and the rows of the larger tables).

    It reads the manifests, committed jobs, derived summaries, standalone profiles and the default tuning journal
    (``tuning/optuna-journal.log``). Studies kept in another storage (``--storage URL``) return with the next
    ``msbench tune`` on it. An index written with another schema version is a cache of the same files: it is
    deleted and built anew. A damaged or foreign file is moved aside (``msbench.sqlite.damaged-<time>``, never
    deleted: it may be someone's data); ``on_set_aside`` is told where.
    """
    results = Path(results)
    check_store_version(results)
    # every manifest is read (and its schema checked) before the index is touched: a refused run empties nothing
    manifests = [read_manifest(p) for p in sorted((results / "runs").glob("*/manifest.json"))]
    _clear_unusable_index(results, on_set_aside)
    counts = {"runs": 0, "jobs": 0}
    with open_index(results) as conn:
        with _transaction(conn):
            for table in (
                "runs", "jobs", "case_metrics", "lesions", "curves", "summary",
                "shifted_case_metrics", "shifted_summary", "studies", "trials", "profiles", *RATER_TABLES,
            ):  # fmt: skip
                conn.execute(f"DELETE FROM {table}")
        for profile_path in sorted((results / PROFILES_DIR).glob("*.json")):
            with _transaction(conn):
                _insert_profile(conn, read_json(profile_path))
        for manifest in manifests:
            store = RunStore(results, manifest["run_id"])
            for job_id, record in store.committed_jobs():
                index_job(conn, store, job_id, record)
                counts["jobs"] += 1
            summary = read_table(store.root / "summary.csv")
            shifted_path = store.root / "summary_shifted.csv"
            shifted = read_table(shifted_path, dtype={"seed": str}) if shifted_path.is_file() else None
            index_run(conn, manifest, summary, shifted)
            index_raters(conn, manifest["run_id"], *read_raters(store.root))
            counts["runs"] += 1
        for table in ("case_metrics", "shifted_case_metrics"):  # scored (case, reference) pairs, not metric values
            query = f'SELECT COUNT(*) FROM (SELECT DISTINCT run_id, job_id, "case", reference FROM {table})'
            counts[table] = int(conn.execute(query).fetchone()[0])
        for table in ("lesions", "profiles"):
            counts[table] = int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    if (results / "tuning").is_dir():  # a store with tuning studies also counts them
        from msbench.benchmark.tuning import index_journal

        counts["studies"] = index_journal(results)
    return counts


def _clear_unusable_index(results: Path, on_set_aside: Callable[[Path], None] | None) -> None:
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


def dump(results: Path) -> dict[str, pd.DataFrame]:
    """Every table of the index, sorted, for comparisons (tests, ``msbench store check``)."""
    keys = {
        "runs": "run_id", "jobs": "run_id, job_id", "case_metrics": 'run_id, job_id, "case", reference, metric',
        "lesions": 'run_id, job_id, "case", reference, row', "curves": "run_id, job_id, epoch, metric",
        "summary": "run_id, seed, reference, metric", "studies": "study", "trials": "study, number",
        "profiles": "profile_id",
        "shifted_case_metrics": 'run_id, job_id, "case", reference, metric',
        "shifted_summary": "run_id, seed, reference, metric",
        "rater_case_metrics": 'run_id, rater, "case", reference, metric', "rater_summary": "run_id, rater, metric",
        "run_scores": "run_id, rater, reference, metric",
    }  # fmt: skip
    with read_index(results) as conn:
        return {t: pd.read_sql_query(f"SELECT * FROM {t} ORDER BY {k}", conn) for t, k in keys.items()}


RUN_COLUMNS = (
    "run_id", "method", "dataset", "protocol", "budget", "modalities", "leaks_timepoints", "status", "n_jobs_ok",
    "n_jobs_failed", "updated",
)  # fmt: skip


def run_table(results: Path) -> pd.DataFrame:
    """One row per (run, reference) with its mean Dice over all seeds: what ``index.csv`` used to hold.

    Columns: the run's identity (``RUN_COLUMNS``), ``reference``, ``dice_mean``, ``dice_sd``, ``dice_median``,
    ``dice_ci_low``, ``dice_ci_high``, ``n_cases``, ``n_patients``, ``n_seeds``, ``dice_seed_sd``. A run without a
    summary (nothing finished yet, or every job failed) has one row with ``n_cases`` 0.
    """
    query = f"""
        SELECT {", ".join("r." + c for c in RUN_COLUMNS)}, COALESCE(s.reference, r.reference) AS reference,
               s.mean AS dice_mean, s.sd AS dice_sd, s.median AS dice_median, s.ci_low AS dice_ci_low,
               s.ci_high AS dice_ci_high, COALESCE(s.n_cases, 0) AS n_cases, s.n_patients, s.n_seeds,
               s.seed_sd AS dice_seed_sd
        FROM runs r LEFT JOIN summary s ON s.run_id = r.run_id AND s.metric = 'dice' AND s.seed = 'all'
        ORDER BY r.run_id, reference"""
    with read_index(results) as conn:
        table = pd.read_sql_query(query, conn)
    table["leaks_timepoints"] = table["leaks_timepoints"].astype(bool)
    return table


def job_table(results: Path, run_id: str | None = None) -> pd.DataFrame:
    """The jobs of one run (or of every run): status, timings, error, code hash, stale flag."""
    where, args = ("WHERE run_id = ?", (run_id,)) if run_id else ("", ())
    with read_index(results) as conn:
        return pd.read_sql_query(
            f"SELECT run_id, job_id, fold, seed, status, stale, resumed_from, fit_seconds, wall_seconds, error, "
            f"code_hash, git_commit FROM jobs {where} ORDER BY run_id, fold, seed",
            conn,
            params=args,
        )


def study_table(results: Path) -> pd.DataFrame:
    """One row per Optuna study (``STUDY_COLUMNS``).

    Columns: the equal budget (``n_trials_budget``, ``per_trial_budget`` json), counts of complete / pruned / failed
    trials, the best trial, its value and ``best_params`` (json), the ``search_space`` (json), sampler, pruner.
    JSON columns stay text; ``json.loads`` them to use them.
    """
    with read_index(results) as conn:
        return pd.read_sql_query(f"SELECT {', '.join(STUDY_COLUMNS)} FROM studies ORDER BY study", conn)


def trial_table(results: Path, study: str | None = None) -> pd.DataFrame:
    """The trials of one study (or of every study), ``TRIAL_COLUMNS``.

    Columns: number, state (COMPLETE, PRUNED, FAIL, RUNNING), value (validation Dice), params (json), intermediate
    (json ``{epoch: validation Dice}``), worker (``host:pid``), started, finished.
    """
    where, args = ("WHERE study = ?", (study,)) if study else ("", ())
    with read_index(results) as conn:
        return pd.read_sql_query(
            f"SELECT {', '.join(TRIAL_COLUMNS)} FROM trials {where} ORDER BY study, number", conn, params=args
        )


def shift_table(results: Path) -> pd.DataFrame:
    """In-domain and shifted results side by side, one row per (cross-dataset run, metric): what the leaderboard draws.

    Columns: ``run_id``, ``method``, ``dataset`` (trained and selected on), ``protocol``, ``budget``,
    ``test_dataset``, ``test_protocol`` (``all-scans``), ``reference`` and ``test_reference`` (each data set's
    primary), then :func:`msbench.benchmark.aggregation.domain_shift`'s columns (``metric``, ``in_domain``,
    ``shifted``, ``drop``, ``relative_drop``, CIs and patient counts). Empty when no run has a test data set.
    """
    from msbench.benchmark.aggregation import domain_shift

    with read_index(results) as conn:
        runs = pd.read_sql_query("SELECT run_id, manifest FROM runs ORDER BY run_id", conn)
        summary = pd.read_sql_query("SELECT * FROM summary", conn)
        shifted = pd.read_sql_query("SELECT * FROM shifted_summary", conn)
    tables = []
    for run_id, text in runs.itertuples(index=False):
        manifest = json.loads(text)
        test = manifest.get("test_dataset")
        if not test:
            continue
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
