"""The benchmark runner: every requested method under one protocol, as jobs (method x fold x seed), resumable.

A run is planned (``plan.py``) as one job per (fold, seed) of each method; ``job.py`` fits on the fold's training
patients, selects on its validation patient only, predicts and scores the test patient's scans, all through the one
door (``fitting.py``), and keeps the job's records and files. A job committed by
the same code is reused; one committed by other code is rerun (or kept and marked stale with ``reuse_stale``); an
interrupted or failed one resumes from its checkpoint. A failing job is recorded and the run goes on. Run-level tables
and the manifest are re-derived from the committed jobs under the run lock.

Several processes running the same command on one store share its jobs: each claims a job (its lock) only when it is
about to start it, passes over the ones another process holds, and at the end waits for those, so every job runs once
and every process ends with the whole run's tables and says what it ran, what others ran and what it reused.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from msbench.datasets import DEFAULT_MODALITIES
from msbench.methods import MethodCard, get_card, resolve_methods

from . import manifest as mf
from . import options
from ._claims import Slot, Snapshot, claimed, committed_before, job_key, reusable, settled, wait_for_others
from .aggregation import SHIFTED_SUMMARY, human_reference, primary_dice, run_scores, split_domains, summarize_run
from .executors import Started, WorkItem, check_executor, run_local, run_ray
from .job import Job, epochs_done
from .metrics import MetricParams
from .plan import (
    MethodOutcome,
    RunPlan,
    RunRequest,
    RunSetup,
    check_tuning_study,
    plan_run,
    prepare_run,
)
from .progress import JobBoard
from .run_report import BASELINE
from .store import (
    RATER_CASES,
    RATER_SUMMARY,
    RUN_SCORES,
    RunStore,
    check_store_version,
    file_lock,
    index_job,
    index_raters,
    index_run,
    mark_stale,
    open_index,
    read_manifest,
    read_raters,
    read_table,
    write_csv,
    write_json,
)
from .tuning import TunedParams, load_tuned

console = Console(stderr=True)


def run_benchmark(request: RunRequest) -> list[MethodOutcome]:
    """Runs every requested method; returns one outcome per method (never raises for a method's own failure).

    With ``request.baseline`` the training-free ``threshold`` baseline runs first when it was not asked for (about a
    second per fold), so that every method's manifest records whether it beat it on the same folds.

    Raises:
        KeyError, ValueError: An option cannot be honoured (unknown method, device, modality, fold, protocol); raised
            before anything is written to the results store.
        RunInterrupted: Ctrl-C (or SIGTERM under :func:`interruptible`); its message says what was kept.
    """
    try:
        setup, plans = _plan(request)
        before = committed_before(plans)  # a job committed after this by another process is counted as run there
    except KeyboardInterrupt:
        raise RunInterrupted("interrupted before any job started; run the same command again to start") from None
    _execute(plans, request, before)
    try:
        outcomes = [_finish(plan, setup, request) for plan in plans]
        _record_baseline(outcomes, request.results)
    except KeyboardInterrupt:
        raise RunInterrupted(_kept(plans, [])) from None
    return outcomes


def _plan(request: RunRequest) -> tuple[RunSetup, list[RunPlan]]:
    """Checks the request, loads the data and plans one run per method (nothing runs yet)."""
    options.check_device_option(request.device)
    options.check_batch_size(request.batch_size)
    options.check_modality_names(request.modalities)
    check_executor(request.executor)
    check_store_version(request.results)
    names = resolve_methods(request.methods)
    check_tuning_study(request)
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
    cards = [get_card(name) for name in names]
    plans = [plan_run(card, request, setup, _load_tuned(card, request, setup)) for card in cards]
    return setup, plans


def _load_tuned(card: MethodCard, request: RunRequest, setup: RunSetup) -> TunedParams | None:
    """``--tuned``: the best parameters of the method's finished study (None without ``--tuned`` or a search space).

    Raises:
        ValueError: No finished study; the message names the ``msbench tune`` command that finishes it.
    """
    if not request.tuned or not card.search_space:
        return None
    return load_tuned(
        card.name,
        setup.spec.name,
        setup.protocol,
        setup.budget.name,
        request.results,
        storage=request.tuning_storage,
        study=request.tuning_study if card.name in resolve_methods(request.methods) else None,
        default_protocol=request.protocol is None,
    )


def _finish(plan: RunPlan, setup: RunSetup, request: RunRequest) -> MethodOutcome:
    """The method's outcome once every job is committed: the run's tables re-derived, its Dice read back."""
    outcome = plan.outcome
    outcome.dice_mean, outcome.status = _refresh_run(
        plan.store, setup, request.metric_params, plan.code, request.reuse_stale
    )
    shifted = _read_shifted(plan.store)
    if setup.shifted is not None and shifted is not None and not shifted.empty:
        outcome.shifted_dice = primary_dice(shifted, setup.shifted.spec.primary_reference)
    return outcome


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on Ctrl-C (or SIGTERM); ``message`` says what was kept and how to resume.

    ``exit_status`` is the shell's for the signal: 130 for SIGINT, 143 for SIGTERM (set by :func:`interruptible`).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.exit_status = 128 + signal.SIGINT


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM stops a run as Ctrl-C does, with the same line and exit status 143 instead of 130.

    The handler raises a plain ``KeyboardInterrupt``, the one exception every cleanup path already handles as an
    interrupt (``subprocess.Popen`` then leaves a worker to die with its parent instead of waiting for it).
    """
    received = [signal.SIGINT]

    def on_sigterm(signum: int, frame: object) -> None:
        received[0] = signal.Signals(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread only
        yield
        return
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except RunInterrupted as stop:
        stop.exit_status = 128 + received[0]
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _kept(plans: list[RunPlan], running: list[Slot]) -> str:
    """The interrupted run's one line: jobs committed, what the jobs in flight saved, how to resume."""
    total = sum(len(plan.jobs) for plan in plans)
    committed = sum(plan.store.job_record(job.job_id) is not None for plan in plans for job in plan.jobs)
    parts = [f"{committed} of {total} jobs committed"]
    for slot in running:
        folder = slot.plan.store.partial_dir(slot.job.job_id) / "work"
        done = epochs_done(folder) if folder.exists() else 0
        if done:
            parts.append(f"{slot.label} saved at epoch {done}")
        else:
            parts.append(f"{slot.label} had saved nothing yet (it starts over)")
    return f"interrupted: {', '.join(parts)}; run the same command again to resume"


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
            manifest = read_manifest(store.manifest_path)
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


def _execute(plans: list[RunPlan], request: RunRequest, before: Snapshot) -> None:
    """Runs every job no process has committed, sharing them with any other process running the same jobs.

    A job is claimed when this process is about to start it (its lock is taken, then whether it was committed
    meanwhile is checked again), not when the run is planned, so N identical commands split the jobs. A job another
    process holds is passed over; once this process has none left it waits for those (a killed process's job is then
    resumed here), so every command ends with every job committed and the whole run's table.
    """
    board = JobBoard(console, live=request.progress)
    todo: list[Slot] = []
    for plan in plans:
        epochs = plan.card.recipe(plan.inputs.budget).epochs if plan.card.trainable else None
        for job in plan.jobs:
            slot = Slot(plan, job)
            board.add(slot.key, slot.label, plan.store.partial_dir(job.job_id), epochs)
            if not settled(slot, request, before, board):
                todo.append(slot)
    held: dict[str, ExitStack] = {}
    slots = {slot.key: slot for slot in todo}
    try:
        with board, ExitStack() as cleanup:
            cleanup.callback(_close_all, held)
            while todo:
                busy: list[Slot] = []
                drawn = claimed(todo, busy, held, request, before, board)
                for item, record in _executor(request)(drawn, lambda item: board.started(job_key(item.job))):
                    key = job_key(item.job)
                    slot = slots[key]
                    slot.plan.store.commit(item.job.job_id)
                    with open_index(request.results) as conn:
                        index_job(conn, slot.plan.store, item.job.job_id, record)
                    held.pop(key).close()
                    _count(slot.plan.outcome, item.job, record)
                    board.finished(key, record["status"], record.get("error", ""))
                todo = busy
                if todo:
                    wait_for_others(todo, board)
    except KeyboardInterrupt:
        raise RunInterrupted(_kept(plans, [slots[key] for key in held])) from None


def _executor(request: RunRequest) -> Callable[[Iterable[WorkItem], Started], Iterator[tuple[WorkItem, dict]]]:
    if request.executor == "ray":
        return partial(run_ray, address=request.ray_address, cpus_per_job=request.cpus_per_job)
    return run_local


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

    The rows the leaderboard shows but cannot derive from the index alone are computed here, once: each reference's
    ISBI score and volume correlation (``scores.csv``) and, for the inter-rater run, its rater against the truth
    (``raters.csv``, ``raters_summary.csv``).

    Returns the mean Dice against the primary reference over the usable jobs and the run's status.
    """
    with file_lock(store.lock_path):
        jobs = store.committed_jobs()
        usable = [j for j, r in jobs if r.get("status") == "ok" and reusable(r, code, reuse_stale)]
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
        manifest = read_manifest(store.manifest_path)
        scores = [run_scores(cases)]
        if manifest["method"] == options.INTER_RATER:  # the human reference rows, scored once and stored
            modalities = manifest.get("modalities") or DEFAULT_MODALITIES
            primary = manifest.get("reference", "")
            raters = human_reference(cases, setup.spec.references, primary, setup.cases, params, modalities)
            write_csv(store.root / RATER_CASES, raters[0])
            write_csv(store.root / RATER_SUMMARY, raters[1])
            scores.append(run_scores(raters[0], rater=primary))
        write_csv(store.root / RUN_SCORES, pd.concat(scores, ignore_index=True))
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
            mark_stale(conn, store.run_id, stale)
            index_run(conn, manifest, _read_summary(store), shifted)
            index_raters(conn, store.run_id, *read_raters(store.root))
    return (primary_dice(summary, setup.spec.primary_reference) if summary is not None else None), status


def _read_summary(store: RunStore) -> pd.DataFrame:
    return read_table(store.root / "summary.csv", dtype={"seed": str})


def _read_shifted(store: RunStore) -> pd.DataFrame | None:
    """A cross-dataset run's shifted summary (None for a run without a test dataset: its index rows stay)."""
    path = store.root / SHIFTED_SUMMARY
    return read_table(path, dtype={"seed": str}) if path.is_file() else None


def _close_all(held: dict[str, ExitStack]) -> None:
    """Releases every claim still held (on the way out, whatever ends the loop)."""
    for lock in held.values():
        lock.close()
