"""The smp U-Net, wrapped to take the slice pipeline's (batch, slices, channels, H, W) samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def build_unet(hparams: Mapping[str, Any], in_channels: int = 1) -> nn.Module:
    """``segmentation_models_pytorch.Unet`` from the hyper-parameters: random weights, one channel of logits."""
    import segmentation_models_pytorch as smp

    depth = int(hparams["encoder_depth"])
    decoder = tuple(int(c) for c in hparams["decoder_channels"])
    if len(decoder) != depth:
        raise ValueError(
            f"decoder_channels {decoder} must have encoder_depth={depth} entries, one per decoder stage; "
            f"e.g. {(256, 128, 64, 32, 16)[-depth:]}."
        )
    return smp.Unet(
        encoder_name=str(hparams["encoder"]),
        encoder_weights=None,
        encoder_depth=depth,
        decoder_channels=decoder,
        in_channels=in_channels,
        classes=1,
    )


class SliceUnet(nn.Module):
    """A 2D network on (B, 1, C, H, W) single-slice samples, returning (B, 1, H, W) logits.

    ``zoom`` > 1 enlarges each slice ``zoom`` times (bilinear) before the network and average-pools its logits
    back to the slice's grid. The ResNet stem halves the resolution twice before the first skip, so on a coarse
    grid (3 mm) a lesion of a few voxels has no full-resolution feature to come back from; zooming gives it one.
    """

    def __init__(self, unet: nn.Module, zoom: int = 1) -> None:
        super().__init__()
        if zoom < 1:
            raise ValueError(f"input_zoom must be a positive integer, got {zoom}.")
        self.unet = unet
        self.zoom = int(zoom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != 1:
            raise ValueError(f"expected input (batch, 1 slice, channels, H, W), got shape {tuple(x.shape)}.")
        x = x[:, 0]
        if self.zoom == 1:
            return self.unet(x)
        from torch.nn import functional as F

        logits = self.unet(F.interpolate(x, scale_factor=self.zoom, mode="bilinear", align_corners=False))
        return F.avg_pool2d(logits, self.zoom)
