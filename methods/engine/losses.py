"""Binary segmentation losses on logits: weighted BCE plus soft Dice (MONAI's ``DiceLoss``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class BceDiceLoss:
    """``bce_weight * BCE + (1 - bce_weight) * soft Dice`` on single-channel logits.

    Dice is MONAI's ``DiceLoss(sigmoid=True)``, per sample and averaged (or over the whole batch), with the smoothing
    term ``smooth`` in numerator and denominator (the F.sh paper's delta).

    Args:
        bce_weight: Weight of the BCE term in [0, 1] (F.sh: 0.5; the 3D U-Net paper's lambda).
        smooth: Dice smoothing constant.
        batch_dice: One Dice over the whole batch instead of the mean of per-sample Dice (steadier when most
            patches hold only a few lesion voxels, as in nnU-Net's batch Dice).
    """

    def __init__(self, bce_weight: float = 0.5, smooth: float = 1e-5, batch_dice: bool = False) -> None:
        from monai.losses import DiceLoss

        if not 0.0 <= bce_weight <= 1.0:
            raise ValueError(f"bce_weight must lie in [0, 1], got {bce_weight}.")
        self.bce_weight = float(bce_weight)
        self.dice = DiceLoss(sigmoid=True, smooth_nr=smooth, smooth_dr=smooth, batch=batch_dice)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns the total loss and its terms ``{"bce": ..., "dice": ...}``."""
        if logits.shape != targets.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must have one shape.")
        targets = targets.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, targets)
        dice = self.dice(logits, targets)
        total = self.bce_weight * bce + (1.0 - self.bce_weight) * dice
        return total, {"bce": float(bce.detach()), "dice_loss": float(dice.detach())}
