"""The profiler's own numbers against hand counts and known allocations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from msbench.benchmark.profiling import forward_flops, parameter_counts, peak_memory, reset_rss_peak


class TwoConvs(nn.Module):
    """conv3d 2->4 (k=3, padding 1), ReLU, conv3d 4->1 (k=1); the 1x1 conv is applied twice (one set of weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, kernel_size=3, padding=1)
        self.head = nn.Conv3d(4, 4, kernel_size=1)
        self.out = nn.Conv3d(4, 1, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.head(self.head(torch.relu(self.conv(x)))))


def test_forward_flops_equal_the_hand_count_of_a_small_conv_net():
    model = TwoConvs()
    inputs = torch.zeros(3, 2, 8, 8, 6)  # batch 3, 8*8*6 = 384 output voxels per sample (padding keeps the grid)
    voxels = 3 * 8 * 8 * 6
    # FlopCounterMode counts 2 FLOPs per multiply-add of a convolution (no bias, no ReLU):
    conv = 2 * voxels * 4 * (2 * 3 * 3 * 3)  # every output voxel of 4 channels sums 2 channels x 27 taps
    head = 2 * voxels * 4 * 4  # 1x1x1, 4 -> 4, applied twice
    out = 2 * voxels * 1 * 4  # 1x1x1, 4 -> 1
    assert conv + 2 * head + out == 2 * 1152 * (216 + 32 + 4) == 580608
    assert forward_flops(model, inputs) == 580608


def test_parameter_counts_equal_the_sum_of_tensor_sizes():
    model = TwoConvs()
    model.out.weight.requires_grad_(False)
    total, trainable = parameter_counts(model)
    conv, head, out = 4 * 2 * 27 + 4, 4 * 4 + 4, 1 * 4  # weights + biases; head counted once although used twice
    assert (total, trainable) == (conv + head + out, conv + head) == (244, 240)


def test_cpu_peak_grows_by_a_known_allocation_within_five_percent():
    if not reset_rss_peak():
        pytest.skip("/proc/self/clear_refs is not writable here: the CPU peak is not measured")
    size = 200 * 2**20
    held = np.ones(size // 8)  # allocated before the block: must not count
    with peak_memory("cpu") as memory:
        block = np.empty(size, dtype=np.uint8)
        block[::4096] = 1  # touch every page: resident
        del block
    assert memory.kind == "cpu-rss"
    # tolerance: 5 % of the allocation (interpreter and allocator noise), measured delta well below 210 MiB
    assert abs(memory.peak_bytes - size) <= 0.05 * size, memory.peak_bytes / 2**20
    with peak_memory("cpu") as idle:
        pass
    assert idle.peak_bytes < 0.05 * size  # the earlier peak and the held array are not carried over
    del held


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_peak_is_the_allocators_peak_of_a_known_allocation():
    device = torch.device("cuda")
    keep = torch.ones(64 * 2**20, dtype=torch.uint8, device=device)  # 64 MiB in use before: not counted
    size = 256 * 2**20
    with peak_memory("cuda") as memory:
        block = torch.ones(size, dtype=torch.uint8, device=device)
        del block
    torch.cuda.synchronize()
    assert memory.kind == "cuda-allocator"
    # the allocator rounds to 2 MiB blocks: within 1 % of the allocation, and exactly its counter less the start
    assert abs(memory.peak_bytes - size) <= 0.01 * size
    assert memory.peak_bytes == torch.cuda.max_memory_allocated(device) - torch.cuda.memory_allocated(device)
    del keep
