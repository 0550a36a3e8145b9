"""The benchmark runner: every requested method under one protocol, as jobs (method x fold x seed), resumable.

A run is planned (``plan.py``) as one job per (fold, seed) of each method; ``job.py`` fits on the fold's training
patients, selects on its validation patient only, predicts and scores the test patient's scans. A job committed by
the same code is reused; one committed by other code is rerun (or kept and marked stale with ``reuse_stale``); an
interrupted or failed one resumes from its checkpoint; one another process is running is left to it. A failing job is
recorded and the run goes on. Run-level tables and the manifest are re-derived from the committed jobs under the run
lock.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from msbench.methods import get_card, resolve_methods

from . import manifest as mf
from . import options
from .aggregation import SHIFTED_SUMMARY, primary_dice, split_domains, summarize_run
from .executors import WorkItem, check_executor, run_local, run_ray
from .job import Job, epochs_done
from .metrics import SUITE_VERSION, MetricParams
from .plan import MethodOutcome, RunPlan, RunRequest, RunSetup, plan_run, prepare_run, with_batch_size
from .progress import JobBoard
from .store import (
    RunStore,
    check_store_version,
    file_lock,
    index_job,
    index_run,
    open_index,
    read_json,
    read_table,
    write_csv,
    write_json,
)

console = Console(stderr=True)


def run_benchmark(request: RunRequest) -> list[MethodOutcome]:
    """Runs every requested method; returns one outcome per method (never raises for a method's own failure).

    With ``request.baseline`` the training-free ``threshold`` baseline runs first when it was not asked for (about a
    second per fold), so that every method's manifest records whether it beat it on the same folds.

    Raises:
        KeyError, ValueError: An option cannot be honoured (unknown method, device, modality, fold, protocol); raised
            before anything is written to the results store.
    """
    options.check_device_option(request.device)
    options.check_modality_names(request.modalities)
    check_executor(request.executor)
    check_store_version(request.results)
    names = resolve_methods(request.methods)
    if request.baseline and BASELINE not in names:
        names = [BASELINE, *names]
    setup = prepare_run(request)
    names = options.drop_inter_rater_without_second_rater(names, request.methods, setup.spec)
    if setup.shifted is not None:  # rater 2 must exist on the test data set too
        names = options.drop_inter_rater_without_second_rater(names, request.methods, setup.shifted.spec)
    for name in names:
        options.check_modalities_on_disk(request.modalities or get_card(name).modalities, setup.cases, name)
        if setup.shifted is not None:
            options.check_modalities_on_disk(request.modalities or get_card(name).modalities, setup.shifted.cases, name)
    plans = [
        plan_run(with_batch_size(get_card(name), setup.budget.name, request.batch_size), request, setup)
        for name in names
    ]
    _execute(plans, request)
    outcomes = []
    for plan in plans:
        outcome = plan.outcome
        outcome.dice_mean, outcome.status = _refresh_run(
            plan.store, setup, request.metric_params, plan.code, request.reuse_stale
        )
        shifted = _read_shifted(plan.store)
        if setup.shifted is not None and shifted is not None and not shifted.empty:
            outcome.shifted_dice = primary_dice(shifted, setup.shifted.spec.primary_reference)
        outcomes.append(outcome)
    _record_baseline(outcomes, request.results)
    return outcomes


BASELINE = "threshold"


def _record_baseline(outcomes: list[MethodOutcome], results: Path) -> None:
    """When the training-free baseline ran in the same run, each method's manifest records whether it beat it."""
    baseline = next((o for o in outcomes if o.method == BASELINE and o.dice_mean is not None), None)
    if baseline is None:
        return
    for outcome in outcomes:
        if outcome is baseline:
            continue
        outcome.baseline_dice = baseline.dice_mean
        store = RunStore(results, outcome.run_id)
        with file_lock(store.lock_path):
            manifest = read_json(store.manifest_path)
            manifest["baseline"] = {
                "method": BASELINE,
                "run_id": baseline.run_id,
                "dice_mean": baseline.dice_mean,
                "method_dice_mean": outcome.dice_mean,
                "beats_baseline": outcome.beats_baseline,
            }
            if baseline.shifted_dice is not None and outcome.shifted_dice is not None:
                manifest["baseline"].update(
                    shifted_dice_mean=baseline.shifted_dice,
                    method_shifted_dice_mean=outcome.shifted_dice,
                    beats_baseline_shifted=outcome.shifted_dice > baseline.shifted_dice,
                )
            write_json(store.manifest_path, manifest)
            with open_index(results) as conn:
                index_run(conn, manifest, _read_summary(store), _read_shifted(store))


def _execute(plans: list[RunPlan], request: RunRequest) -> None:
    """Claims every job that must run (its lock is held until it is committed), runs them on the executor, commits."""
    board = JobBoard(console, live=request.progress)
    by_key: dict[str, tuple[RunPlan, WorkItem]] = {}
    with ExitStack() as locks:
        for plan in plans:
            for job in plan.jobs:
                key, label = f"{job.run_id}/{job.job_id}", f"{plan.card.name} fold {job.fold} seed {job.seed}"
                folder, state = _claim(plan, job, request, locks, label)
                epochs = plan.card.recipe(plan.inputs.budget).epochs if plan.card.trainable else None
                board.add(key, label, folder or plan.store.job_dir(job.job_id), epochs, state)
                if folder is not None:
                    by_key[key] = (plan, WorkItem(plan.card, job, plan.inputs, folder))
        items = [item for _, item in by_key.values()]
        with board:
            started = lambda item: board.started(f"{item.job.run_id}/{item.job.job_id}")  # noqa: E731
            if request.executor == "ray":
                finished = run_ray(items, started, address=request.ray_address, cpus_per_job=request.cpus_per_job)
            else:
                finished = run_local(items, started)
            for item, record in finished:
                key = f"{item.job.run_id}/{item.job.job_id}"
                plan = by_key[key][0]
                plan.store.commit(item.job.job_id)
                with open_index(request.results) as conn:
                    index_job(conn, plan.store, item.job.job_id, record)
                _count(plan.outcome, item.job, record)
                board.finished(key, record["status"], record.get("error", ""))


def _claim(plan: RunPlan, job: Job, request: RunRequest, locks: ExitStack, label: str) -> tuple[Path | None, str]:
    """Decides whether this process runs a job, and takes its lock if so.

    Returns ``(partial folder, "queued")`` when it runs here (the lock is held until ``locks`` closes),
    ``(None, "reused")`` when it is committed already, ``(None, "elsewhere")`` when another process holds its lock.
    """
    store, outcome = plan.store, plan.outcome
    if not locks.enter_context(file_lock(store.job_lock_path(job.job_id), blocking=False)):
        outcome.n_elsewhere += 1
        console.print(f"{label}: running in another process; left to it")
        return None, "elsewhere"
    record = store.job_record(job.job_id)
    if record and record.get("status") == "ok":
        if _reusable(record, job.code_hash, request.reuse_stale):
            outcome.n_reused += 1
            return None, "reused"
        console.print(f"{label}: committed by other code (code hash {record.get('code_hash')}); running it again")
    elif record:
        store.reopen(job.job_id)  # a failed job resumes from the checkpoint it left
    folder = store.partial_dir(job.job_id)
    done = epochs_done(folder / "work") if folder.exists() else 0
    if done:
        console.print(f"{label}: resuming from its checkpoint after epoch {done}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder, "queued"


def _reusable(record: dict[str, Any], code: str, reuse_stale: bool) -> bool:
    """Whether a committed job counts for this run: made by this code, or kept on ``--reuse-stale``.

    A stale job is kept only while its numbers stay comparable: scored by the same major metric-suite version
    (another major changes numbers, e.g. what an empty mask gives).
    """
    if record.get("code_hash") == code:
        return True
    same_suite = str(record.get("suite_version", "")).split(".")[0] == SUITE_VERSION.split(".")[0]
    return reuse_stale and same_suite


def _count(outcome: MethodOutcome, job: Job, record: dict[str, Any]) -> None:
    if record["status"] == "ok":
        outcome.n_ok += 1
        return
    outcome.n_failed += 1
    outcome.errors.append(f"fold {job.fold} seed {job.seed}: {record['error']}")
    console.print(f"[red]{job.method} fold {job.fold} seed {job.seed} failed:[/red] {record['error']}")


def _refresh_run(
    store: RunStore, setup: RunSetup, params: MetricParams, code: str, reuse_stale: bool
) -> tuple[float | None, str]:
    """Re-derives the run's tables and manifest from its committed jobs, under the run lock; indexes them.

    Returns the mean Dice against the primary reference over the usable jobs and the run's status.
    """
    with file_lock(store.lock_path):
        jobs = store.committed_jobs()
        usable = [j for j, r in jobs if r.get("status") == "ok" and _reusable(r, code, reuse_stale)]
        stale = [j for j, r in jobs if r.get("status") == "ok" and r.get("code_hash") != code]
        failed = [j for j, r in jobs if r.get("status") != "ok"]
        rows = store.job_tables("cases.csv", job_ids=usable)
        cases, shifted_cases = split_domains(rows)
        summary = summarize_run(cases, setup.spec.references, setup.cases, params) if not cases.empty else None
        for name, frame in (("cases", rows), ("lesions", store.job_tables("lesions.csv", job_ids=usable))):
            write_csv(store.root / f"{name}.csv", frame)
        write_csv(store.root / "summary.csv", summary if summary is not None else pd.DataFrame())
        shifted = None
        if setup.shifted is not None:
            shifted = pd.DataFrame()
            if not shifted_cases.empty:
                spec = setup.shifted.spec
                shifted = summarize_run(shifted_cases, spec.references, setup.shifted.cases, params)
            write_csv(store.root / SHIFTED_SUMMARY, shifted)
        status = "failed" if failed and not usable else ("partial" if failed else ("ok" if usable else "empty"))
        manifest = read_json(store.manifest_path)
        records = dict(jobs)
        manifest.update(
            status=status,
            jobs=sorted(usable),
            folds=sorted({records[j]["fold"] for j in usable}),
            seeds=sorted({records[j]["seed"] for j in usable}),
            commits=sorted({str((records[j].get("git") or {}).get("commit")) for j in usable}),
            code_hash=code,
            stale_jobs=sorted(set(stale) & set(usable)),
            n_jobs_ok=len(usable),
            n_jobs_failed=len(failed),
            errors=[f"{j}: {records[j].get('error')}" for j in failed],
            updated=mf.now_iso(),
        )
        write_json(store.manifest_path, manifest)
        with open_index(store.results) as conn:
            for job_id in stale:
                conn.execute("UPDATE jobs SET stale=1 WHERE run_id=? AND job_id=?", (store.run_id, job_id))
            index_run(conn, manifest, _read_summary(store), shifted)
    return (primary_dice(summary, setup.spec.primary_reference) if summary is not None else None), status


def _read_summary(store: RunStore) -> pd.DataFrame:
    return read_table(store.root / "summary.csv", dtype={"seed": str})


def _read_shifted(store: RunStore) -> pd.DataFrame | None:
    """A cross-dataset run's shifted summary (None for a run without a test dataset: its index rows stay)."""
    path = store.root / SHIFTED_SUMMARY
    return read_table(path, dtype={"seed": str}) if path.is_file() else None
