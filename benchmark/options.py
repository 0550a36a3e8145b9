"""Checks of ``msbench run`` options that must fail before anything is written to the results store."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.console import Console

from msbench.datasets import EXTRA_MODALITIES, MODALITIES, Case, DatasetSpec

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
INTER_RATER = "inter-rater"
BASELINE = "threshold"
"""The training-free method every run adds (``--no-baseline`` skips it) and every trained one must beat."""

console = Console(stderr=True)


def check_device_option(device: str, *, auto: bool = True) -> None:
    """``--device`` must be ``auto`` (where ``auto`` allows it), ``cpu``, ``cuda`` or ``cuda:N``; refused up front."""
    if not DEVICE_PATTERN.fullmatch(device) or (device == "auto" and not auto):
        expected = "auto, cpu, cuda or cuda:N" if auto else "cpu, cuda or cuda:N"
        raise ValueError(f"--device {device!r} is not supported; expected {expected}.")


def check_batch_size(batch_size: int | None) -> None:
    """``--batch-size``, when given, must be a positive number of samples per step."""
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: expected a positive number of samples per step.")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; explicit CUDA without that GPU is an error."""
    check_device_option(device)
    try:
        import torch
    except ImportError:
        return "cpu"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device} asked for, but torch sees no CUDA device; use --device cpu.")
    index = int(device.partition(":")[2] or 0)
    if device.startswith("cuda") and index >= torch.cuda.device_count():
        raise ValueError(
            f"--device {device}: torch sees {torch.cuda.device_count()} CUDA device(s) (cuda:0 ..); pick one of those."
        )
    return device


def check_modality_names(modalities: Sequence[str] | None) -> None:
    """``--modalities`` must name canonical modalities, each once."""
    if modalities is None:
        return
    known = (*MODALITIES, *EXTRA_MODALITIES)
    unknown = [m for m in modalities if m not in known]
    if not modalities or unknown:
        raise ValueError(
            f"--modalities {','.join(modalities)!r}: unknown {unknown or 'empty list'}; "
            f"expected a comma-separated list of {', '.join(known)} (ISBI 2015's mprage is t1)."
        )
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"--modalities {','.join(modalities)!r} names a modality twice.")


def check_modalities_on_disk(modalities: Sequence[str], cases: Sequence[Case], method: str) -> None:
    """Every case must have every modality the method will read."""
    lacking = [c for c in cases if not set(modalities) <= set(c.images)]
    if lacking:
        missing = sorted({m for c in lacking for m in modalities if m not in c.images})
        raise ValueError(
            f"method {method!r} needs modalities {list(modalities)}, but {missing} are missing from the dataset "
            f"(case {lacking[0].case_id} has {sorted(lacking[0].images)}); choose --modalities among those."
        )


def drop_inter_rater_without_second_rater(names: list[str], asked: str, spec: DatasetSpec) -> list[str]:
    """The inter-rater row needs a second rater: on a single-rater dataset it is skipped, or refused if named."""
    second = [r for r in spec.references if r not in (spec.primary_reference, "truth")]
    if INTER_RATER not in names or second:
        return names
    if INTER_RATER in (p.strip() for p in asked.split(",")):
        raise ValueError(
            f"--method {INTER_RATER}: dataset {spec.name!r} has a single reference ({spec.primary_reference}); "
            "the inter-rater row needs a second rater's mask."
        )
    console.print(
        f"note: skipping {INTER_RATER}: dataset {spec.name!r} has a single reference ({spec.primary_reference}), "
        "so there is no second rater to score."
    )
    return [n for n in names if n != INTER_RATER]
