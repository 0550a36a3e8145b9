"""Adapter of ``smp_unet2d``: ``segmentation_models_pytorch.Unet`` on axial slices, randomly initialised.

The slice pipeline (brain box, [0, 1] scaling, in-plane window, sampling, prediction on the case grid) is the one
of the FC-DenseNet family (:mod:`msbench.methods.engine.slice_adapter`), so the two differ only in network,
loss and optimiser. ``encoder_weights=None`` always: nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..engine.parameters import count_parameters as count_module_parameters
from ..engine.slice_adapter import SliceAdapter
from ..engine.slices import batch_dice_loss

if TYPE_CHECKING:
    import torch


def count_parameters(hparams: Mapping[str, Any], in_channels: int = 1) -> int:
    """Trainable parameters of the U-Net these hyper-parameters build (on the meta device: no memory)."""
    import torch  # torch and the network module on use: the cards are read without torch (tests/test_layers.py)

    from .network import build_unet

    with torch.device("meta"):
        model = build_unet(hparams, in_channels)
    return count_module_parameters(model)


class SmpUnet2dAdapter(SliceAdapter):
    """segmentation-models-pytorch U-Net on single axial slices, BCE + soft Dice, Adam."""

    def build_network(self, in_channels: int) -> torch.nn.Module:
        from .network import SliceUnet, build_unet  # torch, segmentation_models_pytorch: on use

        return SliceUnet(build_unet(self.context.hparams, in_channels), int(self.context.hparams["input_zoom"]))

    @property
    def size_multiple(self) -> int:
        """The U-Net needs H and W divisible by its output stride, 2 ** encoder_depth."""
        return 2 ** int(self.context.hparams["encoder_depth"])

    def to_probability(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid()

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        import torch.nn.functional as F

        weight = float(self.context.hparams["bce_weight"])
        bce = F.binary_cross_entropy_with_logits(logits, targets)
        dice = batch_dice_loss(logits.sigmoid(), targets, float(self.context.hparams["dice_smooth"]))
        total = weight * bce + (1.0 - weight) * dice
        return total, {"bce": float(bce.detach()), "dice_loss": float(dice.detach())}
