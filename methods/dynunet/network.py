"""MONAI ``DynUNet``: the nnU-Net-style residual 3D U-Net (instance norm, leaky ReLU) with one output logit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ..engine.parameters import count_parameters as count_module_parameters

LEVELS = 5
"""Resolution levels: a full-resolution stage and four stride-2 down-samplings (patch edges must divide by 16)."""


def build_network(hparams: Mapping[str, Any], in_channels: int = 1) -> nn.Module:
    """DynUNet with 3x3x3 kernels, widths ``base_width * 2**level`` (capped at 320 as nnU-Net does), residual blocks."""
    from monai.networks.nets import DynUNet

    width = int(hparams["base_width"])
    return DynUNet(
        spatial_dims=3,
        in_channels=in_channels,
        out_channels=1,
        kernel_size=[3] * LEVELS,
        strides=[1] + [2] * (LEVELS - 1),
        upsample_kernel_size=[2] * (LEVELS - 1),
        filters=[min(width * 2**level, 320) for level in range(LEVELS)],
        dropout=float(hparams["dropout"]) or None,
        norm_name="instance",
        res_block=True,
    )


def count_parameters(hparams: Mapping[str, Any], in_channels: int = 1) -> int:
    """Trainable parameters of the network for these hyper-parameters."""
    return count_module_parameters(build_network(hparams, in_channels))
