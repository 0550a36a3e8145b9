"""Measuring a method's costs: settings, parameter and FLOP counts, peak memory, training and latency timing.

How each figure is measured is in :mod:`msbench.benchmark.profiling`'s docstring.
"""

from __future__ import annotations

import ctypes
import gc
import math
import os
import platform
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from msbench.methods.engine.parameters import count_parameters

from ..manifest import library_versions

if TYPE_CHECKING:
    import torch

PROFILE_VERSION = 1
PROFILE_SHAPE = (181, 217, 181)
"""The whole-volume grid latency is measured on by ``msbench profile``: MNI 1 mm (open_ms_data, MSSEG-2016 style)."""


@dataclass(frozen=True)
class ProfileSettings:
    """How much to measure.

    Attributes:
        warmup: Untimed training steps before the timed ones.
        steps: Timed training steps.
        repeats: Timed whole-volume predictions (p50 / p95 over these).
        latency_warmup: Untimed predictions before the timed ones.
    """

    warmup: int = 2
    steps: int = 5
    repeats: int = 5
    latency_warmup: int = 1

    def __post_init__(self) -> None:
        for name in ("steps", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"profiling needs {name} >= 1, got {getattr(self, name)}.")
        for name in ("warmup", "latency_warmup"):
            if getattr(self, name) < 0:
                raise ValueError(f"profiling needs {name} >= 0, got {getattr(self, name)}.")


def settings_for(budget: str, repeats: int | None = None) -> ProfileSettings:
    """Cheap settings at ``smoke`` (1 warm-up, 2 steps, 2 predictions), fuller ones otherwise; ``repeats`` overrides."""
    base = ProfileSettings(warmup=1, steps=2, repeats=2) if budget == "smoke" else ProfileSettings()
    return base if repeats is None else replace(base, steps=repeats, repeats=repeats)


# ---------------------------------------------------------------------------------------------------- counting


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(total, trainable) parameters: ``numel`` of each distinct parameter tensor (shared ones counted once)."""
    return count_parameters(model, trainable_only=False), count_parameters(model)


def forward_flops(model: torch.nn.Module, inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``inputs``, counted by ``torch.utils.flop_counter.FlopCounterMode``."""
    import torch  # lazy: torch loads only where a network is measured
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(inputs)
    return int(counter.get_total_flops())


# ------------------------------------------------------------------------------------------------------ memory


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{_STATUS} has no {key} line.")
    return int(match.group(1))


def reset_rss_peak() -> bool:
    """Returns free heap to the system and resets ``VmHWM`` to the current resident set; False where unsupported."""
    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass
class PeakMemory:
    """Peak bytes of a phase above what was in use at its start (see the module docstring); ``None`` if unknown."""

    kind: str
    peak_bytes: float | None = None
    reserved_bytes: float | None = None
    nvml_process_bytes: float | None = None


def memory_kind(device: str) -> str:
    return "cuda-allocator" if str(device).startswith("cuda") else "cpu-rss"


@contextmanager
def peak_memory(device: str) -> Iterator[PeakMemory]:
    """Measures the peak memory of the block on ``device`` (CUDA allocator counters or CPU resident set)."""
    result = PeakMemory(memory_kind(device))
    if result.kind == "cuda-allocator":
        import torch  # lazy: torch loads only where a network is measured

        dev = torch.device(device)
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        start, start_reserved = torch.cuda.memory_allocated(dev), torch.cuda.memory_reserved(dev)
        yield result
        torch.cuda.synchronize(dev)
        result.peak_bytes = float(torch.cuda.max_memory_allocated(dev) - start)
        result.reserved_bytes = float(torch.cuda.max_memory_reserved(dev) - start_reserved)
        result.nvml_process_bytes = _nvml_process_bytes(dev)
        return
    supported = reset_rss_peak()
    start = _status_kib("VmRSS") if supported else 0
    yield result
    if supported:
        result.peak_bytes = float((_status_kib("VmHWM") - start) * 1024)


def _nvml_process_bytes(device: torch.device) -> float | None:
    """GPU memory NVML attributes to this process (context and allocator cache included); None without pynvml."""
    try:
        import pynvml  # optional: NVML's figure only where it is installed
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                return float(proc.usedGpuMemory)
    except pynvml.NVMLError:
        return None
    return None


# ---------------------------------------------------------------------------------------------------- timing


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch  # lazy: torch loads only where a network is measured

        torch.cuda.synchronize(torch.device(device))


def measure_training(
    spec: Any, device: str, settings: ProfileSettings
) -> tuple[dict[str, Any], PeakMemory, torch.nn.Module, torch.Tensor]:
    """Builds a fresh network and trains it ``warmup + steps`` steps on the method's own batches.

    Args:
        spec: The adapter's :class:`~msbench.methods.adapter.NetworkProfile`.
        device: Where to train.
        settings: Warm-up and timed steps.

    Returns:
        Throughput figures, the phase's peak memory, the trained network and one batch of inputs (for FLOPs).
    """
    import torch  # lazy: torch loads only where a network is measured

    dev = torch.device(device)
    use_amp = bool(spec.amp) and dev.type == "cuda"
    data_s = step_s = 0.0
    samples = voxels = 0
    with peak_memory(device) as memory:
        model = spec.build_model().to(dev).train()
        optimizer = spec.make_optimizer(model)
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        inputs = targets = None
        for step in range(settings.warmup + settings.steps):
            _sync(device)
            t0 = time.perf_counter()
            inputs, targets = next(spec.batches)
            inputs, targets = inputs.to(dev, non_blocking=True), targets.to(dev, non_blocking=True)
            _sync(device)
            t1 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=use_amp):
                logits = model(inputs)
            loss, _ = spec.loss(logits.float(), targets)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            _sync(device)
            t2 = time.perf_counter()
            if step >= settings.warmup:
                data_s, step_s = data_s + (t1 - t0), step_s + (t2 - t1)
                samples += int(targets.shape[0])
                voxels += int(math.prod(targets.shape[:1] + targets.shape[2:]))
        del optimizer, scaler, logits, loss
    assert inputs is not None and targets is not None
    total = data_s + step_s
    figures = {
        "batch_size": int(inputs.shape[0]),
        "input_shape": [int(n) for n in inputs.shape],
        "target_shape": [int(n) for n in targets.shape],
        "voxels_per_sample": int(math.prod(targets.shape[2:])),
        "train_steps": settings.steps,
        "warmup_steps": settings.warmup,
        "train_step_s": step_s / settings.steps,
        "train_data_s": data_s / settings.steps,
        "train_samples_per_s": samples / total if total > 0 else None,
        "train_voxels_per_s": voxels / total if total > 0 else None,
        "amp": use_amp,
    }
    return figures, memory, model, inputs.detach()


def measure_latency(
    predict: Callable[[], Any], device: str, settings: ProfileSettings
) -> tuple[dict[str, Any], PeakMemory]:
    """Times ``predict()`` (one whole case) ``repeats`` times after ``latency_warmup`` untimed calls."""
    for _ in range(settings.latency_warmup):
        predict()
    seconds = []
    with peak_memory(device) as memory:
        for _ in range(settings.repeats):
            _sync(device)
            t0 = time.perf_counter()
            predict()
            _sync(device)
            seconds.append(time.perf_counter() - t0)
    p50 = float(np.percentile(seconds, 50))
    figures = {
        "latency_s": [round(s, 6) for s in seconds],
        "latency_p50_s": p50,
        "latency_p95_s": float(np.percentile(seconds, 95)),
        "volumes_per_hour": 3600.0 / p50 if p50 > 0 else None,
        "latency_repeats": settings.repeats,
        "latency_warmup": settings.latency_warmup,
    }
    return figures, memory


# ---------------------------------------------------------------------------------------------------- records


def environment(device: str) -> dict[str, Any]:
    """Device, its name and memory, threads and library versions: part of every profile."""
    import torch  # lazy: torch loads only where a network is measured

    from msbench.methods.engine.loop import default_threads  # lazy: imports torch

    info: dict[str, Any] = {"device": device, "threads": default_threads(device), "versions": library_versions()}
    if str(device).startswith("cuda"):
        dev = torch.device(device)
        props = torch.cuda.get_device_properties(dev)
        info.update(
            device=f"cuda:{dev.index or 0}",
            device_name=props.name,
            device_memory_bytes=float(props.total_memory),
            cuda=torch.version.cuda,
        )
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        memory = None
        with suppress(ValueError, OSError, AttributeError):
            memory = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        info.update(device="cpu", device_name=name, device_memory_bytes=memory, cpu_count=os.cpu_count())
    return info
