"""The SQLite index of a results store (``RESULTS/msbench.sqlite``), what the leaderboard, tuning and gates query.

It holds runs, jobs, per-case metrics, lesions, training curves, run summaries and cost profiles (a job's
``profile.json`` and the standalone ``profiles/<id>.json`` of ``msbench profile``), so that no reader walks hundreds
of files.

It is a cache of the files, never the record: ``reindex`` rebuilds it from the committed job folders at any time.
WAL mode lets readers (the leaderboard) query while a run writes; each committed job is indexed in one transaction.
Writers (run, reindex, tune, profile) open it with :func:`open_index`; readers with :func:`read_index`, read-only, so
a store the user may read but not write is read like any other (both, with the schema and its version checked on
open, in :mod:`._db`).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ._db import clear_unusable_index, open_index, read_index, transaction
from .files import RunStore, check_store_version, read_json, read_manifest, read_table
from .raters import RATER_IDS, RATER_SUMMARY_COLUMNS, RATER_TABLES, SCORE_COLUMNS, read_raters

PROFILES_DIR = "profiles"
PROFILE_FILE = "profile.json"

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
    with transaction(conn):
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
    with open_index(results) as conn, transaction(conn):
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
    with transaction(conn):
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
    with transaction(conn):
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
    with transaction(conn):
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

    It reads the manifests, committed jobs, derived summaries and standalone profiles: the files the store owns (it
    imports nothing of the harness). The tuning studies it empties are restored by the caller: ``msbench store
    reindex`` indexes the default journal next (:func:`msbench.benchmark.tuning.index_journal`); studies kept in
    another storage return with the next ``msbench tune`` on it. An index written with another schema version is a
    cache of the same files: it is deleted and built anew. A damaged or foreign file is moved aside
    (``msbench.sqlite.damaged-<time>``, never deleted: it may be someone's data); ``on_set_aside`` is told where.
    """
    results = Path(results)
    check_store_version(results)
    # every manifest is read (and its schema checked) before the index is touched: a refused run empties nothing
    manifests = [read_manifest(p) for p in sorted((results / "runs").glob("*/manifest.json"))]
    clear_unusable_index(results, on_set_aside)
    counts = {"runs": 0, "jobs": 0}
    with open_index(results) as conn:
        with transaction(conn):
            for table in (
                "runs", "jobs", "case_metrics", "lesions", "curves", "summary",
                "shifted_case_metrics", "shifted_summary", "studies", "trials", "profiles", *RATER_TABLES,
            ):  # fmt: skip
                conn.execute(f"DELETE FROM {table}")
        for profile_path in sorted((results / PROFILES_DIR).glob("*.json")):
            with transaction(conn):
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
    return counts


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


def shift_inputs(results: Path) -> tuple[list[dict[str, Any]], pd.DataFrame, pd.DataFrame]:
    """What a domain-shift table joins: the cross-dataset runs' manifests, every run's summary and shifted summary.

    :func:`msbench.leaderboard.shift.shift_table` puts them side by side; the store only reads them.
    """
    with read_index(results) as conn:
        runs = pd.read_sql_query("SELECT run_id, manifest FROM runs ORDER BY run_id", conn)
        summary = pd.read_sql_query("SELECT * FROM summary", conn)
        shifted = pd.read_sql_query("SELECT * FROM shifted_summary", conn)
    manifests = [json.loads(text) for text in runs["manifest"]]
    return [m for m in manifests if m.get("test_dataset")], summary, shifted


def mark_stale(conn: sqlite3.Connection, run_id: str, job_ids: list[str]) -> None:
    """Marks committed jobs of ``run_id`` stale in the index (their code hash is not the run's code any more)."""
    conn.executemany("UPDATE jobs SET stale=1 WHERE run_id=? AND job_id=?", [(run_id, job_id) for job_id in job_ids])
