"""The study loop: open (or join) the study, then ask, run and tell trials until the equal budget is spent."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import manifest as mf
from .records import _index, study_row
from .request import TrialEvent, TuneOutcome, TuneRequest, _prepare, study_attrs, study_name
from .space import describe, distributions, make_pruner, make_sampler
from .storage import _ask_lock, default_storage, display_storage, open_storage
from .trial import _run_trial
from .workers import NOT_COUNTED, _best, _heartbeat, _worker, counted, reap_stale

if TYPE_CHECKING:
    import optuna


IDENTITY_KEYS = ("method", "dataset", "protocol", "budget", "fold", "per_trial_budget", "search_space", "seed")
"""Study user attributes that must match for a rerun to add trials to an existing study."""


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
