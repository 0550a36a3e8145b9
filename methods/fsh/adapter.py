"""F.sh adapter: the engine's 3D patch pipeline with the 3DR2AUNet network."""

from __future__ import annotations

from torch import nn

from ..engine.network_adapter import PatchAdapter3D
from .network import build_network


class FshAdapter(PatchAdapter3D):
    """64^3 lesion-containing FLAIR patches (stride 32), BCE + Dice, Adam, sliding-window inference."""

    def build_network(self, in_channels: int) -> nn.Module:
        return build_network(self.context.hparams, in_channels)
