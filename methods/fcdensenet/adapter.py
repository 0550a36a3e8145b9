"""Adapter of the FC-DenseNet family (Rondinella et al. 2023): the full model and its Table 5 ablations.

One network (:class:`~.network.Tiramisu`) configured by the hyper-parameters ``use_sa`` and ``use_clstm``; the
registered methods differ only in those flags (and in ``n_slices``: 3 with the ConvLSTM, 1 without, as in the
released code where ``seq_size > 1`` switches the LSTM on). Loss: the paper's soft Dice on the softmax foreground
channel over the whole batch (smoothing 0.1, as in the released ``dice_loss``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..engine.parameters import count_parameters as count_module_parameters
from ..engine.slice_adapter import SliceAdapter
from ..engine.slices import batch_dice_loss

if TYPE_CHECKING:
    import torch

    from .network import TiramisuConfig


def network_config(hparams: Mapping[str, Any], in_channels: int = 1) -> TiramisuConfig:
    """The network's shape from the method's hyper-parameters."""
    from .network import TiramisuConfig  # torch: the network on use (the card stays torch-free)

    n_slices = int(hparams["n_slices"])
    if not hparams["use_clstm"] and n_slices != 1:
        raise ValueError(
            f"n_slices={n_slices} needs use_clstm=True: without the ConvLSTM the network segments single slices "
            "(set n_slices=1, or use a *_clstm method)."
        )
    layers = (int(hparams["layers_per_block"]),) * int(hparams["n_levels"])
    return TiramisuConfig(
        in_channels=in_channels,
        down_blocks=layers,
        up_blocks=layers,
        bottleneck_layers=int(hparams["layers_per_block"]),
        growth_rate=int(hparams["growth_rate"]),
        first_conv_channels=int(hparams["first_conv_channels"]),
        use_sa=bool(hparams["use_sa"]),
        use_clstm=bool(hparams["use_clstm"]),
        clstm_kernel_size=int(hparams["clstm_kernel_size"]),
        clstm_output=str(hparams["clstm_output"]),
        dropout=float(hparams["dropout"]),
    )


def count_parameters(hparams: Mapping[str, Any], in_channels: int = 1) -> int:
    """Trainable parameters of the network these hyper-parameters build (on the meta device: no memory)."""
    import torch

    from .network import Tiramisu  # torch: on use

    with torch.device("meta"):
        return count_module_parameters(Tiramisu(network_config(hparams, in_channels)))


class FCDenseNetAdapter(SliceAdapter):
    """FC-DenseNet (+ SA) (+ C-LSTM) on 2D / 2.5D axial slices."""

    def build_network(self, in_channels: int) -> torch.nn.Module:
        from .network import Tiramisu  # torch: on use

        return Tiramisu(network_config(self.context.hparams, in_channels))

    @property
    def size_multiple(self) -> int:
        return network_config(self.context.hparams).divisor

    def to_probability(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(dim=1)[:, 1:2]

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss = batch_dice_loss(self.to_probability(logits), targets, float(self.context.hparams["dice_smooth"]))
        return loss, {"dice_loss": float(loss.detach())}
