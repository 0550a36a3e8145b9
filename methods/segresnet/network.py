"""MONAI ``SegResNet`` (Myronenko 2018's encoder-decoder without the VAE branch) with one output logit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn


def build_network(hparams: Mapping[str, Any], in_channels: int = 1) -> nn.Module:
    """SegResNet with ``init_filters = base_width``, blocks down (1, 2, 2, 4) and up (1, 1, 1), group norm."""
    from monai.networks.nets import SegResNet

    width = int(hparams["base_width"])
    return SegResNet(
        spatial_dims=3,
        init_filters=width,
        in_channels=in_channels,
        out_channels=1,
        dropout_prob=float(hparams["dropout"]) or None,
        norm=("GROUP", {"num_groups": min(8, width)}),
        blocks_down=(1, 2, 2, 4),
        blocks_up=(1, 1, 1),
    )


def count_parameters(hparams: Mapping[str, Any], in_channels: int = 1) -> int:
    """Trainable parameters of the network for these hyper-parameters."""
    return sum(p.numel() for p in build_network(hparams, in_channels).parameters() if p.requires_grad)
