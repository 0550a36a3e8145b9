"""What a method costs: parameters, FLOPs, peak memory, training throughput and whole-volume inference latency.

Every figure goes through the method's own adapter: its network (:meth:`Adapter.profile_network`), its own
training batches (sampler and augmentation) at its patch or slice size and batch size, its own loss and optimiser,
and its own :meth:`Adapter.predict` (sliding window, slice stacks, resampling, nnU-Net's predictor) for latency.

How each number is measured:

* Parameters: ``numel`` of each distinct parameter tensor, all and those with ``requires_grad``.
* FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` around one forward pass of one training batch (batch size
  samples); it counts a multiply-add as 2 FLOPs for convolutions and matrix products and ignores element-wise ops.
* Peak memory, always the peak during the phase above what was in use when it began (training: from building the
  network to the last measured step, so weights, gradients, optimiser state and activations; inference: the
  prediction calls, with the model already loaded). On CUDA (``memory_kind`` ``cuda-allocator``) it comes from the
  caching allocator's counters, ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, less the
  allocated bytes at the start; NVML's per-process figure is added where ``pynvml`` imports. On CPU (``cpu-rss``)
  it is the process's resident-set high-water mark, Linux's ``VmHWM`` in ``/proc/self/status``: glibc returns its
  free heap to the system (``malloc_trim(0)``), ``echo 5 > /proc/self/clear_refs`` resets the high-water mark to
  the current resident set, and the figure is ``VmHWM`` after the phase less ``VmRSS`` at its start. Without
  ``clear_refs`` (not Linux) CPU memory is not reported.
* Training throughput: ``warmup`` steps, then ``steps`` timed steps (batch from the method's pipeline, forward,
  loss, backward, optimiser step; CUDA synchronised before each clock read); samples and voxels (of the targets:
  the voxels segmented) per second.
* Latency: ``predict`` of one whole case after ``latency_warmup`` untimed calls, p50 and p95 over ``repeats``
  calls, and volumes per hour from the median. It includes reading the case's files and the method's pre- and
  post-processing, as a user's prediction does.
"""

from __future__ import annotations

import ctypes
import gc
import math
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from msbench.datasets.case import Case
    from msbench.methods import Adapter, MethodCard

PROFILE_VERSION = 1
PROFILE_SHAPE = (181, 217, 181)
"""The whole-volume grid latency is measured on by ``msbench profile``: MNI 1 mm (open_ms_data, MSSEG-2016 style)."""
PROFILE_FILE = "profile.json"
MEMORY_KINDS = ("cuda-allocator", "cpu-rss")


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
    params = list(model.parameters())  # deduplicated by nn.Module
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def forward_flops(model: torch.nn.Module, inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``inputs``, counted by ``torch.utils.flop_counter.FlopCounterMode``."""
    import torch
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
        import torch

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
    import os

    try:
        import pynvml
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
        import torch

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
    import torch

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
    import os
    import platform

    import torch

    from msbench.methods.engine.loop import default_threads

    from .manifest import library_versions

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


def new_profile_id(method: str, device: str) -> str:
    """``<method>-<device>-<UTC time>-<random>``: the id of a standalone profile (``RESULTS/profiles/<id>.json``)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{method}-{device.replace(':', '')}-{stamp}-{uuid.uuid4().hex[:6]}"


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
    for key in _FIGURES:
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


_FIGURES = (
    "params_total", "params_trainable", "flops_forward", "flops_per_sample", "batch_size", "input_shape",
    "peak_train_bytes", "peak_infer_bytes", "train_samples_per_s", "train_voxels_per_s", "latency_p50_s",
    "latency_p95_s", "volumes_per_hour",
)  # fmt: skip


def _network_figures(record: dict[str, Any], spec: Any, device: str, settings: ProfileSettings) -> None:
    import torch

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


# ------------------------------------------------------------------------------------------------ standalone


def default_spacing(budget: str) -> float:
    """Grid spacing of the profiling case: 3 mm at ``smoke`` (the smoke phantom's grid), 1 mm otherwise."""
    return 3.0 if budget == "smoke" else 1.0


def profile_case(root: Path, spacing_mm: float = 1.0, modalities: Sequence[str] = ("flair", "t1", "t2")) -> Case:
    """A synthetic case over the 181x217x181 mm MNI field of view at ``spacing_mm``, with two raters' masks.

    At 1 mm the grid is 181x217x181 voxels (at 3 mm 60x72x60). An ellipsoidal brain fills most of the box, so a
    method's crop to the brain saves little: latency is that of a whole grid. Lesions are a few bright spheres (the
    method's sampler needs some); the second rater's mask equals the first.
    """
    import nibabel as nib

    from msbench.datasets.case import Case

    if not spacing_mm > 0:
        raise ValueError(f"--spacing must be a positive voxel size in mm, got {spacing_mm}.")
    shape = tuple(max(8, int(round(n / spacing_mm))) for n in PROFILE_SHAPE)
    rng = np.random.default_rng(0)
    axes = np.ogrid[tuple(slice(0, n) for n in shape)]
    centre = [(n - 1) / 2 for n in shape]
    brain = sum(((a - c) / (n / 2 - 1.5)) ** 2 for a, c, n in zip(axes, centre, shape, strict=True)) <= 1.0
    mask = np.zeros(shape, bool)
    for _ in range(6):
        c = [ci + rng.uniform(-0.3, 0.3) * n for ci, n in zip(centre, shape, strict=True)]
        radius = max(1.5, 8.0 / spacing_mm) * rng.uniform(0.5, 1.0)
        mask |= sum((a - ci) ** 2 for a, ci in zip(axes, c, strict=True)) <= radius**2
    mask &= brain
    affine = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    images = {}
    for modality, factor in (("flair", 1.6), ("t1", 0.7), ("t2", 1.4), ("pd", 1.2)):
        if modality not in modalities:
            continue
        tissue = rng.normal(100.0, 15.0, shape).astype(np.float32)
        tissue[mask] *= factor
        images[modality] = root / f"profile_{modality}.nii.gz"
        nib.save(
            nib.Nifti1Image(np.where(brain, np.clip(tissue, 1.0, None), 0.0).astype(np.float32), affine),
            images[modality],
        )
    masks = {}
    for rater in ("mask1", "mask2"):
        masks[rater] = root / f"profile_{rater}.nii.gz"
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), masks[rater])
    return Case("profile_01", "profile", 1, images, masks, dataset="profile")


def profile_method(
    card: MethodCard,
    case: Case,
    *,
    device: str = "cpu",
    budget: str = "smoke",
    batch_size: int | None = None,
    settings: ProfileSettings | None = None,
    workdir: Path,
    seed: int = 0,
) -> dict[str, Any]:
    """Profiles one registered method at its ``budget`` recipe (``batch_size`` overrides the recipe's) on ``case``.

    A training-free method is calibrated on ``case`` first (the threshold's grid search: cheap); a trainable one is
    profiled with its untrained network.
    """
    from msbench.methods import Adapter, FitContext, build_adapter

    recipe = card.recipe(budget)
    if batch_size is not None:
        if batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {batch_size}.")
        recipe = replace(recipe, batch_size=int(batch_size))
    modalities = tuple(card.modalities)
    context = FitContext(
        workdir=Path(workdir),
        seed=seed,
        device=device,
        budget=budget,
        recipe=recipe,
        hparams=card.hparams(budget),
        modalities=modalities,
        progress=False,
    )
    adapter = build_adapter(card, context)
    ids = {"profile_id": new_profile_id(card.name, device), "run_id": None, "job_id": None, "case": "synthetic"}
    if type(adapter).profile_network is Adapter.profile_network and card.trainable:
        return {
            "version": PROFILE_VERSION,
            "method": card.name,
            "budget": budget,
            **environment(device),
            "memory_kind": memory_kind(device),
            **dict.fromkeys(_FIGURES),
            "errors": {},
            "not_applicable": f"{card.name} builds its network only when trained (nnU-Net plans it from the training "
            "data), so it is not profiled standalone; 'msbench run' stores its profile with every trained model "
            "(the job's profile.json).",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **ids,
        }
    if not card.trainable:
        adapter.fit([case], [case])
    record = profile_adapter(adapter, case, device=device, settings=settings or settings_for(budget))
    record.update(ids)
    return record


def store_profile(results: Path, record: dict[str, Any]) -> Path:
    """Writes a standalone profile to ``RESULTS/profiles/<profile_id>.json`` (atomically) and indexes it."""
    from .store import write_json
    from .store.index import PROFILES_DIR, index_profile

    path = write_json(Path(results) / PROFILES_DIR / f"{record['profile_id']}.json", record)
    index_profile(results, record)
    return path


def profile_job_adapter(
    adapter: Adapter, case: Case, train_case: Case, folder: Path, ids: dict[str, str]
) -> dict[str, Any]:
    """The runner's profile of a fitted adapter, written to ``folder/profile.json``; never raises.

    Latency is that of ``case`` (the job's first test case) on its own grid; the network figures use the training
    batches of ``train_case``. Any failure is recorded in the file (``errors``) instead of failing the job.
    """
    from .store import write_json

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
