"""The benchmark runner: every requested method under one protocol, as jobs (method x fold x seed), resumable.

A run is planned (``plan.py``) as one job per (fold, seed) of each method; ``job.py`` fits on the fold's training
patients, selects on its validation patient only, predicts and scores the test patient's scans. A job committed by
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
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from msbench.methods import get_card, resolve_methods

from . import manifest as mf
from . import options
from .aggregation import SHIFTED_SUMMARY, primary_dice, split_domains, summarize_run
from .executors import Started, WorkItem, check_executor, run_local, run_ray
from .job import Job, epochs_done
from .metrics import SUITE_VERSION, MetricParams
from .plan import MethodOutcome, RunPlan, RunRequest, RunSetup, plan_run, prepare_run, with_batch_size
from .progress import JobBoard
from .run_report import BASELINE
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
        RunInterrupted: Ctrl-C (or SIGTERM under :func:`interruptible`); its message says what was kept.
    """
    since = mf.now_iso()  # a job another process commits after this is counted as run there, not reused
    try:
        setup, plans = _plan(request)
    except KeyboardInterrupt:
        raise RunInterrupted("interrupted before any job started; run the same command again to start") from None
    _execute(plans, request, since)
    try:
        outcomes = [_finish(plan, setup, request) for plan in plans]
        _record_baseline(outcomes, request.results)
    except KeyboardInterrupt:
        raise RunInterrupted(_kept(plans, [])) from None
    return outcomes


def _plan(request: RunRequest) -> tuple[RunSetup, list[RunPlan]]:
    """Checks the request, loads the data and plans one run per method (nothing runs yet)."""
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
    return setup, plans


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


def _kept(plans: list[RunPlan], running: list[_Slot]) -> str:
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


@dataclass(frozen=True)
class _Slot:
    """One job of the run as this process sees it: which run it belongs to, its lock and its label."""

    plan: RunPlan
    job: Job

    @property
    def key(self) -> str:
        return _key(self.job)

    @property
    def label(self) -> str:
        return f"{self.plan.card.name} fold {self.job.fold} seed {self.job.seed}"

    @property
    def lock_path(self) -> Path:
        return self.plan.store.job_lock_path(self.job.job_id)


def _key(job: Job) -> str:
    return f"{job.run_id}/{job.job_id}"


WAIT_POLL_S = 1.0
"""How often a process whose own queue is empty looks whether another process let go of a job it waits for."""


def _execute(plans: list[RunPlan], request: RunRequest, since: str) -> None:
    """Runs every job no process has committed, sharing them with any other process running the same jobs.

    A job is claimed when this process is about to start it (its lock is taken, then whether it was committed
    meanwhile is checked again), not when the run is planned, so N identical commands split the jobs. A job another
    process holds is passed over; once this process has none left it waits for those (a killed process's job is then
    resumed here), so every command ends with every job committed and the whole run's table.
    """
    board = JobBoard(console, live=request.progress)
    todo: list[_Slot] = []
    for plan in plans:
        epochs = plan.card.recipe(plan.inputs.budget).epochs if plan.card.trainable else None
        for job in plan.jobs:
            slot = _Slot(plan, job)
            board.add(slot.key, slot.label, plan.store.partial_dir(job.job_id), epochs)
            if not _settled(slot, request, since, board):
                todo.append(slot)
    held: dict[str, ExitStack] = {}
    slots = {slot.key: slot for slot in todo}
    try:
        with board, ExitStack() as cleanup:
            cleanup.callback(lambda: [lock.close() for lock in held.values()])
            while todo:
                busy: list[_Slot] = []
                claimed = _claimed(todo, busy, held, request, since, board)
                for item, record in _executor(request)(claimed, lambda item: board.started(_key(item.job))):
                    key = _key(item.job)
                    slot = slots[key]
                    slot.plan.store.commit(item.job.job_id)
                    with open_index(request.results) as conn:
                        index_job(conn, slot.plan.store, item.job.job_id, record)
                    held.pop(key).close()
                    _count(slot.plan.outcome, item.job, record)
                    board.finished(key, record["status"], record.get("error", ""))
                todo = busy
                if todo:
                    _wait_for_others(todo, board)
    except KeyboardInterrupt:
        raise RunInterrupted(_kept(plans, [slots[key] for key in held])) from None


def _executor(request: RunRequest) -> Callable[[Iterable[WorkItem], Started], Iterator[tuple[WorkItem, dict]]]:
    if request.executor == "ray":
        return partial(run_ray, address=request.ray_address, cpus_per_job=request.cpus_per_job)
    return run_local


def _claimed(
    slots: list[_Slot],
    busy: list[_Slot],
    held: dict[str, ExitStack],
    request: RunRequest,
    since: str,
    board: JobBoard,
) -> Iterator[WorkItem]:
    """The jobs this process runs, each claimed only when the executor asks for it (lazily: a generator).

    A job another process holds goes to ``busy``; one committed meanwhile is counted and passed over. The lock of a
    claimed job stays in ``held`` until the job is committed.
    """
    for slot in slots:
        lock = ExitStack()
        if not lock.enter_context(file_lock(slot.lock_path, blocking=False)):
            busy.append(slot)
            board.elsewhere(slot.key)
            continue
        if _settled(slot, request, since, board):
            lock.close()
            continue
        held[slot.key] = lock
        yield WorkItem(slot.plan.card, slot.job, slot.plan.inputs, _prepare(slot))


def _settled(slot: _Slot, request: RunRequest, since: str, board: JobBoard) -> bool:
    """Whether a job needs no run here: committed before this run started (reused) or by another process since.

    A job another process finished since ``since`` (this process's start) counts as run there, failed ones too: a
    job runs once per round of commands; the next command resumes a failed one.
    """
    record = slot.plan.store.job_record(slot.job.job_id)
    if not record:
        return False
    outcome, code = slot.plan.outcome, slot.plan.code
    meanwhile = str(record.get("finished", "")) >= since and record.get("code_hash") == code
    if meanwhile:
        outcome.n_elsewhere += 1
        if record.get("status") != "ok":
            outcome.errors.append(f"fold {slot.job.fold} seed {slot.job.seed} (another process): {record.get('error')}")
        board.finished(slot.key, str(record.get("status")), here=False)
        return True
    if record.get("status") == "ok" and _reusable(record, code, request.reuse_stale):
        outcome.n_reused += 1
        board.finished(slot.key, "reused")
        return True
    return False


def _prepare(slot: _Slot) -> Path:
    """The ``.partial-`` folder of a claimed job: a failed job reopened, an interrupted one resumed."""
    store, job = slot.plan.store, slot.job
    record = store.job_record(job.job_id)
    if record and record.get("status") == "ok":
        console.print(f"{slot.label}: committed by other code (code hash {record.get('code_hash')}); running it again")
    elif record:
        store.reopen(job.job_id)  # a failed job resumes from the checkpoint it left
    folder = store.partial_dir(job.job_id)
    done = epochs_done(folder / "work") if folder.exists() else 0
    if done:
        console.print(f"{slot.label}: resuming from its checkpoint after epoch {done}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait_for_others(slots: list[_Slot], board: JobBoard) -> None:
    """Waits, with one line saying for what, until another process lets go of one of ``slots``."""
    names = ", ".join(slot.label for slot in slots[:3]) + (f" and {len(slots) - 3} more" if len(slots) > 3 else "")
    board.note(f"waiting for {len(slots)} job(s) running in another process: {names}")
    while not any(_free(slot.lock_path) for slot in slots):
        time.sleep(WAIT_POLL_S)


def _free(lock_path: Path) -> bool:
    with file_lock(lock_path, blocking=False) as free:
        return free


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
