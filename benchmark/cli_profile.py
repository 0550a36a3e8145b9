"""``msbench profile``: what each method costs (parameters, FLOPs, peak memory, throughput, latency), stored."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from msbench.methods import BUDGETS, get_card, resolve_methods

from . import options
from ._console import err, out, print_table
from ._console import fail as _fail
from .options import check_batch_size
from .store import check_results_dir


def _check_device(device: str) -> str:

    options.check_device_option(device, auto=False)  # a profile names the device it measures
    return options.resolve_device(device)


def _si(value: Any, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}".strip()


def _mib(value: Any) -> str:
    return "n/a" if value is None else f"{float(value) / 2**20:,.0f}"


def profile_rich_table(records: list[dict[str, Any]]) -> Table:
    """One row per profile: the figures of ``profiles`` (n/a where a figure does not apply or failed)."""
    first = records[0] if records else {}
    title = f"{first.get('device', '?')} ({first.get('device_name', '?')}), memory: {first.get('memory_kind', '?')}"
    table = Table(title=title)
    for column in (
        "method", "batch x input", "params", "FLOPs fwd", "train peak MiB", "infer peak MiB", "train samples/s",
        "train voxels/s", "latency p50 s", "p95 s", "volumes/h", "note",
    ):  # fmt: skip
        table.add_column(column, no_wrap=column != "note")
    for r in records:
        shape = r.get("input_shape")
        note = "; ".join(f"{k}: {v}" for k, v in (r.get("errors") or {}).items()) or (
            "network n/a" if r.get("not_applicable") else ""
        )
        table.add_row(
            str(r.get("method")),
            "n/a" if shape is None else "x".join(str(n) for n in shape),
            _si(r.get("params_total")),
            _si(r.get("flops_forward")),
            _mib(r.get("peak_train_bytes")),
            _mib(r.get("peak_infer_bytes")),
            _si(r.get("train_samples_per_s")),
            _si(r.get("train_voxels_per_s")),
            "n/a" if r.get("latency_p50_s") is None else f"{r['latency_p50_s']:.3g}",
            "n/a" if r.get("latency_p95_s") is None else f"{r['latency_p95_s']:.3g}",
            "n/a" if r.get("volumes_per_hour") is None else f"{r['volumes_per_hour']:.3g}",
            note,
        )
    return table


def profile(
    method: Annotated[str, typer.Option(help="'all', a comma-separated list, or patterns like 'fcdensenet*'.")],
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    batch_size: Annotated[int | None, typer.Option(help="Samples per training step instead of the recipe's.")] = None,
    repeats: Annotated[
        int | None, typer.Option(help="Timed training steps and whole-volume predictions (default: the budget's).")
    ] = None,
    results: Annotated[Path, typer.Option(help="Results store folder (profiles/<id>.json and the index).")] = Path(
        "results"
    ),
    budget: Annotated[
        str, typer.Option(help="smoke, quick or paper: whose recipe (batch, patch) is profiled.")
    ] = "smoke",
    spacing: Annotated[
        float | None,
        typer.Option(help="Voxel size (mm) of the 181x217x181 mm profiling case (default: 3 at smoke, else 1)."),
    ] = None,
) -> None:
    """Profile methods at their own patch/slice and batch size: parameters, FLOPs, peak memory, throughput, latency."""
    # numba: profiling imports the fitting door and its metric kernels (cli.py's docstring)
    from .profiling import default_spacing, profile_case, profile_method, settings_for, store_profile

    try:
        check_results_dir(results, write=True)
        names = resolve_methods(method)
        device = _check_device(device)
        if budget not in BUDGETS:
            raise ValueError(f"--budget {budget!r} is not one of {', '.join(BUDGETS)}.")
        check_batch_size(batch_size)
        if repeats is not None and repeats < 1:
            raise ValueError(f"--repeats must be >= 1, got {repeats}.")
        settings = settings_for(budget, repeats)
        grid = default_spacing(budget) if spacing is None else float(spacing)
        if not grid > 0:
            raise ValueError(f"--spacing must be a positive voxel size in mm, got {spacing}.")
    except (KeyError, ValueError) as error:
        _fail(str(error.args[0]) if isinstance(error, KeyError) else str(error))
        return
    records: list[dict[str, Any]] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="msbench-profile-") as tmp:
        modalities = sorted({m for n in names for m in get_card(n).modalities})
        case = profile_case(Path(tmp) / "case", grid, modalities)
        for name in names:
            err.print(f"profiling {name} on {device} ...", highlight=False)
            try:
                record = profile_method(
                    get_card(name),
                    case,
                    device=device,
                    budget=budget,
                    batch_size=batch_size,
                    settings=settings,
                    workdir=Path(tmp) / name,
                )
            except (KeyError, ValueError) as error:  # e.g. no recipe for this budget: the others still run
                err.print(f"[red]error:[/red] {name}: {escape(str(error))}", highlight=False)
                failed.append(name)
                continue
            try:
                store_profile(results, record)
            except (OSError, ValueError) as error:
                _fail(f"cannot store the profile of {name} in {results}: {error}")
                return
            records.append(record)
    print_table(profile_rich_table(records))
    out.print(f"stored {len(records)} profile(s) under {results / 'profiles'}")
    if failed:
        raise typer.Exit(1)
