"""One adapter's profile (network figures and latency), and the runner's profile of a job's fitted adapter."""

from __future__ import annotations

import gc
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from msbench.datasets import Case
from msbench.methods import Adapter

from ..store import write_json
from ..store.index import PROFILE_FILE
from .measure import (
    PROFILE_VERSION,
    ProfileSettings,
    environment,
    forward_flops,
    measure_latency,
    measure_training,
    memory_kind,
    parameter_counts,
    settings_for,
)


def profile_adapter(
    adapter: Adapter,
    case: Case,
    *,
    device: str,
    settings: ProfileSettings,
    train_case: Case | None = None,
) -> dict[str, Any]:
    """Profiles one adapter: network figures on ``train_case`` (default ``case``), latency of ``predict(case)``.

    A method without a network (:meth:`Adapter.profile_network` returns None) gets latency only; its network figures
    are None with the reason in ``not_applicable``. A phase that fails leaves its figures None and its error in
    ``errors``; the others still run.
    """
    # lazy: the engine's loop imports torch, loaded only where a method is profiled
    from msbench.methods.engine.loop import default_threads, torch_threads

    record: dict[str, Any] = {
        "version": PROFILE_VERSION,
        "method": adapter.card.name,
        "budget": adapter.context.budget,
        **environment(device),
        "memory_kind": memory_kind(device),
        "case_shape": [int(n) for n in case.shape],
        "case_spacing_mm": [float(s) for s in case.spacing_mm],
        "settings": asdict(settings),
        "errors": {},
        "not_applicable": None,
    }
    for key in FIGURES:
        record.setdefault(key, None)
    with torch_threads(default_threads(device)):
        try:
            spec = adapter.profile_network(train_case or case)
        except Exception as err:  # noqa: BLE001 - recorded, the latency may still be measurable
            spec = None
            record["errors"]["network"] = _error(err)
        if spec is None and "network" not in record["errors"]:
            record["not_applicable"] = (
                f"{adapter.card.name} has no network: parameters, FLOPs, training memory and throughput do not apply."
                if not adapter.card.trainable
                else f"{adapter.card.name}'s adapter gives no network to profile (profile_network returns None): "
                "parameters, FLOPs, training memory and throughput are not measured."
            )
        if spec is not None:
            _network_figures(record, spec, device, settings)
        try:
            figures, memory = measure_latency(lambda: adapter.predict(case), device, settings)
            record.update(figures, peak_infer_bytes=memory.peak_bytes)
            record["infer_reserved_bytes"] = memory.reserved_bytes
            record["infer_nvml_process_bytes"] = memory.nvml_process_bytes
        except Exception as err:  # noqa: BLE001
            record["errors"]["inference"] = _error(err)
    record["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return record


FIGURES = (
    "params_total", "params_trainable", "flops_forward", "flops_per_sample", "batch_size", "input_shape",
    "peak_train_bytes", "peak_infer_bytes", "train_samples_per_s", "train_voxels_per_s", "latency_p50_s",
    "latency_p95_s", "volumes_per_hour",
)  # fmt: skip


def _network_figures(record: dict[str, Any], spec: Any, device: str, settings: ProfileSettings) -> None:
    import torch  # lazy: torch loads only where a network is measured

    try:
        figures, memory, model, inputs = measure_training(spec, device, settings)
        record.update(figures, peak_train_bytes=memory.peak_bytes)
        record["train_reserved_bytes"] = memory.reserved_bytes
        record["train_nvml_process_bytes"] = memory.nvml_process_bytes
    except Exception as err:  # noqa: BLE001
        record["errors"]["training"] = _error(err)
        return
    try:
        record["params_total"], record["params_trainable"] = parameter_counts(model)
        record["flops_forward"] = float(forward_flops(model.eval(), inputs))  # the count does not depend on dtype
        record["flops_per_sample"] = record["flops_forward"] / max(1, int(inputs.shape[0]))
    except Exception as err:  # noqa: BLE001
        record["errors"]["flops"] = _error(err)
    finally:
        del model, inputs
        gc.collect()
        if str(device).startswith("cuda"):
            torch.cuda.empty_cache()


def _error(err: BaseException) -> str:
    lines = traceback.format_exception_only(type(err), err)
    return "".join(lines).strip()


def profile_job_adapter(
    adapter: Adapter, case: Case, train_case: Case, folder: Path, ids: dict[str, str]
) -> dict[str, Any]:
    """The runner's profile of a fitted adapter, written to ``folder/profile.json``; never raises.

    Latency is that of ``case`` (the job's first test case) on its own grid; the network figures use the training
    batches of ``train_case``. Any failure is recorded in the file (``errors``) instead of failing the job.
    """
    device = adapter.context.device
    try:
        # The test predictions just ran (warm); at smoke one step without warm-up and one prediction keep CI
        # cheap (the figures then include first-step costs: smoke profiles are for plumbing, not for comparisons).
        settings = replace(settings_for(adapter.context.budget), latency_warmup=0)
        if adapter.context.budget == "smoke":
            settings = replace(settings, warmup=0, steps=1, repeats=1)
        record = profile_adapter(adapter, case, device=device, settings=settings, train_case=train_case)
    except Exception as err:  # noqa: BLE001 - a profile never fails the job
        record = {"version": PROFILE_VERSION, "method": adapter.card.name, "device": device, "errors": {}}
        record["errors"]["profile"] = _error(err)
    record.update(profile_id=f"{ids['run_id']}/{ids['job_id']}", case=case.case_id, **ids)
    try:
        write_json(Path(folder) / PROFILE_FILE, record)
    except Exception as err:  # noqa: BLE001
        record.setdefault("errors", {})["write"] = _error(err)
    return record
