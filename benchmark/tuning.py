"""Optuna tuning on equal budgets, on validation patients only, shared safely by several worker processes.

One study per (method, dataset, protocol, budget), named ``method__dataset__protocol__budget``. Every method gets
the same number of trials (the budget's ``tuning_trials`` unless ``trials`` says otherwise) and the same per-trial
budget (the budget's recipe of the card: epochs, steps, batch size). A trial fits the method with the sampled
parameters on the training patients of one outer fold (the budget's first, or ``fold``) and its value is the metric
suite's ``dice`` on that fold's validation patient (mean over its scans, both-empty scans left out), the criterion of
:mod:`msbench.methods.selection`. Only those cases are handed to the fit; the fold's test cases are never opened.
A study tunes one fold because in a K-fold protocol every other fold's training patients include this fold's test
patient: ``msbench run --tuned`` therefore refuses folds whose test patients the study saw.

Sampler: ``TPESampler`` seeded from the study's seed and the trial number (``n_startup_trials`` a third of the
budget, at most 10), so that a single worker replays the same trials. Pruner (default): ``MedianPruner`` with
``n_startup_trials`` a quarter of the budget (1 to 5) and no warm-up: after each epoch the engine's validation Dice
is reported, and a trial below the median of the earlier trials at that epoch stops (never after its last epoch,
where stopping saves nothing). Methods without epochs (``threshold``) report nothing and are never pruned.

Counting (resume and several workers): the budget counts every trial of the study except those marked
``not_counted`` (a killed worker's trial, an interrupted one, a surplus one). COMPLETE, PRUNED and FAIL trials count
(a failed trial spent the method's budget), and so do RUNNING trials of live workers. A RUNNING trial whose worker is
gone (its process on this host no longer exists, or its heartbeat, refreshed every minute, is 10 minutes old: a worker
on another machine) is marked FAIL and ``not_counted`` before each new trial: it stays in the study, blocks nothing, and
a new trial takes its place. With the default journal storage a file lock makes "count, then ask" atomic between
local workers; on other storages a trial asked beyond the budget by a race is marked ``not_counted`` (``surplus``)
and not run. Rerunning ``msbench tune`` adds only the missing trials.

Storage: by default ``RESULTS/tuning/optuna-journal.log`` (Optuna's ``JournalStorage`` with ``JournalFileBackend``,
the backend Optuna documents for several processes on one machine; SQLite breaks under parallel writers, optuna issue
4002); any SQLAlchemy URL (``postgresql://user@host/db`` for several machines) or another journal file path otherwise.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msbench.datasets.phantom.generate import pid_alive
from msbench.methods import MethodCard, get_card
from msbench.methods.card import CategoricalParam, FloatParam, IntParam, SearchParam

from . import manifest as mf
from .fitting import FitSpec, Overrides, fit
from .store import file_lock

if TYPE_CHECKING:
    import optuna

    from msbench.datasets import Case

    from .plan import RunSetup

TUNING_DIR = "tuning"
JOURNAL_NAME = "optuna-journal.log"
STUDY_VERSION = 1
NOT_COUNTED = "not_counted"
HEARTBEAT_S = 60.0
STALE_AFTER_S = 600.0
IDENTITY_KEYS = ("method", "dataset", "protocol", "budget", "fold", "per_trial_budget", "search_space", "seed")
"""Study user attributes that must match for a rerun to add trials to an existing study."""


def study_name(method: str, dataset: str, protocol: str, budget: str) -> str:
    """The study of one (method, dataset, protocol, budget)."""
    return f"{method}__{dataset}__{protocol}__{budget}"


def default_storage(results: Path) -> str:
    """The journal file every local worker of a results store shares."""
    return str(Path(results) / TUNING_DIR / JOURNAL_NAME)


def is_url(storage: str) -> bool:
    return "://" in storage


def display_storage(storage: str) -> str:
    """The storage as it is recorded (manifest, index): a URL without its password."""
    if not is_url(storage):
        return str(Path(storage).resolve())
    from sqlalchemy.engine import make_url

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (redis://): keep it, it has no password part we know of
        return storage


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """A journal file path (default) or an Optuna / SQLAlchemy URL as an Optuna storage.

    Several workers may open a new RDB storage at once: Optuna's table creation then races, so a failed first open
    is retried once after the other worker made the tables.
    """
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if not is_url(storage):
        path = Path(storage)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if storage.startswith(("redis://", "rediss://")):
        return optuna.storages.get_storage(storage)
    for attempt in range(3):
        try:
            return RDBStorage(storage)
        except Exception as error:  # a driver missing, a server down, a malformed URL, a table-creation race
            if attempt == 2:
                raise ValueError(
                    f"--storage {display_storage(storage)}: cannot open this Optuna storage ({error})."
                ) from None
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def distributions(search_space: Mapping[str, SearchParam]) -> dict[str, optuna.distributions.BaseDistribution]:
    """A card's search space as Optuna distributions (same names, bounds, steps and log scales)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name, param in search_space.items():
        if isinstance(param, FloatParam):
            out[name] = FloatDistribution(param.low, param.high, log=param.log)
        elif isinstance(param, IntParam):
            out[name] = IntDistribution(param.low, param.high, step=param.step, log=param.log)
        elif isinstance(param, CategoricalParam):
            out[name] = CategoricalDistribution(param.choices)
        else:
            raise TypeError(
                f"search space entry {name!r}: {param!r} is not a FloatParam, IntParam or CategoricalParam."
            )
    return out


def search_space_json(search_space: Mapping[str, SearchParam]) -> dict[str, Any]:
    """The search space as JSON-ready data (``{"lr": {"type": "FloatParam", "low": ..., ...}}``)."""
    return {
        name: {"type": type(p).__name__, **json.loads(json.dumps(asdict(p), default=str))}
        for name, p in sorted(search_space.items())
    }


def make_sampler(seed: int, n_trials: int, number: int = 0) -> optuna.samplers.TPESampler:
    """The seeded TPE sampler of one trial (``seed`` and the trial ``number`` give its random stream)."""
    from optuna.samplers import TPESampler

    return TPESampler(seed=seed * 100_003 + number, n_startup_trials=_startup_trials(n_trials))


def _startup_trials(n_trials: int) -> int:
    return min(10, max(1, n_trials // 3))


def make_pruner(n_trials: int) -> optuna.pruners.BasePruner:
    """The default pruner: ``MedianPruner(n_startup_trials=clip(n_trials // 4, 1, 5), n_warmup_steps=0)``."""
    from optuna.pruners import MedianPruner

    return MedianPruner(n_startup_trials=min(5, max(1, n_trials // 4)), n_warmup_steps=0)


def describe(obj: Any) -> str:
    """``MedianPruner(n_startup_trials=1, n_warmup_steps=0)``-like text of a pruner."""
    fields = {
        k.lstrip("_"): v
        for k, v in vars(obj).items()
        if k.lstrip("_") in ("seed", "n_startup_trials", "n_warmup_steps", "interval_steps", "min_resource")
        and isinstance(v, int | float | str)
    }
    return f"{type(obj).__name__}({', '.join(f'{k}={v}' for k, v in sorted(fields.items()))})"


@dataclass(frozen=True)
class TuneRequest:
    """What ``msbench tune`` was asked for (one method).

    Attributes:
        method: A registered method with a search space.
        dataset: Registered dataset.
        results: The results store (default storage and the index live there).
        budget: ``smoke``, ``quick`` or ``paper``: the per-trial recipe and the default number of trials.
        trials: Trials of the study (default: the budget's ``tuning_trials``).
        storage: Journal file path or Optuna URL (default :func:`default_storage`).
        study: Study name (default :func:`study_name`).
        protocol: Split protocol (default: the dataset's first).
        data_root: Dataset folder.
        fold: Outer fold whose training patients fit and whose validation patient scores (default: the first of
            the budget's folds).
        seed: Seed of the sampler and of every fit.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """

    method: str
    dataset: str
    results: Path
    budget: str = "smoke"
    trials: int | None = None
    storage: str | None = None
    study: str | None = None
    protocol: str | None = None
    data_root: Path | None = None
    fold: int | None = None
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class TrialEvent:
    """One finished trial, as the progress display receives it."""

    study: str
    number: int
    state: str
    value: float | None
    k: int
    n_trials: int
    best_value: float | None
    best_trial: int | None


@dataclass
class TuneOutcome:
    """What one ``tune`` call did and where the study stands."""

    study: str
    storage: str
    n_trials_budget: int
    n_added: int
    n_complete: int
    n_pruned: int
    n_failed: int
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Data:
    card: MethodCard
    setup: RunSetup
    fold: int
    train: list[Case]
    val: list[Case]


def _prepare(request: TuneRequest) -> _Data:
    from .plan import RunRequest, prepare_run

    card = get_card(request.method)
    if not card.search_space:
        raise ValueError(f"method {card.name!r} declares no search space (its card's search_space); nothing to tune.")
    folds = None if request.fold is None else (request.fold,)
    run = RunRequest(
        methods=card.name,
        dataset=request.dataset,
        results=request.results,
        budget=request.budget,
        protocol=request.protocol,
        data_root=request.data_root,
        folds=folds,
        device=request.device,
        progress=False,
    )
    setup = prepare_run(run, fingerprint=False)  # the fingerprint would read every file, test patients included
    fold = next(f for f in setup.split.folds if f.index == setup.folds[0])
    train, val = fold.select(setup.cases, "train"), fold.select(setup.cases, "val")
    test_patients = {c.patient_id for c in fold.select(setup.cases, "test")}
    seen = {c.patient_id for c in (*train, *val)}
    if seen & test_patients:
        raise ValueError(f"{setup.split.path.name} fold {fold.index}: patients {sorted(seen & test_patients)} are both "
                         "test and training/validation patients; tuning refuses such a split.")  # fmt: skip
    if not val:
        raise ValueError(f"{setup.split.path.name} fold {fold.index} has no validation case to score trials on.")
    return _Data(card, setup, fold.index, train, val)


def study_attrs(data: _Data, n_trials: int, seed: int) -> dict[str, Any]:
    """The study's record (Optuna user attributes): identity, equal budget, what was seen."""
    card, setup, budget = data.card, data.setup, data.setup.budget.name
    files = [p for c in (*data.train, *data.val) for p in (*c.images.values(), *c.masks.values())]
    return {
        "study_version": STUDY_VERSION,
        "method": card.name,
        "dataset": setup.spec.name,
        "protocol": setup.protocol,
        "budget": budget,
        "fold": data.fold,
        "seed": seed,
        "n_trials_budget": n_trials,
        "per_trial_budget": json.loads(json.dumps(asdict(card.recipe(budget)), default=str)),
        "search_space": search_space_json(card.search_space),
        "objective": "mean over the fold's validation scans of the metric suite's 'dice' (both-empty scans left "
        "out); intermediate values: the engine's per-epoch validation Dice",
        "split_sha256": setup.split.sha256,
        "train_cases": sorted(c.case_id for c in data.train),
        "val_cases": sorted(c.case_id for c in data.val),
        "seen_patients": sorted({c.patient_id for c in (*data.train, *data.val)}),
        "data_fingerprint": mf.data_fingerprint(files),
        "reference": setup.spec.primary_reference,
        "modalities": list(card.modalities),
    }


def _open_study(name: str, storage: str, attrs: dict[str, Any], pruner: Any) -> optuna.Study:
    import optuna

    study = optuna.create_study(
        study_name=name,
        storage=open_storage(storage),
        direction="maximize",
        load_if_exists=True,
        sampler=make_sampler(attrs["seed"], attrs["n_trials_budget"]),
        pruner=pruner,
    )
    old = study.user_attrs
    if old.get("method") is not None:
        differ = [k for k in IDENTITY_KEYS if json.dumps(old.get(k)) != json.dumps(attrs[k])]
        if differ:
            raise ValueError(
                f"study {name!r} in {display_storage(storage)} was made for other settings ({', '.join(differ)}: "
                f"{[old.get(k) for k in differ]} there, {[attrs[k] for k in differ]} now); its trials would not "
                f"compare. Tune into another study with --study NAME, or another --storage."
            )
    # "method" marks a complete record: it is written last, so a second worker opening the study while the first
    # is still writing it never compares against a half-written record.
    for key in sorted(attrs, key=lambda k: k == "method"):
        if old.get(key) != attrs[key]:
            study.set_user_attr(key, attrs[key])
    return study


def counted(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials that count against the budget (see the module docstring)."""
    from optuna.trial import TrialState

    return [t for t in trials if NOT_COUNTED not in t.user_attrs and t.state != TrialState.WAITING]


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def reap_stale(study: optuna.Study, now: float | None = None) -> list[int]:
    """Fails the RUNNING trials whose worker is gone; returns their numbers.

    A worker is gone when it ran on this host and its process no longer exists, or when its trial's heartbeat (a
    user attribute it refreshes every ``HEARTBEAT_S`` seconds) is older than ``STALE_AFTER_S`` (other machines).
    """
    import optuna
    from optuna.trial import TrialState

    host, now, reaped = socket.gethostname(), now or time.time(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get("worker", ""))
        owner, _, pid = worker.rpartition(":")
        beat = float(trial.user_attrs.get("heartbeat", now))
        if owner == host and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            reason = f"stale: worker {worker} is gone"
        elif now - beat > STALE_AFTER_S:
            reason = f"stale: no heartbeat from worker {worker} for {now - beat:.0f} s"
        else:
            continue
        storage = study._storage
        try:
            storage.set_trial_user_attr(trial._trial_id, NOT_COUNTED, reason)
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker reaped it first
        reaped.append(trial.number)
    return reaped


@contextmanager
def _heartbeat(trial: optuna.Trial) -> Iterator[None]:
    """Refreshes the trial's ``heartbeat`` attribute every ``HEARTBEAT_S`` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            trial.set_user_attr("heartbeat", time.time())

    thread = threading.Thread(target=beat, name=f"msbench-tune-heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def _ask_lock(storage: str) -> Iterator[None]:
    """Makes "count, then ask" atomic between the local workers of a journal file (a no-op for URLs)."""
    lock = nullcontext() if is_url(storage) else file_lock(Path(f"{storage}.msbench-ask.lock"))
    with lock:
        yield


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def tune(
    request: TuneRequest,
    *,
    pruner: optuna.pruners.BasePruner | None = None,
    on_trial: Callable[[TrialEvent], None] | None = None,
) -> TuneOutcome:
    """Adds the missing trials of ``request``'s study (until the budget is reached) and indexes it.

    Args:
        request: Method, dataset, budget, trials, storage, study name.
        pruner: Replaces the default :func:`make_pruner`.
        on_trial: Receives each finished trial of this process (progress display).

    Returns:
        The study's state after this call.

    Raises:
        ValueError: Unknown method/dataset/budget, no search space, a study made for other settings, or a storage
            that cannot be opened.
    """
    import optuna

    data = _prepare(request)
    n_trials = request.trials if request.trials is not None else data.setup.budget.tuning_trials
    if n_trials < 1:
        raise ValueError(f"--trials {n_trials}: expected a positive number of trials.")
    setup = data.setup
    name = request.study or study_name(data.card.name, setup.spec.name, setup.protocol, setup.budget.name)
    storage = request.storage or default_storage(request.results)
    attrs = study_attrs(data, n_trials, request.seed)
    pruner = pruner or make_pruner(n_trials)
    attrs["pruner"] = describe(pruner)
    study = _open_study(name, storage, attrs, pruner)
    dists = distributions(data.card.search_space)
    added = 0
    while True:
        with _ask_lock(storage):
            reap_stale(study)
            done = counted(study.get_trials(deepcopy=False))
            if len(done) >= n_trials:
                break
            study.sampler = make_sampler(request.seed, n_trials, len(study.get_trials(deepcopy=False)))
            trial = study.ask(fixed_distributions=dists)
            trial.set_user_attr("worker", _worker())
            trial.set_user_attr("started", mf.now_iso())
            trial.set_user_attr("heartbeat", time.time())
        rank = sum(1 for t in counted(study.get_trials(deepcopy=False)) if t.number < trial.number)
        if rank >= n_trials:  # another machine's worker asked first (no shared lock on URL storages)
            trial.set_user_attr(NOT_COUNTED, "surplus: the budget was reached by other workers")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        with _heartbeat(trial):
            state, value = _run_trial(study, trial, data, request)
        added += 1
        _index(request.results, study, storage)
        if on_trial is not None:
            best = _best(study)
            on_trial(
                TrialEvent(name, trial.number, state, value, rank + 1, n_trials,
                           best.value if best else None, best.number if best else None)
            )  # fmt: skip
    _index(request.results, study, storage)
    record = study_row(study, storage)
    return TuneOutcome(
        study=name,
        storage=display_storage(storage),
        n_trials_budget=n_trials,
        n_added=added,
        n_complete=record["n_complete"],
        n_pruned=record["n_pruned"],
        n_failed=record["n_failed"],
        best_trial=record["best_trial"],
        best_value=record["best_value"],
        best_params=json.loads(record["best_params"] or "{}"),
    )


def _run_trial(study: optuna.Study, trial: optuna.Trial, data: _Data, request: TuneRequest) -> tuple[str, float | None]:
    """Fits one trial on the fold's training patients, scores its validation patient, tells the study."""
    import optuna
    from optuna.trial import TrialState

    from msbench.methods.selection import finite_mean, validation_dice_of

    card, setup = data.card, data.setup
    budget = setup.budget.name
    recipe = card.recipe(budget)
    epochs = recipe.epochs if card.trainable else 0

    def report(epoch: int, metrics: Mapping[str, float]) -> None:
        value = metrics.get("val_dice")
        if value is None or math.isnan(value):
            return
        trial.report(float(value), epoch)
        if epoch < epochs and trial.should_prune():
            raise optuna.TrialPruned(f"validation Dice {value:.4f} at epoch {epoch} is below the pruner's median")

    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix=f"msbench-tune-{card.name}-{trial.number}-") as workdir:
            spec = FitSpec.from_card(
                card,
                budget,
                overrides=Overrides(params=trial.params),
                workdir=Path(workdir),
                seed=request.seed,  # the request's seed, as the sampler's: one --seed repeats a whole study
                device=setup.device,
                modalities=card.modalities,
                reference=setup.spec.primary_reference,
                on_epoch=report,
            )
            adapter, _ = fit(spec, data.train, data.val)
            per_case = validation_dice_of(adapter.predict, data.val, setup.spec.primary_reference)
    except optuna.TrialPruned as pruned:
        trial.set_user_attr("pruned", str(pruned))
        return _finish(study, trial, TrialState.PRUNED, None, start)
    except (KeyboardInterrupt, SystemExit):
        trial.set_user_attr(NOT_COUNTED, "interrupted: the worker was stopped during the trial")
        _finish(study, trial, TrialState.FAIL, None, start)
        raise
    except Exception as error:  # the method failed on these parameters: the trial spent its budget
        trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
        return _finish(study, trial, TrialState.FAIL, None, start)
    value = finite_mean(per_case)
    trial.set_user_attr("val_dice_per_case", dict(zip([c.case_id for c in data.val], per_case, strict=True)))
    if math.isnan(value):
        trial.set_user_attr("error", "validation Dice is NaN: every validation scan is both-empty")
        return _finish(study, trial, TrialState.FAIL, None, start)
    return _finish(study, trial, TrialState.COMPLETE, value, start)


def _finish(study: optuna.Study, trial: optuna.Trial, state: Any, value: float | None, start: float):
    trial.set_user_attr("finished", mf.now_iso())
    trial.set_user_attr("fit_seconds", round(time.perf_counter() - start, 2))
    study.tell(trial, value if value is not None else None, state=state)
    return state.name, value


def study_row(study: optuna.Study, storage: str) -> dict[str, Any]:
    """The study's row of the index's ``studies`` table."""
    from optuna.trial import TrialState

    attrs = study.user_attrs
    trials = counted(study.get_trials(deepcopy=False))
    best = _best(study)
    n_trials = int(attrs.get("n_trials_budget", 0))
    return {
        "study": study.study_name,
        "method": attrs.get("method"),
        "dataset": attrs.get("dataset"),
        "protocol": attrs.get("protocol"),
        "budget": attrs.get("budget"),
        "storage": display_storage(storage),
        "n_trials_budget": n_trials,
        "per_trial_budget": json.dumps(attrs.get("per_trial_budget")),
        "n_complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "n_pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "n_failed": sum(t.state == TrialState.FAIL for t in trials),
        "best_trial": best.number if best else None,
        "best_value": best.value if best else None,
        "best_params": json.dumps(best.params) if best else None,
        "search_space": json.dumps(attrs.get("search_space")),
        "sampler": f"TPESampler(seed={int(attrs.get('seed', 0))} * 100003 + trial number, "
        f"n_startup_trials={_startup_trials(n_trials)})",
        "pruner": attrs.get("pruner", ""),
        "updated": max((r["finished"] or r["started"] or "" for r in trial_rows(study)), default=""),
    }


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """The study's rows of the index's ``trials`` table (every trial, counted or not)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        worker = t.user_attrs.get("worker")
        rows.append(
            {
                "study": study.study_name,
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": json.dumps(t.params),
                "intermediate": json.dumps({str(k): v for k, v in sorted(t.intermediate_values.items())}),
                "worker": worker,
                "started": t.user_attrs.get("started") or (t.datetime_start and t.datetime_start.isoformat()),
                "finished": t.user_attrs.get("finished") or (t.datetime_complete and t.datetime_complete.isoformat()),
            }
        )
    return rows


def _index(results: Path, study: optuna.Study, storage: str) -> None:
    from .store.index import index_study, open_index

    with open_index(results) as conn:
        index_study(conn, study_row(study, storage), trial_rows(study))


def index_journal(results: Path) -> int:
    """Indexes every study of the store's default journal (``msbench store reindex``); returns how many."""
    import optuna

    path = Path(default_storage(results))
    if not path.is_file():
        return 0
    storage = open_storage(str(path))
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    for name in names:
        _index(results, optuna.load_study(study_name=name, storage=storage), str(path))
    return len(names)


@dataclass(frozen=True)
class TunedParams:
    """The best trial of a finished study, as ``msbench run --tuned`` uses it (the manifest's ``tuning`` key)."""

    study: str
    storage: str
    trial: int
    params: dict[str, Any]
    value: float
    n_trials_budget: int
    seen_patients: tuple[str, ...] = ()
    fold: int | None = None

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "storage": self.storage,
            "trial": self.trial,
            "params": self.params,
            "value": self.value,
            "n_trials_budget": self.n_trials_budget,
        }


def tune_command(method: str, dataset: str, budget: str, results: Path, protocol: str, storage: str | None) -> str:
    command = f"msbench tune --method {method} --dataset {dataset} --budget {budget} --results {results}"
    if protocol:
        command += f" --protocol {protocol}"
    return command + (f" --storage {storage}" if storage else "")


def load_tuned(
    method: str,
    dataset: str,
    protocol: str,
    budget: str,
    results: Path,
    *,
    storage: str | None = None,
    study: str | None = None,
    default_protocol: bool = True,
) -> TunedParams:
    """The best parameters of the finished study of (method, dataset, protocol, budget).

    Raises:
        ValueError: No such study, or it has fewer counted trials than its budget, or no complete trial; the
            message names the ``msbench tune`` command that finishes it.
    """
    import optuna

    name = study or study_name(method, dataset, protocol, budget)
    where = storage or default_storage(results)
    command = tune_command(method, dataset, budget, results, "" if default_protocol else protocol, storage)
    if not is_url(where) and not Path(where).is_file():
        raise ValueError(f"--tuned: no tuning storage {where} (no study {name!r}); run `{command}` first.")
    try:
        loaded = optuna.load_study(study_name=name, storage=open_storage(where))
    except KeyError:
        raise ValueError(f"--tuned: no study {name!r} in {display_storage(where)}; run `{command}` first.") from None
    n_budget = int(loaded.user_attrs.get("n_trials_budget", 0))
    n_done = sum(t.state.is_finished() for t in counted(loaded.get_trials(deepcopy=False)))
    best = _best(loaded)
    if n_budget < 1 or n_done < n_budget or best is None:
        raise ValueError(
            f"--tuned: study {name!r} is not finished ({n_done} of {n_budget} trials finished, "
            f"{'no' if best is None else 'a'} complete trial); run `{command}` to finish it."
        )
    return TunedParams(
        study=name,
        storage=display_storage(where),
        trial=best.number,
        params=dict(best.params),
        value=float(best.value),
        n_trials_budget=n_budget,
        seen_patients=tuple(loaded.user_attrs.get("seen_patients", ())),
        fold=loaded.user_attrs.get("fold"),
    )
