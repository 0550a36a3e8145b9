"""MONAI ``BasicUNet`` (3D, four poolings) with one output logit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ..engine.parameters import count_parameters as count_module_parameters


def build_network(hparams: Mapping[str, Any], in_channels: int = 1) -> nn.Module:
    """BasicUNet with features ``(w, w, 2w, 4w, 8w, w)`` for ``w = base_width``."""
    from monai.networks.nets import BasicUNet

    w = int(hparams["base_width"])
    return BasicUNet(
        spatial_dims=3,
        in_channels=in_channels,
        out_channels=1,
        features=(w, w, 2 * w, 4 * w, 8 * w, w),
        dropout=float(hparams["dropout"]),
    )


def count_parameters(hparams: Mapping[str, Any], in_channels: int = 1) -> int:
    """Trainable parameters of the network for these hyper-parameters."""
    return count_module_parameters(build_network(hparams, in_channels))
