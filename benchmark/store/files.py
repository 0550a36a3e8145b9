"""The files of the results store: atomic writes that honour the umask, run folders, job folders and their locks.

Layout (``RESULTS`` is the user's ``--results`` folder)::

    RESULTS/msbench.sqlite                         the index (see ``index.py``), rebuilt from the files on demand
    RESULTS/runs/<run_id>/manifest.json            the run: config, split, data fingerprint, commits of its jobs
    RESULTS/runs/<run_id>/jobs/<job_id>/           one committed job: job.json (status, code hash, provenance),
                                                   cases.csv, lesions.csv, train_log.csv, fit.json, predictions/,
                                                   probabilities/, work/ (checkpoints, the trained model)
    RESULTS/runs/<run_id>/jobs/.partial-<job_id>/  a job in flight or interrupted: resumed from its checkpoint
    RESULTS/runs/<run_id>/{cases,lesions,summary}.csv   derived from the committed jobs, rewritten under the run lock

The job folder is the unit of record: a job writes everything into its ``.partial-`` folder and commits by one
rename, so a job is either wholly there or absent. A job's lock (``flock`` on ``jobs/.<job_id>.lock``) keeps two
processes from running it at once; the run lock serialises the derived tables.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

STORE_SCHEMA_VERSION = 2
MANIFEST_SCHEMA_VERSION = 1
JOB_RECORD = "job.json"
ALL_SEEDS = "all"
"""The ``seed`` of a summary row over every seed of a run (``summary.csv``; the other rows name their seed)."""


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a new empty sibling file; renames it onto ``path`` only if the block succeeds.

    The file is made as an ordinary ``open`` makes one, mode 0666 less the umask (not ``mkstemp``'s 0600), so every
    file of a store, checkpoints included, can be shared with a group or served. The one atomic writer of msbench.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp_path = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{''.join(path.suffixes)}")
        try:
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the kernel applies the umask
            break
        except FileExistsError:
            continue
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


def read_manifest(path: Path) -> dict[str, Any]:
    """A run's ``manifest.json``, refused when another store or manifest schema wrote it.

    Raises:
        ValueError: The manifest's ``store_schema_version`` or ``schema_version`` is not this msbench's; the message
            names the file, both versions and what to do.
    """
    manifest = read_json(path)
    for key, current in (("store_schema_version", STORE_SCHEMA_VERSION), ("schema_version", MANIFEST_SCHEMA_VERSION)):
        found = manifest.get(key, current)  # manifests before the key existed are of the first version that had it
        if found != current:
            newer = isinstance(found, int) and found > current
            action = (
                "upgrade msbench to read it"
                if newer
                else "use a new --results folder (this one stays readable as plain files)"
            )
            raise ValueError(
                f"{path}: {key} {found!r}, this msbench reads {current}: the run was written by "
                f"{'a newer' if newer else 'another'} msbench; {action}."
            )
    return manifest


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def read_table(path: Path, **read_csv: Any) -> pd.DataFrame:
    """A CSV the store wrote, or an empty frame when it is missing or was written from an empty table."""
    path = Path(path)
    return pd.read_csv(path, **read_csv) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (Path, tuple, set)):
        return str(value) if isinstance(value, Path) else list(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


@contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive ``flock`` on ``path`` for the block; yields whether this process holds it.

    With ``blocking`` False it yields False at once (holding nothing) when another process holds the lock. The lock
    dies with its process, so a killed worker never leaves a stale lock behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class RunStore:
    """The files of one run: its manifest, its jobs (committed, in flight) and the tables derived from them."""

    def __init__(self, results: Path, run_id: str) -> None:
        self.results = Path(results)
        self.run_id = run_id
        self.root = self.results / "runs" / run_id
        self.jobs_dir = self.root / "jobs"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def lock_path(self) -> Path:
        return self.root / ".run.lock"

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def partial_dir(self, job_id: str) -> Path:
        return self.jobs_dir / f".partial-{job_id}"

    def job_lock_path(self, job_id: str) -> Path:
        return self.jobs_dir / f".{job_id}.lock"

    def job_record(self, job_id: str) -> dict[str, Any] | None:
        """The committed job's ``job.json`` (None when the job is absent or its record unreadable)."""
        path = self.job_dir(job_id) / JOB_RECORD
        if not path.is_file():
            return None
        try:
            return read_json(path)
        except ValueError:
            return None

    def committed_jobs(self) -> list[tuple[str, dict[str, Any]]]:
        """Every committed job with its record, by job id."""
        if not self.jobs_dir.is_dir():
            return []
        found = []
        for path in sorted(p for p in self.jobs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            record = self.job_record(path.name)
            if record is not None:
                found.append((path.name, record))
        return found

    def job_tables(self, name: str, *, job_ids: list[str]) -> pd.DataFrame:
        """One table (``cases.csv``, ``lesions.csv``) concatenated over the given committed jobs."""
        frames = [frame for j in job_ids if not (frame := read_table(self.job_dir(j) / name)).empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def commit(self, job_id: str) -> Path:
        """Moves the finished ``.partial-`` folder into place by one rename; an older committed job is replaced."""
        partial, final = self.partial_dir(job_id), self.job_dir(job_id)
        old = self.jobs_dir / f".replaced-{job_id}-{os.getpid()}"
        if final.exists():
            os.rename(final, old)
        os.rename(partial, final)
        shutil.rmtree(old, ignore_errors=True)
        return final

    def reopen(self, job_id: str) -> None:
        """Turns a committed job that must run again (failed) back into its ``.partial-`` folder to resume it."""
        partial = self.partial_dir(job_id)
        if partial.exists() or not self.job_dir(job_id).exists():
            return
        os.rename(self.job_dir(job_id), partial)
        (partial / JOB_RECORD).unlink(missing_ok=True)


def find_run(results: Path, run: str) -> RunStore:
    """The run whose id is ``run``, else the one run whose id starts with it.

    Raises:
        ValueError: No run or several runs match; the message lists the runs there.
    """
    runs = sorted(p.name for p in (Path(results) / "runs").glob("*") if (p / "manifest.json").is_file())
    matches = [r for r in runs if r == run] or [r for r in runs if r.startswith(run)]
    if len(matches) != 1:
        found = "no run" if not matches else f"{len(matches)} runs ({', '.join(matches)})"
        raise ValueError(f"run {run!r} matches {found} in {results}; runs there: {', '.join(runs) or 'none'}.")
    return RunStore(results, matches[0])


def check_store_version(results: Path) -> None:
    """Refuses a results folder written by msbench's first store (``runs/*/folds/``, ``index.csv``)."""
    results = Path(results)
    old = [p.parent.name for p in (results / "runs").glob("*/folds")]
    if old or ((results / "index.csv").is_file() and not (results / "msbench.sqlite").exists()):
        raise ValueError(
            f"{results} was written by an older msbench results store (one folder per fold under runs/*/folds/"
            f"{', e.g. ' + old[0] if old else ''}, and index.csv); this version stores jobs and a SQLite index. "
            "Use a new --results folder (the old one stays readable as plain CSV files), or delete the old folder."
        )


def export_run(results: Path, run_id: str, out: Path) -> list[Path]:
    """Plain files of one run for people who want files: its tables, its jobs, one prediction CSV per job.

    Writes ``manifest.json``, ``cases.csv``, ``lesions.csv``, ``summary.csv``, ``jobs.csv`` (one row per committed
    job: status, code hash, commit, timings, error) and ``predictions/<job_id>.csv`` (one row per predicted scan: the
    prediction and probability files, absolute paths, and the scan's Dice against each reference).

    Raises:
        FileNotFoundError: No such run in ``results``.
        ValueError: ``out`` exists and is not an empty folder.
    """
    store = RunStore(results, run_id)
    if not store.manifest_path.is_file():
        raise FileNotFoundError(f"no run {run_id!r} in {results} (see 'msbench runs list --results {results}').")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} exists and is not an empty folder; pick a new folder for the export.")
    written = [write_json(out / "manifest.json", read_manifest(store.manifest_path))]
    for name in ("cases.csv", "lesions.csv", "summary.csv"):
        if (store.root / name).is_file():
            out.mkdir(parents=True, exist_ok=True)
            written.append(Path(shutil.copyfile(store.root / name, out / name)))
    jobs = store.committed_jobs()
    keys = ("job_id", "fold", "seed", "status", "code_hash", "fit_seconds", "predict_seconds", "wall_seconds", "error")
    rows = [
        {**{k: record.get(k) for k in keys}, "commit": (record.get("git") or {}).get("commit")} for _, record in jobs
    ]
    written.append(write_csv(out / "jobs.csv", pd.DataFrame(rows)))
    for job_id, _ in jobs:
        folder = store.job_dir(job_id)
        cases = read_table(folder / "cases.csv")
        if cases.empty:
            continue
        table = cases.pivot_table(index="case", columns="reference", values="dice").add_prefix("dice_").reset_index()
        for kind in ("prediction", "probability"):
            sub = folder / ("predictions" if kind == "prediction" else "probabilities")
            paths = [sub / f"{c}.nii.gz" for c in table["case"]]
            table[f"{kind}_file"] = [str(p.resolve()) if p.is_file() else "" for p in paths]
        written.append(write_csv(out / "predictions" / f"{job_id}.csv", table))
    return written
