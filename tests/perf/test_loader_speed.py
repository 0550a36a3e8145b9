"""Samples per second of the engine's patch and slice pipelines against MONAI's DataLoader on the same transforms.

Run: ``pytest tests/perf/test_loader_speed.py -m perf -p no:cacheprovider -s``. Each pipeline draws the same
samples from a synthetic smoke-grid case: the patch pipeline (``PatchTask.train_batches``: the sampler's crops and
the basicunet smoke augmentation, MONAI flips) and the slice pipeline (``SliceSampler.batches``: adjacent-slice
stacks, the fcdensenet_clstm sampler). The peers are ``monai.data.DataLoader`` over a ``monai.data.Dataset`` of the
same draws with the same crop and transforms, with MONAI's default settings (``num_workers=0``) and with one worker
per core (``num_workers=2``, persistent). Printed: samples per second of each and the ratios, plus the data share
of a training step from the profiler (is the loader the bottleneck?). No clock assertions.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.perf

BATCH, STEPS = 4, 60


class _PatchDataset(torch.utils.data.Dataset):
    """Patch k of the draw list: the sampler's crop, then the same augmentation compose."""

    def __init__(self, sampler, refs, augmentation) -> None:
        self.sampler, self.refs, self.augmentation = sampler, refs, augmentation

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int):
        image, label = self.sampler.crop(self.refs[index])
        return self.augmentation(image, label)


class _SliceDataset(torch.utils.data.Dataset):
    def __init__(self, sampler, picks) -> None:
        self.sampler, self.picks = sampler, picks

    def __len__(self) -> int:
        return len(self.picks)

    def __getitem__(self, index: int):
        inputs, targets = self.sampler.batch(self.picks[index : index + 1])
        return inputs[0], targets[0]


def _rate(batches) -> float:
    t0, n = time.perf_counter(), 0
    for inputs, _ in batches:
        n += int(inputs.shape[0])
    return n / (time.perf_counter() - t0)


def _monai(dataset, workers: int) -> float:
    from monai.data import DataLoader

    kwargs = {"persistent_workers": True} if workers else {}
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=False, num_workers=workers, **kwargs)
    _rate(loader)  # first pass starts the workers
    return _rate(loader)


def _context(tmp_path, name: str):
    from msbench.benchmark.profiling import profile_case
    from msbench.methods import FitContext, build_adapter, get_card

    card = get_card(name)
    recipe = replace(card.recipe("smoke"), batch_size=BATCH, iterations_per_epoch=STEPS)
    context = FitContext(tmp_path / name, 0, "cpu", "smoke", recipe, card.hparams("smoke"), progress=False)
    return build_adapter(card, context), profile_case(tmp_path / "case", 3.0, ("flair",))


def _report(name: str, ours: float, peers: dict[str, float]) -> None:
    line = f"\n{name}: engine {ours:,.0f} samples/s"
    for peer, rate in peers.items():
        line += f" | {peer} {rate:,.0f} samples/s (engine / peer {ours / rate:.2f}x)"
    print(line)


def test_patch_pipeline_against_monai_dataloader(tmp_path):
    from msbench.methods.engine.augment import Augmentation, AugmentSpec

    adapter, case = _context(tmp_path, "basicunet")
    volume = adapter.load(case, with_mask=True)
    task = adapter.build_task([volume], [])
    rng = np.random.default_rng(0)
    list(task.train_batches(1, np.random.default_rng(0)))  # warm-up
    ours = _rate(task.train_batches(1, rng))
    refs = task.sampler.sample(np.random.default_rng(0), BATCH * STEPS)
    augmentation = Augmentation(task.augmentation.spec if task.augmentation else AugmentSpec())
    dataset = _PatchDataset(task.sampler, refs, augmentation)
    _report(
        f"patch pipeline ({task.patch_size} patches)", ours, {f"MONAI workers={w}": _monai(dataset, w) for w in (0, 2)}
    )


def test_slice_pipeline_against_monai_dataloader(tmp_path):
    from msbench.methods.engine.slices import SliceSampler

    adapter, case = _context(tmp_path, "fcdensenet_clstm")
    sampler = SliceSampler(adapter._load([case], "mask1"), adapter.n_slices, 0.5)
    list(sampler.batches(np.random.default_rng(0), BATCH, 5))
    ours = _rate(sampler.batches(np.random.default_rng(0), BATCH, STEPS))
    picks = sampler.samples[np.random.default_rng(0).integers(0, len(sampler.samples), BATCH * STEPS)]
    dataset = _SliceDataset(sampler, picks)
    _report("slice pipeline (3 slices)", ours, {f"MONAI workers={w}": _monai(dataset, w) for w in (0, 2)})
