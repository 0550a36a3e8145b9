"""The engine's training loop (``fit_model``) against a bare PyTorch loop on the same model, batches and patches.

Run: ``pytest tests/perf/test_engine_overhead.py -m perf -p no:cacheprovider -s``. Both loops draw the same
patches through the same :class:`PatchTask` (``patches.py`` sampler and crops, the basicunet smoke augmentation)
from a synthetic smoke-grid volume, train the same initial basicunet (width 4, 32^3 patches, batch 2) with Adam and
the task's BCE + Dice loss, on one torch thread. The engine adds what it does per step and per epoch (finite-loss
check, loss terms, history, atomic checkpoint, model selection); its validation is stubbed to a constant, as it is
not part of a training step. Rounds alternate the two loops; the report is the ratio of median CPU seconds
(process time) and of wall seconds. Target: overhead under 5 %. No assertion on the clock: the figures are printed.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.perf

EPOCHS, STEPS, ROUNDS = 2, 6, 5
THREADS = 1  # one OpenMP thread: on a shared box two spinning threads make CPU time noisy


class _NoValidation:
    """The task with a constant validation: the comparison is of training steps and the loop around them."""

    def __init__(self, task) -> None:
        self.task = task

    def train_batches(self, epoch, rng):
        return self.task.train_batches(epoch, rng)

    def loss(self, logits, targets):
        return self.task.loss(logits, targets)

    def validate(self, model):
        return {"val_dice": 0.5, "val_loss": 1.0}


def _setup(tmp_path):
    from msbench.benchmark.profiling import profile_case
    from msbench.methods import FitContext, build_adapter, get_card
    from msbench.methods.engine.loop import seed_everything

    card = get_card("basicunet")
    recipe = card.recipe("smoke")
    from dataclasses import replace

    recipe = replace(recipe, batch_size=2, iterations_per_epoch=STEPS)
    hparams = {**card.hparams("smoke"), "base_width": 4}
    context = FitContext(tmp_path / "w", 0, "cpu", "smoke", recipe, hparams, progress=False)
    adapter = build_adapter(card, context)
    case = profile_case(tmp_path / "case", 3.0, ("flair",))
    volume = adapter.load(case, with_mask=True)
    task = adapter.build_task([volume], [volume])
    seed_everything(0)
    initial = adapter.build_network(1).state_dict()
    return adapter, task, initial


def _engine(adapter, task, initial, workdir):
    from msbench.methods.engine.loop import EngineConfig, fit_model

    model = adapter.build_network(1)
    model.load_state_dict(initial)
    optimizer = adapter.make_optimizer(model)
    config = EngineConfig(epochs=EPOCHS, seed=0, progress=False, num_threads=torch.get_num_threads())
    fit_model(model, optimizer=optimizer, task=_NoValidation(task), config=config, workdir=workdir)


def _bare(adapter, task, initial):
    from msbench.methods.engine.loop import epoch_seed

    model = adapter.build_network(1)
    model.load_state_dict(initial)
    optimizer = adapter.make_optimizer(model)
    model.train()
    for epoch in range(1, EPOCHS + 1):
        seed = epoch_seed(0, epoch)
        torch.manual_seed(seed)
        for inputs, targets in task.train_batches(epoch, np.random.default_rng(seed)):
            optimizer.zero_grad(set_to_none=True)
            loss, _ = task.loss(model(inputs), targets)
            loss.backward()
            optimizer.step()


def test_engine_training_loop_overhead_against_a_bare_loop(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        _compare(tmp_path)
    finally:
        torch.set_num_threads(before)


def _compare(tmp_path) -> None:
    adapter, task, initial = _setup(tmp_path)
    times: dict[str, list[tuple[float, float]]] = {"engine": [], "bare": []}
    _bare(adapter, task, initial)  # warm-up (allocator, MONAI transforms)
    for round_ in range(ROUNDS):
        for name in ("engine", "bare") if round_ % 2 == 0 else ("bare", "engine"):
            c0, w0 = time.process_time(), time.perf_counter()
            if name == "engine":
                _engine(adapter, task, initial, tmp_path / f"engine{round_}")
            else:
                _bare(adapter, task, initial)
            times[name].append((time.process_time() - c0, time.perf_counter() - w0))
    cpu = {k: float(np.median([t[0] for t in v])) for k, v in times.items()}
    wall = {k: float(np.median([t[1] for t in v])) for k, v in times.items()}
    steps = EPOCHS * STEPS
    print(
        f"\nengine vs bare loop, {steps} steps of batch 2 at 32^3, {torch.get_num_threads()} threads, {ROUNDS} rounds:"
        f"\n  CPU s  engine {cpu['engine']:.2f}  bare {cpu['bare']:.2f}  overhead "
        f"{cpu['engine'] / cpu['bare'] - 1:+.1%}"
        f"\n  wall s engine {wall['engine']:.2f}  bare {wall['bare']:.2f}  overhead "
        f"{wall['engine'] / wall['bare'] - 1:+.1%}"
    )
