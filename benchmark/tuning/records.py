"""A study as rows of the results index (``studies`` and ``trials`` tables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store.index import index_study, open_index
from .space import _startup_trials
from .storage import default_storage, display_storage, open_storage
from .workers import _best, counted

if TYPE_CHECKING:
    import optuna


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
