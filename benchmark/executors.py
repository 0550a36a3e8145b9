"""Executors move jobs to where they run and bring their outputs back; they know nothing of metrics or files.

``local`` runs one job after another in this process, inside the job's ``.partial-`` folder. ``ray`` makes each job a
Ray task asking for one GPU (or ``cpus_per_job`` cores when the cluster has none), on a local Ray or an existing
cluster (``address``). Ray workers need no shared file system for results: the driver sends a task the content of
the job's ``.partial-`` folder (to resume from its checkpoint) and the task returns the finished folder's content,
which the driver unpacks and commits. Workers do need the data set at the same path (``--data-root``).
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from msbench.methods import MethodCard

from .job import Job, JobInputs, run_job

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class WorkItem:
    """One job to run: its card, its inputs and the ``.partial-`` folder its outputs land in on this machine."""

    card: MethodCard
    job: Job
    inputs: JobInputs
    folder: Path


Started = Callable[[WorkItem], None]


RAY_MISSING = "--executor ray needs Ray, an optional extra: pip install -e \".[ray]\" (or pip install 'ray>=2.9')."


def check_executor(name: str) -> None:
    """Refuses an unknown executor, and ``ray`` when Ray is not installed, before anything is written."""
    if name not in EXECUTORS:
        raise ValueError(f"--executor {name!r} is not supported; expected one of {', '.join(EXECUTORS)}.")
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError(RAY_MISSING) from None


def run_local(items: Iterable[WorkItem], started: Started) -> Iterator[tuple[WorkItem, dict[str, Any]]]:
    """Runs the jobs one after another in this process; yields each with its record as it finishes.

    ``items`` is read one job at a time, just before the job starts (the runner claims a job when it is drawn).
    """
    for item in items:
        started(item)
        yield item, run_job(item.card, item.job, item.inputs, item.folder)


def pack(folder: Path) -> bytes:
    """The content of a folder as an in-memory tar archive (relative paths)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Writes a :func:`pack` archive into ``folder`` (created if missing); refuses members that leave it."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        archive.extractall(folder, filter=_umask_filter)


def _umask_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """The "data" filter of tarfile, no mode kept: a task's files get this process's umask, as every store file does."""
    # typeshed types mode as int; None is documented (tarfile "Extraction filters") as "leave the mode unset"
    return tarfile.data_filter(member, path).replace(mode=None, deep=False)  # type: ignore[arg-type]


def _remote_job(card: MethodCard, job: Job, inputs: JobInputs, partial: bytes) -> tuple[dict[str, Any], bytes]:
    """The Ray task: rebuild the ``.partial-`` folder in a scratch directory, run the job, return the folder."""
    with tempfile.TemporaryDirectory(prefix=f"msbench-{job.job_id}-") as scratch:
        folder = Path(scratch) / job.job_id
        unpack(partial, folder)
        record = run_job(card, job, inputs, folder)
        return record, pack(folder)


def run_ray(
    items: Iterable[WorkItem], started: Started, *, address: str | None, cpus_per_job: int
) -> Iterator[tuple[WorkItem, dict[str, Any]]]:
    """Submits every job as a Ray task at once; yields each finished job (unpacked into its folder) as it returns.

    ``items`` is read as the jobs are submitted, so the runner claims each job just before its task is submitted.
    """
    check_executor("ray")
    import ray

    if not ray.is_initialized():
        env = {k: v for k, v in os.environ.items() if k.startswith("MSBENCH_") or k == "PYTHONPATH"}
        ray.init(address=address, runtime_env={"env_vars": env}, include_dashboard=False, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0) > 0
    task = ray.remote(_remote_job)
    pending: dict[Any, WorkItem] = {}
    for item in items:
        inputs = item.inputs
        if gpus and inputs.device == "cpu":
            inputs = replace(inputs, device="cuda")  # the driver may have no GPU while the cluster's workers do
        options = {"num_gpus": 1} if inputs.device.startswith("cuda") else {"num_cpus": cpus_per_job}
        ref = task.options(**options).remote(item.card, item.job, inputs, pack(item.folder))
        pending[ref] = item
        started(item)
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        item = pending.pop(ref)
        record, content = ray.get(ref)
        unpack(content, item.folder)
        yield item, record
