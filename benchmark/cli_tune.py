"""``msbench tune``: Optuna studies on equal budgets over the validation patients (see :mod:`.tuning`).

With ``--candidates``, the same command selects a card's smoke recipe among its candidates instead (a fixed study,
see :mod:`.recipe_selection`) and writes the committed record that ``msbench methods show`` prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from msbench.datasets import DatasetNotFoundError
from msbench.methods import get_card, resolve_methods
from msbench.methods.selection import record_path

from ._console import err, out
from ._console import fail as _fail
from .store import check_results_dir, store_writes

if TYPE_CHECKING:
    from .tuning import TuneRequest


def _methods(spec: str, *, candidates: bool = False) -> list[str]:
    names = resolve_methods(spec)
    if spec == "all":
        return [n for n in names if (get_card(n).smoke_candidates if candidates else get_card(n).search_space)]
    return names


def _select(requests: list[TuneRequest], candidates: str, record_dir: Path | None) -> None:
    """``--candidates``: one recipe selection per method, then a table of what each chose and where it is recorded."""
    # numba: recipe selection imports the fitting door and its metric kernels (cli.py's docstring)
    from .recipe_selection import candidate_recipes, run_selection

    try:
        for request in requests:  # every set is checked before the first fit
            candidate_recipes(request.method, candidates)
    except (KeyError, ValueError) as error:
        _fail(str(error).strip("'\""))
        return
    table = Table(title=f"msbench tune --candidates {candidates}: recipe selection on the validation patient")
    for column in ("method", "candidates", "chosen", "validation Dice", "threshold", "record"):
        table.add_column(column)

    def log(line: str) -> None:
        out.print(line, markup=False, highlight=False)  # candidate names hold brackets, not markup

    for request in requests:
        out_path = None if record_dir is None else record_dir / f"{request.method}.json"
        try:
            record = run_selection(request, candidates, out=out_path, log=log)
        except (DatasetNotFoundError, KeyError, ValueError) as error:
            _fail(str(error).strip("'\""))
            return
        chosen, baseline = f"{record['chosen_val_dice']:.4f}", f"{record['threshold_val_dice']:.4f}"
        where = str(out_path or record_path(request.method))
        table.add_row(request.method, str(len(record["candidates"])), record["chosen"], chosen, baseline, where)
    out.print(table)


def tune(
    method: Annotated[str, typer.Option(help="'all' (every method with a search space), a list or patterns.")],
    dataset: Annotated[str, typer.Option(help="Registered dataset (see 'msbench datasets list').")] = "synth-ms",
    budget: Annotated[str, typer.Option(help="smoke, quick or paper: the per-trial recipe and default trials.")] = (
        "smoke"
    ),
    trials: Annotated[
        int | None, typer.Option(help="Trials per method (default: the budget's tuning_trials, the same for all).")
    ] = None,
    results: Annotated[Path, typer.Option(help="Results store folder (default storage and index).")] = Path("results"),
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL (e.g. postgresql://user@host/db) or journal file (default: "
            "RESULTS/tuning/optuna-journal.log)."
        ),
    ] = None,  # fmt: skip
    study: Annotated[
        str | None, typer.Option(help="Study name (default: METHOD__DATASET__PROTOCOL__BUDGET); one method only.")
    ] = None,
    protocol: Annotated[str | None, typer.Option(help="Split protocol (default: the dataset's first).")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Dataset folder (else its MSBENCH_*_ROOT variable).")] = None,
    fold: Annotated[
        int | None,
        typer.Option(help="Outer fold to tune on (default: the budget's first); its test patient is never read."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the TPE sampler and of every trial's fit.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    progress: Annotated[bool, typer.Option(help="Show progress (trial k of N, best so far).")] = True,
    candidates: Annotated[
        str | None,
        typer.Option(
            help="Recipe selection instead of a search: 'smoke' (the card's smoke recipe and its smoke_candidates) "
            "or 'recorded' (the committed record's candidates), each fitted once on the validation patient in a "
            "fixed Optuna study (GridSampler, --seed); writes methods/smoke_selection/METHOD.json."
        ),
    ] = None,
    record_dir: Annotated[
        Path | None, typer.Option(help="--candidates: the record's folder (default: methods/smoke_selection).")
    ] = None,
) -> None:
    """Tune methods with a seeded TPE sampler and a median pruner; resumable, several workers may share a study."""
    # numba: tuning imports the fitting door and its metric kernels (cli.py's docstring)
    import optuna  # heavy: imported by the command that runs studies, not by every msbench command

    from .tuning import TuneRequest
    from .tuning import tune as run_tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if candidates is not None:
            given = [f"--{k}" for k, v in (("trials", trials), ("storage", storage), ("study", study)) if v is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: not used with --candidates, which runs a fixed study of one "
                                 "trial per candidate, kept in memory.")  # fmt: skip
        else:
            check_results_dir(results, write=True)
        names = _methods(method, candidates=candidates is not None)
        if study is not None and len(names) != 1:
            raise ValueError(f"--study names one study; --method {method!r} selects {len(names)} methods.")
    except (KeyError, ValueError) as error:
        _fail(str(error).strip("'\""))
        return
    if candidates is not None:
        requests = [TuneRequest(n, dataset, results, budget, trials, storage, study, protocol, data_root, fold, seed,
                                device) for n in names]  # fmt: skip
        _select(requests, candidates, record_dir)
        return
    outcomes = []
    for name in names:
        request = TuneRequest(name, dataset, results, budget, trials, storage, study, protocol, data_root, fold, seed,
                              device)  # fmt: skip
        try:
            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=err, disable=not progress, transient=False,
            ) as bar:  # fmt: skip
                task = bar.add_task(f"{name}: starting", total=None)

                def show(event, _bar=bar, _task=task, _name=name) -> None:
                    best = "-" if event.best_value is None else f"{event.best_value:.4f} (trial {event.best_trial})"
                    value = "-" if event.value is None else f"{event.value:.4f}"
                    text = f"{_name}: trial {event.k} of {event.n_trials} {event.state} {value}, best so far {best}"
                    _bar.update(_task, description=text, completed=event.k, total=event.n_trials)
                    if not progress:
                        out.print(text, highlight=False)

                with store_writes(results):
                    outcomes.append(run_tune(request, on_trial=show))
        except (DatasetNotFoundError, KeyError, ValueError) as error:
            _fail(str(error).strip("'\""))
            return
    table = Table(title=f"msbench tune: {dataset}, budget {budget}")
    for column in ("study", "trials", "complete", "pruned", "failed", "added now", "best value", "best params"):
        table.add_column(column)
    for o in outcomes:
        best = "-" if o.best_value is None else f"{o.best_value:.4f} (trial {o.best_trial})"
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in o.best_params.items())
        table.add_row(o.study, str(o.n_trials_budget), str(o.n_complete), str(o.n_pruned), str(o.n_failed),
                      str(o.n_added), best, params)  # fmt: skip
    out.print(table)
    out.print(
        f"storage: {outcomes[0].storage if outcomes else '-'}; use it with 'msbench run --tuned'", highlight=False
    )
