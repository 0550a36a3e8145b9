"""The volumetric U-Net of Cicek et al. 2016, which the 3D U-Net paper (Kabulov) uses.

Each resolution level has two 3x3x3 conv + BN + ReLU layers; the encoder doubles the channels in the second conv
of a level before max-pooling (32->64, 64->128, 128->256, 256->512 at base width 32), the decoder up-samples with a
2x2x2 transposed convolution, concatenates the skip and applies two conv layers; a 1x1x1 conv gives the logit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..engine.parameters import count_parameters as count_module_parameters


def _conv(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    ]


class UNet3d(nn.Module):
    """Cicek 3D U-Net with ``levels`` poolings.

    Args:
        in_channels: Input modalities.
        base_width: Channels of the first conv (32 in Cicek et al.).
        levels: Max-pooling steps (3 in Cicek et al.); input edges must be multiples of ``2**levels``.
        out_channels: Output channels (1 logit for binary segmentation).
    """

    def __init__(self, in_channels: int = 1, base_width: int = 32, levels: int = 3, out_channels: int = 1) -> None:
        super().__init__()
        self.levels = levels
        self.pool = nn.MaxPool3d(2)
        self.encoders = nn.ModuleList()
        channels = in_channels
        skip_widths = []
        for level in range(levels + 1):
            width = base_width * 2**level
            self.encoders.append(nn.Sequential(*_conv(channels, width), *_conv(width, 2 * width)))
            channels = 2 * width
            skip_widths.append(channels)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for skip in reversed(skip_widths[:-1]):
            self.ups.append(nn.ConvTranspose3d(channels, channels, 2, stride=2))
            self.decoders.append(nn.Sequential(*_conv(channels + skip, skip), *_conv(skip, skip)))
            channels = skip
        self.head = nn.Conv3d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2**self.levels
        if any(s % factor for s in x.shape[2:]):
            raise ValueError(f"the 3D U-Net needs spatial sizes divisible by {factor}, got {tuple(x.shape[2:])}.")
        skips = []
        for index, encoder in enumerate(self.encoders):
            x = encoder(x if index == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, decoder in zip(self.ups, self.decoders, strict=True):
            x = decoder(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


def build_network(hparams: Mapping[str, Any], in_channels: int = 1) -> UNet3d:
    """The 3D U-Net for a card's hyper-parameters."""
    return UNet3d(in_channels=in_channels, base_width=int(hparams["base_width"]), levels=int(hparams["levels"]))


def count_parameters(hparams: Mapping[str, Any], in_channels: int = 1) -> int:
    """Trainable parameters of the 3D U-Net for these hyper-parameters."""
    return count_module_parameters(build_network(hparams, in_channels))
