"""The F.sh network (3DR2AUNet): recurrent-residual conv blocks, attention-gated skips, a 4-level 3D U-Net.

Blocks follow the reference R2U-Net / Attention U-Net designs the paper builds on: the recurrent conv layer of
Alom et al. 2018 (one conv+BN+ReLU applied ``t + 1`` times, each time to the input plus the previous output), the
recurrent-residual block (1x1x1 projection, two recurrent layers, residual sum), and the additive attention gate of
Oktay et al. 2018 on every skip connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..engine.parameters import count_parameters as count_module_parameters

NORMS = ("batch", "instance")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``batch`` (the paper's BatchNorm3d) or ``instance`` (InstanceNorm3d with affine weights)."""
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}.")


class RecurrentConv3d(nn.Module):
    """A recurrent conv layer (Alom 2018): ``x1 = f_0(x)``, then ``x1 = f_s(x + x1)`` for s = 1..t.

    The 3x3x3 convolution is shared by all steps (the recurrent weights); each step has its own batch norm, since
    the inputs of the steps differ in distribution and one shared set of running statistics would fit none of them
    at inference (recurrent batch normalisation, Cooijmans et al. 2017).
    """

    def __init__(self, channels: int, t: int, norm: str = "batch") -> None:
        super().__init__()
        if t < 1:
            raise ValueError(f"recurrence steps t must be >= 1, got {t}.")
        self.conv = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
        self.norms = nn.ModuleList(norm_layer(norm, channels) for _ in range(t + 1))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norms[0](self.conv(x)))
        for norm in self.norms[1:]:
            out = self.relu(norm(self.conv(x + out)))
        return out


class R2Block3d(nn.Module):
    """3DR2CL: a 1x1x1 projection to ``out_channels``, two recurrent conv layers, and a residual connection."""

    def __init__(self, in_channels: int, out_channels: int, t: int, norm: str = "batch") -> None:
        super().__init__()
        self.project = nn.Conv3d(in_channels, out_channels, 1)
        self.body = nn.Sequential(RecurrentConv3d(out_channels, t, norm), RecurrentConv3d(out_channels, t, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        return x + self.body(x)


class AttentionGate3d(nn.Module):
    """Additive attention gate (Oktay 2018): the decoder signal ``g`` weights the skip features ``x`` voxel-wise."""

    def __init__(self, gate_channels: int, skip_channels: int, inter_channels: int, norm: str = "batch") -> None:
        super().__init__()
        self.w_g = nn.Sequential(nn.Conv3d(gate_channels, inter_channels, 1), norm_layer(norm, inter_channels))
        self.w_x = nn.Sequential(nn.Conv3d(skip_channels, inter_channels, 1), norm_layer(norm, inter_channels))
        self.psi = nn.Sequential(nn.Conv3d(inter_channels, 1, 1), norm_layer(norm, 1), nn.Sigmoid())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * self.psi(self.relu(self.w_g(g) + self.w_x(x)))


class Up3d(nn.Module):
    """Doubles the resolution: trilinear up-sampling + conv+BN+ReLU (``upsample``) or a transposed conv."""

    def __init__(self, in_channels: int, out_channels: int, mode: str, norm: str = "batch") -> None:
        super().__init__()
        self.body: nn.Module
        if mode == "upsample":
            self.body = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False),
                nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
                norm_layer(norm, out_channels),
                nn.ReLU(inplace=True),
            )
        elif mode == "transpose":
            self.body = nn.ConvTranspose3d(in_channels, out_channels, 2, stride=2)
        else:
            raise ValueError(f"up-sampling must be 'upsample' or 'transpose', got {mode!r}.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class R2AttUNet3d(nn.Module):
    """F.sh: four R2 encoder blocks with max-pooling, an R2 bridge, four attention-gated R2 decoder stages.

    Widths are ``base_width * 2**level`` (level 0..4, the bridge at level 4). Input edges must be multiples of 16.

    Args:
        in_channels: Input modalities.
        base_width: Channels of the first level.
        t: Recurrence steps of each recurrent conv layer.
        upsample: ``upsample`` (trilinear + conv, the R2AttU-Net reference) or ``transpose``.
        levels: Pooling steps (4 in the paper).
        norm: ``batch`` (the paper) or ``instance``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_width: int = 16,
        t: int = 2,
        upsample: str = "upsample",
        levels: int = 4,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        widths = [base_width * 2**i for i in range(levels + 1)]
        self.levels = levels
        self.norm = norm
        self.pool = nn.MaxPool3d(2)
        self.encoders = nn.ModuleList()
        channels = in_channels
        for width in widths:
            self.encoders.append(R2Block3d(channels, width, t, norm))
            channels = width
        self.ups = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for width, deeper in zip(reversed(widths[:-1]), reversed(widths[1:]), strict=True):
            self.ups.append(Up3d(deeper, width, upsample, norm))
            self.gates.append(AttentionGate3d(width, width, max(width // 2, 1), norm))
            self.decoders.append(R2Block3d(2 * width, width, t, norm))
        self.head = nn.Conv3d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2**self.levels
        if any(s % factor for s in x.shape[2:]):
            raise ValueError(f"F.sh needs spatial sizes divisible by {factor}, got {tuple(x.shape[2:])}.")
        if self.norm == "instance" and all(s == factor for s in x.shape[2:]):
            raise ValueError(
                f"F.sh with instance norm needs patches of at least {2 * factor} voxels along one axis: at "
                f"{tuple(x.shape[2:])} the bridge holds a single voxel, which instance norm cannot normalise."
            )
        skips = []
        for index, encoder in enumerate(self.encoders):
            x = encoder(x if index == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, gate, decoder in zip(self.ups, self.gates, self.decoders, strict=True):
            skip = skips.pop()
            x = up(x)
            x = decoder(torch.cat([gate(x, skip), x], dim=1))
        return self.head(x)


def build_network(hparams: Mapping[str, Any], in_channels: int = 1) -> R2AttUNet3d:
    """The F.sh network for a card's hyper-parameters."""
    return R2AttUNet3d(
        in_channels=in_channels,
        base_width=int(hparams["base_width"]),
        t=int(hparams["recurrence_steps"]),
        upsample=str(hparams["upsample"]),
        norm=str(hparams.get("norm", "batch")),
    )


def count_parameters(hparams: Mapping[str, Any], in_channels: int = 1) -> int:
    """Trainable parameters of the F.sh network for these hyper-parameters."""
    return count_module_parameters(build_network(hparams, in_channels))
