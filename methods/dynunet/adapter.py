"""DynUNet adapter: the engine's 3D patch pipeline with MONAI's DynUNet."""

from __future__ import annotations

from torch import nn

from ..engine.network_adapter import PatchAdapter3D
from .network import build_network


class DynUNetAdapter(PatchAdapter3D):
    """Lesion-containing 3D patches, BCE + Dice, Adam, sliding-window inference."""

    def build_network(self, in_channels: int) -> nn.Module:
        return build_network(self.context.hparams, in_channels)
