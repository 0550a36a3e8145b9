"""The training loop every trainable adapter shares.

Seeded epochs, mixed precision on CUDA, model selection on the validation cases, early stopping, an atomic
checkpoint per epoch and resume from it, a per-epoch log.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..adapter import HISTORY_CSV
from .checkpoint import CHECKPOINT_NAME, CHECKPOINT_VERSION, capture_rng_states, load_checkpoint, restore_rng_states
from .checkpoint import save_atomic as _save_atomic

HISTORY_JSON = "history.json"
NUM_THREADS_ENV = "MSBENCH_NUM_THREADS"


@dataclass(frozen=True)
class EngineConfig:
    """How :func:`fit_model` trains.

    Attributes:
        epochs: Maximum number of epochs.
        seed: Seed of the fit; every epoch derives its own generators from ``(seed, epoch)`` so that a resumed run
            replays exactly the epochs an uninterrupted one would.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        patience: Epochs without improvement of ``select`` before stopping (None: never stop early).
        amp: Mixed precision (float16 autocast and a gradient scaler); applies on CUDA only, CPU always runs fp32.
        select: Validation key that picks the best epoch (higher is better unless ``select_mode`` is ``min``). A NaN
            value (``val_dice`` over validation scans that are all both-empty) never beats a number; when every
            epoch is NaN the last epoch is kept and a ``RuntimeWarning`` says so.
        select_mode: ``max`` or ``min``.
        scheduler_key: Validation key a ``ReduceLROnPlateau`` scheduler is stepped on (other schedulers step once
            per epoch without argument).
        grad_clip: Maximum gradient norm (None: no clipping).
        deterministic: On CPU, ``torch.use_deterministic_algorithms(True, warn_only=True)`` during the fit.
        progress: Show progress bars.
        signature: Text identifying the fit (hyper-parameters, data); a checkpoint written under another signature
            is refused instead of being resumed.
        num_threads: Torch threads during the fit (restored after); None: :func:`default_threads` of the device.
        bn_recalibration_batches: Before each validation, recompute every batch norm's running statistics from this
            many training batches under the epoch's final weights (``torch.optim.swa_utils.update_bn``, "precise
            BN"). 0 keeps PyTorch's running averages, which lag weights that a short high-learning-rate run changes
            quickly, so that eval-mode predictions swing from epoch to epoch.
        on_epoch: Called as ``on_epoch(epoch, metrics)`` with each epoch's validation metrics once its checkpoint is
            written (tuning reports them to its pruner); an exception it raises stops the fit and propagates.
    """

    epochs: int
    seed: int = 0
    device: str = "cpu"
    patience: int | None = None
    amp: bool = True
    select: str = "val_dice"
    select_mode: str = "max"
    scheduler_key: str = "val_loss"
    grad_clip: float | None = None
    deterministic: bool = True
    progress: bool = True
    signature: str = ""
    num_threads: int | None = None
    bn_recalibration_batches: int = 0
    on_epoch: Callable[[int, Mapping[str, float]], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"EngineConfig.epochs must be >= 0, got {self.epochs}.")
        if self.select_mode not in ("max", "min"):
            raise ValueError(f"EngineConfig.select_mode must be 'max' or 'min', got {self.select_mode!r}.")
        if self.bn_recalibration_batches < 0:
            raise ValueError(f"EngineConfig.bn_recalibration_batches must be >= 0, got {self.bn_recalibration_batches}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"EngineConfig.patience must be None or >= 1, got {self.patience}.")

    @property
    def use_amp(self) -> bool:
        """True when mixed precision is on: ``amp`` and a CUDA device."""
        return self.amp and str(self.device).startswith("cuda")


class TrainTask(Protocol):
    """What a method hands the engine: its batches, its loss and its validation.

    ``train_batches(epoch, rng)`` yields ``(inputs, targets)`` tensors (on any device; the engine moves them) for
    one epoch, drawing every random choice from ``rng`` (a numpy Generator seeded from ``(seed, epoch)``).
    ``loss(logits, targets)`` returns the total loss to minimise and its named terms as floats.
    ``validate(model)`` evaluates the model (already in eval mode, under no_grad) on the validation cases only and
    returns at least the keys named by ``EngineConfig.select`` and ``EngineConfig.scheduler_key``.
    """

    def train_batches(self, epoch: int, rng: np.random.Generator) -> Iterable[tuple[torch.Tensor, torch.Tensor]]: ...

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]: ...

    def validate(self, model: nn.Module) -> dict[str, float]: ...


@dataclass
class TrainResult:
    """The outcome of :func:`fit_model`.

    Attributes:
        best_epoch: 1-based epoch whose weights were selected (None when no epoch ran).
        best_metrics: Validation metrics of that epoch.
        history: One row per epoch: epoch, train loss and its terms, validation metrics, lr, seconds.
        best_weights: ``state_dict`` of the selected epoch (CPU tensors); already loaded into the model.
        resumed_from: Number of epochs found complete in the checkpoint at the start of this call (0: fresh).
        stopped_early: True when patience ran out before ``epochs``.
    """

    best_epoch: int | None
    best_metrics: dict[str, float]
    history: list[dict[str, Any]]
    best_weights: dict[str, torch.Tensor]
    resumed_from: int = 0
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch, derived from the fit's seed (stable across runs and resumes)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seeds python's ``random``, numpy's legacy global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit_model(
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer,
    task: TrainTask,
    config: EngineConfig,
    workdir: Path,
    scheduler: Any | None = None,
) -> TrainResult:
    """Trains ``model`` on ``task``, resuming from ``workdir/checkpoint.pt`` when a previous call left one.

    Every epoch: seed torch and a numpy Generator from ``(seed, epoch)``, run the task's batches (autocast and a
    gradient scaler on CUDA when ``amp``), validate on the validation cases, step the scheduler, keep the best
    weights by ``config.select``, write the checkpoint atomically and append the epoch to ``history.csv`` /
    ``history.json``. Stops after ``config.epochs`` or when ``config.patience`` epochs pass without improvement.
    At the end the best weights are loaded into ``model``.

    Args:
        model: The network (moved to ``config.device`` here).
        optimizer: Optimiser over the model's parameters.
        task: Batches, loss and validation (see :class:`TrainTask`).
        config: Epochs, seed, device, selection, early stopping.
        workdir: Folder for the checkpoint and the per-epoch log.
        scheduler: Optional learning-rate scheduler; ``ReduceLROnPlateau`` is stepped on ``config.scheduler_key``.

    Returns:
        The best epoch, its metrics, the history and the best weights.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device)
    model.to(device)
    scaler = torch.amp.GradScaler("cuda", enabled=config.use_amp)
    state = _TrainState()
    ckpt_path = workdir / CHECKPOINT_NAME
    if ckpt_path.exists():
        state = _resume(ckpt_path, config, model, optimizer, scheduler, scaler, device)
    resumed_from = state.epochs_done

    threads = config.num_threads or default_threads(config.device)
    with torch_threads(threads), _determinism(config), _progress(config, state.epochs_done) as bar:
        while state.epochs_done < config.epochs and not state.stopped_early:
            epoch = state.epochs_done + 1
            row = _run_epoch(model, optimizer, task, config, scaler, epoch, device)
            _recalibrate_batch_norm(model, task, config, epoch, device)
            metrics = _validate(model, task, config)
            row.update(metrics)
            _step_scheduler(scheduler, metrics, config)
            row["seconds"] = round(time.perf_counter() - row.pop("_start"), 3)
            state.record(row, metrics, model, config)
            _save_atomic(state.payload(config, model, optimizer, scheduler, scaler), ckpt_path)
            _write_history(workdir, state.history)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}", **{config.select: f"{metrics[config.select]:.4f}"})
            if config.on_epoch is not None:
                config.on_epoch(epoch, dict(metrics))

    if state.best_weights:
        model.load_state_dict(state.best_weights)
    if state.best_value is not None and math.isnan(state.best_value):
        warnings.warn(
            f"model selection: {config.select} was NaN in every epoch (every validation scan both-empty: no "
            f"reference lesion and no prediction), so the last epoch ({state.best_epoch}) is kept. Use validation "
            "cases that contain lesions.",
            RuntimeWarning,
            stacklevel=2,
        )
    return TrainResult(
        best_epoch=state.best_epoch,
        best_metrics=dict(state.best_metrics),
        history=list(state.history),
        best_weights=state.best_weights,
        resumed_from=resumed_from,
        stopped_early=state.stopped_early,
    )


@dataclass
class _TrainState:
    epochs_done: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)
    stale_epochs: int = 0
    stopped_early: bool = False

    def record(self, row: dict[str, Any], metrics: dict[str, float], model: nn.Module, config: EngineConfig) -> None:
        self.epochs_done = int(row["epoch"])
        self.history.append(row)
        value = float(metrics[config.select])
        if _improves(value, self.best_value, config.select_mode):
            self.best_value, self.best_epoch, self.best_metrics = value, self.epochs_done, dict(metrics)
            self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            self.stale_epochs = 0
        else:
            self.stale_epochs += 1
        if config.patience is not None and self.stale_epochs >= config.patience:
            self.stopped_early = True

    def payload(self, config: EngineConfig, model: nn.Module, optimizer, scheduler, scaler) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "signature": config.signature,
            "epochs_done": self.epochs_done,
            "model": {k: v.detach().to("cpu") for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "scaler": scaler.state_dict(),
            "rng": capture_rng_states(),
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "best_metrics": self.best_metrics,
            "best_weights": self.best_weights,
            "stale_epochs": self.stale_epochs,
            "stopped_early": self.stopped_early,
        }


def _improves(value: float, best: float | None, mode: str) -> bool:
    """Whether an epoch's selection value beats the best so far.

    NaN (``val_dice`` when every validation scan is both-empty, the metric suite's convention) is no evidence: it
    never replaces a number, and any number replaces it. While every epoch so far is NaN, the latest one is kept
    (and patience does not run down), so a fit whose validation scans are all both-empty ends with its last epoch.
    """
    if best is None or math.isnan(best):
        return True
    if math.isnan(value):
        return False
    return value > best if mode == "max" else value < best


def _resume(path: Path, config: EngineConfig, model, optimizer, scheduler, scaler, device) -> _TrainState:
    payload = load_checkpoint(path)
    if payload["signature"] != config.signature:
        raise ValueError(
            f"{path}: the checkpoint belongs to another fit (signature {payload['signature'][:80]!r}, this fit "
            f"{config.signature[:80]!r}). Use a fresh workdir or delete the checkpoint to train from scratch."
        )
    model.load_state_dict(payload["model"])
    model.to(device)
    optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload["scheduler"]:
        scheduler.load_state_dict(payload["scheduler"])
    if payload["scaler"]:
        scaler.load_state_dict(payload["scaler"])
    restore_rng_states(payload["rng"])
    return _TrainState(
        epochs_done=int(payload["epochs_done"]),
        history=list(payload["history"]),
        best_epoch=payload["best_epoch"],
        best_value=payload["best_value"],
        best_metrics=dict(payload["best_metrics"]),
        best_weights=dict(payload["best_weights"]),
        stale_epochs=int(payload["stale_epochs"]),
        stopped_early=bool(payload["stopped_early"]),
    )


def _run_epoch(model, optimizer, task: TrainTask, config: EngineConfig, scaler, epoch: int, device) -> dict[str, Any]:
    start = time.perf_counter()
    seed = epoch_seed(config.seed, epoch)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.train()
    totals: dict[str, float] = {}
    n_steps = 0
    for inputs, targets in task.train_batches(epoch, rng):
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=config.use_amp):
            logits = model(inputs)
        loss, terms = task.loss(logits.float(), targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss became {loss.item()} at epoch {epoch}, step {n_steps + 1}; lower the learning rate "
                "or check the inputs for NaN/inf."
            )
        scaler.scale(loss).backward()
        if config.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        n_steps += 1
        totals["loss"] = totals.get("loss", 0.0) + float(loss.detach())
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    if n_steps == 0:
        raise ValueError(f"the task yielded no training batch in epoch {epoch}; check the training cases.")
    row: dict[str, Any] = {"epoch": epoch, "steps": n_steps}
    row.update({name: value / n_steps for name, value in totals.items()})
    row["lr"] = float(optimizer.param_groups[0]["lr"])
    row["_start"] = start
    return row


def _recalibrate_batch_norm(model: nn.Module, task: TrainTask, config: EngineConfig, epoch: int, device) -> None:
    """Recomputes batch-norm running statistics from ``config.bn_recalibration_batches`` fresh training batches.

    The batches come from the task with their own generator (seeded by the fit's seed, the epoch and a tag), and the
    next epoch reseeds everything, so training is unchanged and a resumed fit recalibrates as an uninterrupted one.
    """
    n = config.bn_recalibration_batches
    if n == 0 or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return
    from torch.optim.swa_utils import update_bn

    seed = int(np.random.SeedSequence([int(config.seed), int(epoch), _BN_TAG]).generate_state(1)[0])
    torch.manual_seed(seed)
    inputs = (x.to(device) for x, _ in islice(task.train_batches(epoch, np.random.default_rng(seed)), n))
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.float16, enabled=config.use_amp):
        update_bn(inputs, model)


_BN_TAG = 0xB4  # separates the recalibration's generator from the epoch's training generator


def _validate(model: nn.Module, task: TrainTask, config: EngineConfig) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        metrics = {k: float(v) for k, v in task.validate(model).items()}
    for key in {config.select, config.scheduler_key}:
        if key not in metrics:
            raise KeyError(f"task.validate() returned {sorted(metrics)}; the engine needs {key!r}.")
    return metrics


def _step_scheduler(scheduler, metrics: Mapping[str, float], config: EngineConfig) -> None:
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(metrics[config.scheduler_key])
    else:
        scheduler.step()


def _write_history(workdir: Path, history: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in history:
        columns.extend(k for k in row if k not in columns)
    csv_tmp = workdir / f".{HISTORY_CSV}.tmp"
    with csv_tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    csv_tmp.replace(workdir / HISTORY_CSV)
    json_tmp = workdir / f".{HISTORY_JSON}.tmp"
    json_tmp.write_text(json.dumps(history, indent=1))
    json_tmp.replace(workdir / HISTORY_JSON)


def default_threads(device: str) -> int:
    """Torch threads for a fit or a prediction: ``MSBENCH_NUM_THREADS`` when set, else every core this process may use.

    The harness runs one fit at a time, so the fit gets the machine (on 2 cores a 3D step runs 1.7x faster on two
    threads than on one). On a box shared with other jobs, ``MSBENCH_NUM_THREADS`` caps the OpenMP team.
    """
    del device  # the same on CPU and CUDA: on CUDA the threads do the data work
    value = os.environ.get(NUM_THREADS_ENV, "").strip()
    if value:
        try:
            threads = int(value)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"{NUM_THREADS_ENV}={value!r}: expected a positive number of threads.")
        return threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Sets torch's intra-op threads to ``n`` inside the block and restores the previous count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _determinism(config: EngineConfig) -> Iterator[None]:
    if not (config.deterministic and torch.device(config.device).type == "cpu"):
        yield
        return
    was_on = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_on, warn_only=was_warn)


@contextmanager
def _progress(config: EngineConfig, initial: int) -> Iterator[Any]:
    from tqdm.auto import tqdm

    bar = tqdm(total=config.epochs, initial=initial, desc="epochs", unit="epoch", disable=not config.progress)
    try:
        yield bar
    finally:
        bar.close()
