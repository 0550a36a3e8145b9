"""One trial: fit the sampled parameters on the fold's training patients, score its validation patient, tell."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import manifest as mf
from ..fitting import FitSpec, Overrides, finite_mean, fit, validation_dice_of
from .request import TuneRequest, _Data
from .workers import NOT_COUNTED

if TYPE_CHECKING:
    import optuna


def _run_trial(study: optuna.Study, trial: optuna.Trial, data: _Data, request: TuneRequest) -> tuple[str, float | None]:
    """Fits one trial on the fold's training patients, scores its validation patient, tells the study."""
    import optuna
    from optuna.trial import TrialState

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
