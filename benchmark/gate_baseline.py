"""The gate's baseline file: its schema, and reading and checking it (``msbench gate --baseline FILE``).

What the keys mean and how the gate judges them: :mod:`.gate`. ``gate_update`` writes such a file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .statistics import min_p, min_patients

BASELINE_SCHEMA = 1
DROP_TESTS = ("noise", "wilcoxon")

_GATE_KEYS = {
    "schema": int, "dataset": str, "protocol": str, "budget": str, "reference": str, "drop_test": str,
    "noise_k": float, "min_tolerance": float, "machine_tolerance": float, "threshold_fraction": float, "alpha": float,
    "note": str,
}  # fmt: skip
_METHOD_KEYS = {
    "min_dice": float, "threshold_fraction": float, "reference_dice": float, "noise_sd": float, "n_seeds": int,
    "max_drop": float, "two_sided": bool, "reference_cases": dict, "metrics": dict, "seed_dice": list,
    "reference_run": str, "floor_only": bool,
}  # fmt: skip
_BOUND_KEYS = {"min": float, "max": float}


class BaselineError(ValueError):
    """A baseline file that cannot be read: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class MethodBaseline:
    """What one method's run must reach (see the module docstring for the rules).

    Attributes:
        method: Registered method name.
        min_dice: Absolute floor on the mean Dice, or None.
        threshold_fraction: Floor as a fraction of the ``threshold`` run's mean Dice in the same store, or None.
        reference_dice: Mean Dice of the reference run over its seeds, or None (no drop check).
        noise_sd: Spread (sd) of the per-seed mean Dice of the reference run.
        n_seeds: Seeds the spread was measured over.
        max_drop: Explicit largest allowed drop; else the gate's rule from ``noise_sd``.
        two_sided: Judge a rise as well as a drop (training-free rows, where a change can only be a bug).
        reference_cases: Per-case Dice of the reference run (mean over seeds), for the paired test.
        bounds: Metric name -> (min, max), either None.
        seed_dice: The reference run's per-seed mean Dice (for the record).
        reference_run: The run id the reference numbers came from.
        floor_only: Judged by its floor and bounds alone, kept as written by ``--update`` (no noise measured).
    """

    method: str
    min_dice: float | None = None
    threshold_fraction: float | None = None
    reference_dice: float | None = None
    noise_sd: float | None = None
    n_seeds: int | None = None
    max_drop: float | None = None
    two_sided: bool = False
    reference_cases: Mapping[str, float] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    seed_dice: tuple[float, ...] = ()
    reference_run: str | None = None
    floor_only: bool = False


@dataclass(frozen=True)
class Baseline:
    """A parsed baseline file: the run identity every method is judged under, the rule's knobs and the methods."""

    path: Path
    dataset: str
    protocol: str
    budget: str
    methods: Mapping[str, MethodBaseline]
    reference: str = "mask1"
    drop_test: str = "noise"
    noise_k: float = 3.0
    min_tolerance: float = 0.01
    machine_tolerance: float = 0.0
    threshold_fraction: float | None = None
    alpha: float = 0.05
    note: str = ""

    def tolerance(self, entry: MethodBaseline) -> float:
        """Largest allowed drop of ``entry``'s mean Dice under the noise rule."""
        if entry.max_drop is not None:
            return entry.max_drop
        noise = self.noise_k * (entry.noise_sd or 0.0)
        floor = self.min_tolerance if entry.two_sided else max(self.min_tolerance, self.machine_tolerance)
        return max(noise, floor)


def _typed(path: Path, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BaselineError(
            f"{path}: key '{key}' must be a {kind.__name__}, got {type(value).__name__} {value!r}; fix the value."
        )
    return value


def _section(path: Path, prefix: str, table: Mapping[str, Any], keys: Mapping[str, type]) -> dict[str, Any]:
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise BaselineError(f"{path}: unknown key '{prefix}{unknown[0]}'; known keys there: {', '.join(sorted(keys))}.")
    return {k: _typed(path, prefix + k, v, keys[k]) for k, v in table.items()}


def _method(path: Path, name: str, table: Any) -> MethodBaseline:
    prefix = f"methods.{name}."
    if not isinstance(table, dict):
        raise BaselineError(f"{path}: 'methods.{name}' must be a table ([methods.{name}]), got {table!r}.")
    values = _section(path, prefix, table, _METHOD_KEYS)
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for metric, bound in values.pop("metrics", {}).items():
        if not isinstance(bound, dict) or not bound:
            raise BaselineError(f"{path}: '{prefix}metrics.{metric}' must be a table like {{min = 0.1, max = 0.9}}.")
        b = _section(path, f"{prefix}metrics.{metric}.", bound, _BOUND_KEYS)
        bounds[metric] = (b.get("min"), b.get("max"))
    cases = {
        str(k): _typed(path, f"{prefix}reference_cases.{k}", v, float)
        for k, v in values.pop("reference_cases", {}).items()
    }
    seeds = tuple(_typed(path, f"{prefix}seed_dice", v, float) for v in values.pop("seed_dice", []))
    if "reference_dice" not in values and ("max_drop" in values or "noise_sd" in values):
        raise BaselineError(f"{path}: '{prefix}max_drop'/'noise_sd' need '{prefix}reference_dice' to drop from.")
    if values.get("floor_only") and "reference_dice" in values:
        raise BaselineError(f"{path}: '{prefix}floor_only' and '{prefix}reference_dice' exclude each other.")
    return MethodBaseline(method=name, bounds=bounds, reference_cases=cases, seed_dice=seeds, **values)


def load_baseline(path: Path, *, allow_no_methods: bool = False) -> Baseline:
    """Reads and checks a baseline TOML file (``allow_no_methods``: a [gate] table alone, as ``--update`` starts from).

    Raises:
        BaselineError: The file is missing, not TOML, or has an unknown, missing or mistyped key (named with the file).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file; write one with 'msbench gate --update'.") from None
    except tomllib.TOMLDecodeError as err:
        raise BaselineError(f"{path}: not valid TOML ({err}).") from None
    unknown = sorted(set(raw) - {"gate", "methods"})
    if unknown:
        raise BaselineError(f"{path}: unknown top-level key '{unknown[0]}'; a baseline has [gate] and [methods.*].")
    gate = _section(path, "gate.", raw.get("gate", {}), _GATE_KEYS)
    for key in ("dataset", "protocol", "budget"):
        if key not in gate:
            raise BaselineError(f"{path}: missing key 'gate.{key}' (the run identity every method is judged under).")
    if gate.pop("schema", BASELINE_SCHEMA) != BASELINE_SCHEMA:
        raise BaselineError(f"{path}: 'gate.schema' must be {BASELINE_SCHEMA} (this msbench's baseline schema).")
    if gate.get("drop_test", "noise") not in DROP_TESTS:
        raise BaselineError(
            f"{path}: 'gate.drop_test' must be one of {', '.join(DROP_TESTS)}, not {gate['drop_test']!r}."
        )
    methods = raw.get("methods", {})
    if not isinstance(methods, dict) or not (methods or allow_no_methods):
        raise BaselineError(f"{path}: no [methods.NAME] table; a baseline gates at least one method.")
    baseline = Baseline(path=path, methods={n: _method(path, n, t) for n, t in methods.items()}, **gate)
    if baseline.drop_test == "wilcoxon":
        for entry in baseline.methods.values():
            n = len(entry.reference_cases)  # patients <= cases: the run's patients are checked again when judged
            if entry.reference_dice is not None and min_p(n, two_sided=entry.two_sided) >= baseline.alpha:
                needed = min_patients(baseline.alpha, two_sided=entry.two_sided)
                raise BaselineError(
                    f"{path}: 'methods.{entry.method}.reference_cases' has {n} cases: a {sides(entry)} Wilcoxon "
                    f"test on per-patient means cannot reach p < {baseline.alpha} with fewer than {needed} patients; "
                    "set 'gate.drop_test = \"noise\"' or gate on more patients."
                )
    return baseline


def sides(entry: MethodBaseline) -> str:
    return "two-sided" if entry.two_sided else "one-sided"
