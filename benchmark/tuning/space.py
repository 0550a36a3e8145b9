"""A card's search space as Optuna distributions, and the seeded sampler and pruner every study uses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from msbench.methods.card import CategoricalParam, FloatParam, IntParam, SearchParam

if TYPE_CHECKING:
    import optuna


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
