"""The benchmark runner: every requested method under one protocol, as jobs (method x fold x seed), resumable.

A run is planned as one job per (fold, seed) of each method (``job.py`` fits on the fold's training patients, selects
on its validation patient only, predicts and scores the test patient's scans). A job committed by the same code is
reused; one committed by other code is rerun (or kept and marked stale with ``reuse_stale``); an interrupted or failed
one resumes from its checkpoint; one another process is running is left to it. A failing job is recorded and the run
goes on. Run-level tables and the manifest are re-derived from the committed jobs under the run lock.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from msbench.datasets import Case, DatasetSpec, Split, get_dataset, load_split
from msbench.methods import MethodCard, get_card, resolve_methods

from . import manifest as mf
from . import options
from .aggregation import primary_dice, summarize_run
from .executors import WorkItem, check_executor, run_local, run_ray
from .job import Job, JobInputs, epochs_done
from .metrics import SUITE_VERSION, MetricParams
from .progress import JobBoard
from .protocol import Budget, get_budget
from .store import (
    STORE_SCHEMA_VERSION,
    RunStore,
    check_store_version,
    file_lock,
    index_job,
    index_run,
    open_index,
    read_json,
    write_csv,
    write_json,
)

console = Console(stderr=True)


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for (the CLI's ``msbench run`` options).

    Attributes:
        methods: ``all``, a comma-separated list or fnmatch patterns of registered methods.
        dataset: Registered dataset name.
        results: The results store folder.
        budget: ``smoke``, ``quick`` or ``paper``.
        protocol: Named split protocol (default: the dataset's first).
        data_root: Where the dataset lives (default: its environment variable; synth-ms: the cache).
        folds: Fold indices to run, or ``"all"`` (default: the budget's, see ``Budget.n_folds``: the first fold on
            smoke, all on quick and paper).
        seeds: Seeds per (method, fold) (default: the budget's).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        modalities: Input modalities for every method (default: each card's own).
        progress: Show progress bars.
        metric_params: Metric settings stored with the results.
        baseline: Also run the ``threshold`` baseline when it was not asked for.
        reuse_stale: Keep jobs committed by other code (marked stale in the manifest and index) instead of rerunning.
        executor: ``local`` (one job after another here) or ``ray`` (one Ray task per job).
        ray_address: Address of an existing Ray cluster (None: start a local one).
        cpus_per_job: CPU cores a Ray task asks for when the cluster has no GPU.
        batch_size: Samples per step for every trainable method instead of its recipe's (part of the run's identity).
    """

    methods: str
    dataset: str
    results: Path
    budget: str = "smoke"
    protocol: str | None = None
    data_root: Path | None = None
    folds: tuple[int, ...] | str | None = None
    seeds: tuple[int, ...] | None = None
    device: str = "auto"
    modalities: tuple[str, ...] | None = None
    progress: bool = True
    metric_params: MetricParams = field(default_factory=MetricParams)
    baseline: bool = True
    reuse_stale: bool = False
    executor: str = "local"
    ray_address: str | None = None
    cpus_per_job: int = 2
    batch_size: int | None = None


@dataclass
class MethodOutcome:
    """How one method's run ended."""

    method: str
    run_id: str
    status: str
    n_ok: int = 0
    n_failed: int = 0
    n_reused: int = 0
    n_elsewhere: int = 0
    errors: list[str] = field(default_factory=list)
    dice_mean: float | None = None
    baseline_dice: float | None = None

    @property
    def beats_baseline(self) -> bool | None:
        if self.dice_mean is None or self.baseline_dice is None:
            return None
        return self.dice_mean > self.baseline_dice


@dataclass(frozen=True)
class _Setup:
    spec: DatasetSpec
    budget: Budget
    protocol: str
    root: Path
    cases: list[Case]
    split: Split
    folds: tuple[int, ...]
    seeds: tuple[int, ...]
    device: str
    data_fingerprint: str


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
    setup = _prepare(request)
    names = options.drop_inter_rater_without_second_rater(names, request.methods, setup.spec)
    for name in names:
        options.check_modalities_on_disk(request.modalities or get_card(name).modalities, setup.cases, name)
    plans = [
        _plan_run(_with_batch_size(get_card(name), setup.budget.name, request.batch_size), request, setup)
        for name in names
    ]
    _execute(plans, request)
    outcomes = []
    for plan in plans:
        outcome = plan.outcome
        outcome.dice_mean, outcome.status = _refresh_run(
            plan.store, setup, request.metric_params, plan.code, request.reuse_stale
        )
        outcomes.append(outcome)
    _record_baseline(outcomes, request.results)
    return outcomes


BASELINE = "threshold"
ALL_FOLDS = "all"


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
            write_json(store.manifest_path, manifest)
            with open_index(results) as conn:
                index_run(conn, manifest, _read_summary(store))


def _prepare(request: RunRequest) -> _Setup:
    spec = get_dataset(request.dataset)
    budget = get_budget(request.budget)
    protocol = request.protocol or spec.default_protocol
    user_file = protocol.endswith(".json")  # a split file the user made (make_kfold_split), e.g. for nnunet-raw
    if not user_file and protocol not in spec.protocols:
        raise ValueError(f"dataset {spec.name!r} has no protocol {protocol!r}; it has {', '.join(spec.protocols)}.")
    root = spec.prepare_root(request.data_root, resolution_mm=budget.synth_resolution_mm, progress=request.progress)
    cases = spec.load_cases(root)
    split = load_split(spec.name, Path(protocol) if user_file else protocol, cases)
    protocol = split.protocol
    available = tuple(f.index for f in split.folds)
    if request.folds is None:
        folds = budget.default_folds(available)
    elif request.folds == ALL_FOLDS:
        folds = available
    else:
        folds = request.folds
    known = {f.index for f in split.folds}
    if not set(folds) <= known:
        raise ValueError(
            f"folds {sorted(set(folds) - known)} do not exist in {split.path.name}; it has {sorted(known)}."
        )
    files = [p for c in cases for p in (*c.images.values(), *c.masks.values())]
    return _Setup(
        spec=spec,
        budget=budget,
        protocol=protocol,
        root=root,
        cases=cases,
        split=split,
        folds=tuple(folds),
        seeds=request.seeds if request.seeds is not None else budget.seeds,
        device=options.resolve_device(request.device),
        data_fingerprint=mf.data_fingerprint(files),
    )


def run_config(card: MethodCard, request: RunRequest, setup: _Setup) -> dict[str, Any]:
    """Everything that changes a run's numbers; its hash names the run."""
    return {
        "method": card.name,
        "hparams": card.hparams(setup.budget.name),
        "recipe": asdict(card.recipe(setup.budget.name)),
        "modalities": list(request.modalities or card.modalities),
        "dataset": setup.spec.name,
        "protocol": setup.protocol,
        "budget": setup.budget.name,
        "reference": setup.spec.primary_reference,
        "metric_params": request.metric_params.as_dict(),
        "split_sha256": setup.split.sha256,
        "data_fingerprint": setup.data_fingerprint,
    }


@dataclass
class _RunPlan:
    """One method's run: its store, the code hash its jobs must carry, what they share, and their outcome."""

    card: MethodCard
    store: RunStore
    code: str
    inputs: JobInputs
    jobs: list[Job]
    outcome: MethodOutcome


def _with_batch_size(card: MethodCard, budget: str, batch_size: int | None) -> MethodCard:
    """The card with the budget's batch size replaced (``--batch-size``, e.g. after CUDA ran out of memory)."""
    if batch_size is None or not card.trainable:
        return card
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: expected a positive number of samples per step.")
    recipe = replace(card.recipe(budget), batch_size=batch_size)
    return replace(card, recipes={**card.recipes, budget: recipe})


def _plan_run(card: MethodCard, request: RunRequest, setup: _Setup) -> _RunPlan:
    """Names the run (config hash), writes its manifest once, and lists its jobs (fold x seed)."""
    config = run_config(card, request, setup)
    chash = mf.config_hash(config)
    modalities = tuple(config["modalities"])
    mods = "" if modalities == card.modalities else "+" + "-".join(modalities)
    run_id = f"{card.name}{mods}__{setup.spec.name}__{setup.protocol}__{setup.budget.name}__{chash[:8]}"
    store = RunStore(request.results, run_id)
    code = mf.code_hash(card.adapter, SUITE_VERSION)
    inputs = JobInputs(
        cases=setup.cases,
        split=setup.split,
        device=setup.device,
        budget=setup.budget.name,
        modalities=modalities,
        reference=setup.spec.primary_reference,
        metric_params=request.metric_params,
        progress=request.progress and request.executor == "local",
    )
    with file_lock(store.lock_path):
        if not store.manifest_path.is_file():
            write_json(store.manifest_path, _manifest(card, setup, config, chash, run_id, store))
    jobs = [Job(run_id, card.name, fold, seed, code) for fold in setup.folds for seed in setup.seeds]
    return _RunPlan(card, store, code, inputs, jobs, MethodOutcome(card.name, run_id, "running"))


def _execute(plans: list[_RunPlan], request: RunRequest) -> None:
    """Claims every job that must run (its lock is held until it is committed), runs them on the executor, commits."""
    board = JobBoard(console, live=request.progress)
    by_key: dict[str, tuple[_RunPlan, WorkItem]] = {}
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


def _claim(plan: _RunPlan, job: Job, request: RunRequest, locks: ExitStack, label: str) -> tuple[Path | None, str]:
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
    store: RunStore, setup: _Setup, params: MetricParams, code: str, reuse_stale: bool
) -> tuple[float | None, str]:
    """Re-derives the run's tables and manifest from its committed jobs, under the run lock; indexes them.

    Returns the mean Dice against the primary reference over the usable jobs and the run's status.
    """
    with file_lock(store.lock_path):
        jobs = store.committed_jobs()
        usable = [j for j, r in jobs if r.get("status") == "ok" and _reusable(r, code, reuse_stale)]
        stale = [j for j, r in jobs if r.get("status") == "ok" and r.get("code_hash") != code]
        failed = [j for j, r in jobs if r.get("status") != "ok"]
        cases = store.job_tables("cases.csv", job_ids=usable)
        summary = summarize_run(cases, setup.spec.references, setup.cases, params) if not cases.empty else None
        for name, frame in (("cases", cases), ("lesions", store.job_tables("lesions.csv", job_ids=usable))):
            write_csv(store.root / f"{name}.csv", frame)
        write_csv(store.root / "summary.csv", summary if summary is not None else pd.DataFrame())
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
            index_run(conn, manifest, _read_summary(store))
    return (primary_dice(summary, setup.spec.primary_reference) if summary is not None else None), status


def _read_summary(store: RunStore) -> pd.DataFrame:
    path = store.root / "summary.csv"
    return pd.read_csv(path, dtype={"seed": str}) if path.stat().st_size > 1 else pd.DataFrame()


def _manifest(
    card: MethodCard, setup: _Setup, config: dict[str, Any], chash: str, run_id: str, store: RunStore
) -> dict[str, Any]:
    """The run's manifest: what the run is. What each job ran on (commit, versions, device) is in its job.json."""
    return {
        "schema_version": mf.MANIFEST_SCHEMA_VERSION,
        "store_schema_version": STORE_SCHEMA_VERSION,
        "run_id": run_id,
        "method": card.name,
        "method_title": card.title,
        "dataset": setup.spec.name,
        "data_root": str(setup.root),
        "data_fingerprint": setup.data_fingerprint,
        "protocol": setup.protocol,
        "split": {
            "file": setup.split.path.name,
            "sha256": setup.split.sha256,
            "case_fingerprint": setup.split.case_fingerprint,
            "leaks_timepoints": setup.split.leaks_timepoints,
        },
        "budget": setup.budget.name,
        "modalities": config["modalities"],
        "reference": setup.spec.primary_reference,
        "references": list(setup.spec.references),
        "hparams": config["hparams"],
        "recipe": config["recipe"],
        "metric_params": config["metric_params"],
        "config_hash": chash,
        "config": config,
        "created": mf.now_iso(),
        "status": "running",
    }
