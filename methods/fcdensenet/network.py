"""FC-DenseNet (Tiramisu) with optional squeeze-and-attention blocks and a bottleneck convolutional LSTM.

Rondinella et al. 2023 (Table 1, Fig. 4), checked against the authors' released code
(github.com/ictlab-unict/attention-cnn-MS-segmentation, ``models/tiramisu.py``, ``layers.py``, ``BiConvLSTM.py``):

- first 3x3 conv; down path of dense block -> SA block -> (skip) -> transition down, per level;
- bottleneck dense block (new features only), then a unidirectional ConvLSTM over the slice sequence;
- up path of transition up (3x3 transposed conv, centre crop, concat skip) -> dense block -> SA block (the last level
  has no SA block in the released code); final 1x1 conv and a softmax over two classes.

The slices of a sequence share the encoder; they meet only in the ConvLSTM. The decoder then runs on the chosen
time step with that slice's own skips (the released code decodes every step and scores only the central one).
Ablations are flags of one configuration (``use_sa``, ``use_clstm``), never subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TiramisuConfig:
    """Shape of the network.

    Attributes:
        in_channels: Channels per slice (one per modality).
        down_blocks: Dense layers per down-path level (the paper: 5 levels of 4).
        up_blocks: Dense layers per up-path level.
        bottleneck_layers: Dense layers of the bottleneck block.
        growth_rate: Feature maps each dense layer adds.
        first_conv_channels: Output channels of the first 3x3 convolution.
        use_sa: Squeeze-and-attention block after each dense block of both paths.
        use_clstm: Unidirectional ConvLSTM over the slice sequence after the bottleneck.
        clstm_kernel_size: ConvLSTM kernel size.
        clstm_output: Which LSTM time step is decoded: ``middle`` (the released code: loss on the central step of a
            unidirectional LSTM, so it sees the previous and the central slice) or ``last`` (sees all slices).
        dropout: Dropout2d rate of dense layers and transitions down.
        n_classes: Output classes (softmax); 2 as in the paper.
    """

    in_channels: int = 1
    down_blocks: tuple[int, ...] = (4, 4, 4, 4, 4)
    up_blocks: tuple[int, ...] = (4, 4, 4, 4, 4)
    bottleneck_layers: int = 4
    growth_rate: int = 12
    first_conv_channels: int = 48
    use_sa: bool = True
    use_clstm: bool = True
    clstm_kernel_size: int = 3
    clstm_output: str = "middle"
    dropout: float = 0.2
    n_classes: int = 2

    def __post_init__(self) -> None:
        if len(self.down_blocks) != len(self.up_blocks):
            raise ValueError(
                f"down_blocks {self.down_blocks} and up_blocks {self.up_blocks} must have the same length."
            )
        if self.clstm_output not in ("middle", "last"):
            raise ValueError(f"clstm_output must be 'middle' or 'last', got {self.clstm_output!r}.")

    @property
    def divisor(self) -> int:
        """Input height and width must be multiples of this: the deepest SA block pools a map of size H / 2^(n-1)."""
        return 2 ** len(self.down_blocks)


class DenseLayer(nn.Sequential):
    """BN-ReLU-Conv3x3-Dropout2d producing ``growth_rate`` maps."""

    def __init__(self, in_channels: int, growth_rate: int, dropout: float) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, growth_rate, kernel_size=3, padding=1, bias=True),
            nn.Dropout2d(dropout),
        )


class DenseBlock(nn.Module):
    """Dense layers, each fed the concatenation of everything before it.

    Returns input and new maps concatenated, or only the new maps when ``new_only`` (bottleneck and up path).
    """

    def __init__(self, in_channels: int, growth_rate: int, n_layers: int, dropout: float, new_only: bool) -> None:
        super().__init__()
        self.new_only = new_only
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, dropout) for i in range(n_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = []
        for layer in self.layers:
            out = layer(x)
            x = torch.cat([x, out], dim=1)
            new.append(out)
        return torch.cat(new, dim=1) if self.new_only else x


class TransitionDown(nn.Sequential):
    """BN-ReLU-Conv1x1-Dropout2d-MaxPool2d."""

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=1, bias=True),
            nn.Dropout2d(dropout),
            nn.MaxPool2d(2),
        )


class TransitionUp(nn.Module):
    """3x3 stride-2 transposed convolution, centre-cropped to the skip's size, concatenated with the skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(channels, channels, kernel_size=3, stride=2, bias=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        top = (out.shape[2] - skip.shape[2]) // 2
        left = (out.shape[3] - skip.shape[3]) // 2
        out = out[:, :, top : top + skip.shape[2], left : left + skip.shape[3]]
        return torch.cat([out, skip], dim=1)


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two Conv3x3-BN-ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=True),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=True),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SqueezeAttention(nn.Module):
    """Squeeze-and-attention block (Zhong et al. 2020) as the paper uses it.

    A main conv branch is re-weighted by an attention branch computed at half resolution (average pool, conv block,
    nearest up-sampling): ``attention * main + attention``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = conv_block(channels, channels)
        self.attention = conv_block(channels, channels)
        self.pool = nn.AvgPool2d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = self.upsample(self.attention(self.pool(x)))
        return attention * self.main(x) + attention


class ConvLSTM(nn.Module):
    """Unidirectional single-layer convolutional LSTM (Shi et al. 2015) over a (T, B, C, H, W) sequence."""

    def __init__(self, channels: int, hidden: int, kernel_size: int) -> None:
        super().__init__()
        self.hidden = hidden
        # No bias: the released BiConvLSTM builds its gate convolutions with bias=False.
        self.gates = nn.Conv2d(channels + hidden, 4 * hidden, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        steps, batch, _, height, width = sequence.shape
        h = sequence.new_zeros(batch, self.hidden, height, width)
        c = torch.zeros_like(h)
        outputs = []
        for t in range(steps):
            i, f, o, g = self.gates(torch.cat([sequence[t], h], dim=1)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs)


class Tiramisu(nn.Module):
    """FC-DenseNet over a sequence of adjacent slices, predicting one slice.

    Input ``(B, T, C, H, W)`` with T slices (T = 1 without the ConvLSTM); output ``(B, n_classes, H, W)`` logits of
    the decoded slice (the central one with ``clstm_output="middle"``). H and W must be multiples of
    ``config.divisor``.
    """

    def __init__(self, config: TiramisuConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        self.first_conv = nn.Conv2d(cfg.in_channels, cfg.first_conv_channels, kernel_size=3, padding=1, bias=True)
        channels = cfg.first_conv_channels
        skips: list[int] = []
        self.down = nn.ModuleList()
        self.sa_down = nn.ModuleList()
        self.trans_down = nn.ModuleList()
        for n_layers in cfg.down_blocks:
            self.down.append(DenseBlock(channels, cfg.growth_rate, n_layers, cfg.dropout, new_only=False))
            channels += cfg.growth_rate * n_layers
            if cfg.use_sa:
                self.sa_down.append(SqueezeAttention(channels))
            skips.insert(0, channels)
            self.trans_down.append(TransitionDown(channels, cfg.dropout))

        self.bottleneck = DenseBlock(channels, cfg.growth_rate, cfg.bottleneck_layers, cfg.dropout, new_only=True)
        previous = cfg.growth_rate * cfg.bottleneck_layers
        self.clstm = ConvLSTM(previous, previous, cfg.clstm_kernel_size) if cfg.use_clstm else None

        self.trans_up = nn.ModuleList()
        self.up = nn.ModuleList()
        self.sa_up = nn.ModuleList()
        last = len(cfg.up_blocks) - 1
        for level, n_layers in enumerate(cfg.up_blocks):
            self.trans_up.append(TransitionUp(previous))
            channels = previous + skips[level]
            self.up.append(DenseBlock(channels, cfg.growth_rate, n_layers, cfg.dropout, new_only=level < last))
            previous = cfg.growth_rate * n_layers
            if cfg.use_sa and level < last:
                self.sa_up.append(SqueezeAttention(previous))
        self.final_conv = nn.Conv2d(channels + previous, cfg.n_classes, kernel_size=1, bias=True)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"expected input (batch, slices, channels, H, W), got shape {tuple(x.shape)}.")
        batch, steps = x.shape[:2]
        sequences = torch.arange(batch * steps, device=x.device).reshape(batch, steps)
        return self.forward_indexed(x.reshape(batch * steps, *x.shape[2:]), sequences)

    def forward_indexed(self, slices: torch.Tensor, sequences: torch.Tensor) -> torch.Tensor:
        """Logits of ``len(sequences)`` samples whose slices are rows of ``slices``, each encoded once.

        Args:
            slices: (N, C, H, W) distinct slices.
            sequences: (B, T) indices into ``slices``, one row of adjacent slices per sample; prediction over a
                volume shares every slice's encoding between the T samples that use it.

        Returns:
            (B, n_classes, H, W) logits.
        """
        cfg = self.config
        steps = sequences.shape[1]
        if steps != 1 and not cfg.use_clstm:
            raise ValueError(f"without the ConvLSTM the network takes one slice per sample, got {steps}.")
        height, width = slices.shape[-2:]
        if height % cfg.divisor or width % cfg.divisor:
            raise ValueError(
                f"input {height}x{width} is not a multiple of {cfg.divisor}; pad or crop to e.g. "
                f"{-(-height // cfg.divisor) * cfg.divisor}x{-(-width // cfg.divisor) * cfg.divisor}."
            )
        decoded = sequences[:, steps // 2 if cfg.clstm_output == "middle" else steps - 1]
        out = self.first_conv(slices)
        skips = []
        for level, block in enumerate(self.down):
            out = block(out)
            if cfg.use_sa:
                out = self.sa_down[level](out)
            # Only the decoded slices' skips are needed downstream.
            skips.append(out[decoded])
            out = self.trans_down[level](out)
        out = self.bottleneck(out)
        if self.clstm is not None:
            hidden = self.clstm(out[sequences].transpose(0, 1))
            out = hidden[steps // 2 if cfg.clstm_output == "middle" else steps - 1]
        else:
            out = out[decoded]
        for level, block in enumerate(self.up):
            out = block(self.trans_up[level](out, skips.pop()))
            if cfg.use_sa and level < len(self.sa_up):
                out = self.sa_up[level](out)
        return self.final_conv(out)


def _init_weights(module: nn.Module) -> None:
    # The released code: Kaiming-uniform convolutions with zero bias.
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
