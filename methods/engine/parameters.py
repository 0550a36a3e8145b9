"""The one parameter counter of msbench.

Torch-free (it only calls ``parameters()`` on the module it is given), so that ``methods show``, the profiler and the
cards' helpers can import it without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Parameters of ``model``: the ``numel`` of each distinct parameter tensor (a shared one counts once).

    Args:
        model: The network (``nn.Module.parameters`` already leaves out repeats of a shared tensor).
        trainable_only: Count only the tensors with ``requires_grad`` (the default, what a fit reports); False counts
            every parameter (frozen ones included).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
