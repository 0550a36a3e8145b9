"""The best parameters of a finished study, as ``msbench run --tuned`` uses them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .request import study_name
from .storage import default_storage, display_storage, is_url, open_storage
from .workers import _best, counted

if TYPE_CHECKING:
    pass


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
    if n_budget < 1 or n_done < n_budget or best is None or best.value is None:
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
