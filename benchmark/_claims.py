"""Which process runs a job: claimed (its lock taken) when a worker is about to start it, never when it is planned.

N processes running the same command on one store share its jobs this way: each draws the next job, takes its lock
without waiting (a job another process holds is passed over, to be waited for at the end), and checks again whether
the job was committed meanwhile. A job committed before this process started (as :func:`committed_before` saw it)
is reused; one committed by another process since is counted as run there. Records are compared, not clocks: a
job committed in the same second this process started is still told apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .executors import WorkItem
from .job import Job, epochs_done
from .metrics import SUITE_VERSION
from .plan import RunPlan, RunRequest
from .progress import JobBoard
from .store import file_lock


@dataclass(frozen=True)
class Slot:
    """One job of the run as this process sees it: which run it belongs to, its lock and its label."""

    plan: RunPlan
    job: Job

    @property
    def key(self) -> str:
        return job_key(self.job)

    @property
    def label(self) -> str:
        return f"{self.plan.card.name} fold {self.job.fold} seed {self.job.seed}"

    @property
    def lock_path(self) -> Path:
        return self.plan.store.job_lock_path(self.job.job_id)


def job_key(job: Job) -> str:
    return f"{job.run_id}/{job.job_id}"


WAIT_POLL_S = 1.0
"""How often a process whose own queue is empty looks whether another process let go of a job it waits for."""


Snapshot = dict[str, tuple[Any, ...]]
"""Each job's committed record when this process started, as :func:`_stamp` (absent: no record then)."""


def _stamp(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record.get("finished"), record.get("status"), record.get("code_hash"), record.get("wall_seconds"))


def committed_before(plans: list[RunPlan]) -> Snapshot:
    """What every job's record was before this process ran anything (what :func:`settled` compares with)."""
    snapshot: Snapshot = {}
    for plan in plans:
        for job in plan.jobs:
            record = plan.store.job_record(job.job_id)
            if record:
                snapshot[job_key(job)] = _stamp(record)
    return snapshot


def claimed(
    slots: list[Slot],
    busy: list[Slot],
    held: dict[str, ExitStack],
    request: RunRequest,
    before: Snapshot,
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
        if settled(slot, request, before, board):
            lock.close()
            continue
        held[slot.key] = lock
        yield WorkItem(slot.plan.card, slot.job, slot.plan.inputs, prepare(slot, board))


def settled(slot: Slot, request: RunRequest, before: Snapshot, board: JobBoard) -> bool:
    """Whether a job needs no run here: committed before this run started (reused) or by another process since.

    A job whose record changed since ``before`` (this process's start) was run by another process, failed ones too:
    a job runs once per round of commands; the next command resumes a failed one.
    """
    record = slot.plan.store.job_record(slot.job.job_id)
    if not record:
        return False
    outcome, code = slot.plan.outcome, slot.plan.code
    meanwhile = _stamp(record) != before.get(slot.key) and record.get("code_hash") == code
    if meanwhile:
        outcome.n_elsewhere += 1
        if record.get("status") != "ok":
            outcome.errors.append(f"fold {slot.job.fold} seed {slot.job.seed} (another process): {record.get('error')}")
        board.finished(slot.key, str(record.get("status")), here=False)
        return True
    if record.get("status") == "ok" and reusable(record, code, request.reuse_stale):
        outcome.n_reused += 1
        board.finished(slot.key, "reused")
        return True
    return False


def prepare(slot: Slot, board: JobBoard) -> Path:
    """The ``.partial-`` folder of a claimed job: a failed job reopened, an interrupted one resumed."""
    store, job = slot.plan.store, slot.job
    record = store.job_record(job.job_id)
    if record and record.get("status") == "ok":
        board.note(f"{slot.label}: committed by other code (code hash {record.get('code_hash')}); running it again")
    elif record:
        store.reopen(job.job_id)  # a failed job resumes from the checkpoint it left
    folder = store.partial_dir(job.job_id)
    done = epochs_done(folder / "work") if folder.exists() else 0
    if done:
        board.note(f"{slot.label}: resuming from its checkpoint after epoch {done}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_for_others(slots: list[Slot], board: JobBoard) -> None:
    """Waits, with one line saying for what, until another process lets go of one of ``slots``."""
    names = ", ".join(slot.label for slot in slots[:3]) + (f" and {len(slots) - 3} more" if len(slots) > 3 else "")
    board.note(f"waiting for {len(slots)} job(s) running in another process: {names}")
    while not any(_free(slot.lock_path) for slot in slots):
        time.sleep(WAIT_POLL_S)


def _free(lock_path: Path) -> bool:
    with file_lock(lock_path, blocking=False) as free:
        return free


def reusable(record: dict[str, Any], code: str, reuse_stale: bool) -> bool:
    """Whether a committed job counts for this run: made by this code, or kept on ``--reuse-stale``.

    A stale job is kept only while its numbers stay comparable: scored by the same major metric-suite version
    (another major changes numbers, e.g. what an empty mask gives).
    """
    if record.get("code_hash") == code:
        return True
    same_suite = str(record.get("suite_version", "")).split(".")[0] == SUITE_VERSION.split(".")[0]
    return reuse_stale and same_suite
