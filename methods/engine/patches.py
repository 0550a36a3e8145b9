"""3D patches: a lesion-aware grid sampler for training and MONAI sliding-window inference for whole crops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .volumes import Volume


def grid_starts(length: int, patch: int, stride: int) -> list[int]:
    """Patch starts along one axis at ``stride``, with a last patch flush with the end so the axis is covered."""
    if patch <= 0 or stride <= 0:
        raise ValueError(f"patch and stride must be positive, got patch={patch}, stride={stride}.")
    if length <= patch:
        return [0]
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] != length - patch:
        starts.append(length - patch)
    return starts


def pad_to_patch(array: np.ndarray, patch: Sequence[int]) -> np.ndarray:
    """Zero-pads the last three axes at their end up to at least ``patch``."""
    spatial = array.shape[-3:]
    pads = [(0, max(p - s, 0)) for s, p in zip(spatial, patch, strict=True)]
    if not any(after for _, after in pads):
        return array
    return np.pad(array, [(0, 0)] * (array.ndim - 3) + pads)


@dataclass(frozen=True)
class PatchRef:
    """One grid patch: the volume it comes from and its start corner."""

    volume: int
    start: tuple[int, int, int]
    positive: bool


class PatchSampler:
    """Draws training patches from a grid (patch size, stride) over each volume, favouring lesion-containing ones.

    Each draw is, with probability ``positive_fraction``, a grid patch that contains reference lesion, otherwise any
    grid patch (volumes without lesion fall back to any patch). ``positive_fraction=1`` is the F.sh paper's
    "patches selected to contain lesions".

    Args:
        volumes: Training volumes (with masks).
        patch_size: Patch edge lengths (I, J, K).
        stride: Grid stride per axis.
        positive_fraction: Probability of drawing a lesion-containing patch.
    """

    def __init__(
        self,
        volumes: Sequence[Volume],
        patch_size: Sequence[int],
        stride: Sequence[int],
        positive_fraction: float = 1.0,
    ) -> None:
        if not volumes:
            raise ValueError("PatchSampler needs at least one training volume.")
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must lie in [0, 1], got {positive_fraction}.")
        self.patch_size = tuple(int(p) for p in patch_size)
        self.positive_fraction = float(positive_fraction)
        self.images = [pad_to_patch(v.image, self.patch_size) for v in volumes]
        self.masks = []
        for v in volumes:
            if v.mask is None:
                raise ValueError(f"training volume {v.case_id!r} has no reference mask.")
            self.masks.append(pad_to_patch(v.mask[None], self.patch_size)[0])
        self.patches: list[PatchRef] = []
        for index, mask in enumerate(self.masks):
            axes = [grid_starts(n, p, s) for n, p, s in zip(mask.shape, self.patch_size, stride, strict=True)]
            for i in axes[0]:
                for j in axes[1]:
                    for k in axes[2]:
                        window = mask[
                            i : i + self.patch_size[0], j : j + self.patch_size[1], k : k + self.patch_size[2]
                        ]
                        self.patches.append(PatchRef(index, (i, j, k), bool(window.any())))
        self.positives = [p for p in self.patches if p.positive]

    def __len__(self) -> int:
        """Patches one epoch visits by default: the lesion-containing ones (all grid patches if none has lesion)."""
        return len(self.positives) or len(self.patches)

    def sample(self, rng: np.random.Generator, n: int) -> list[PatchRef]:
        """Draws ``n`` patches."""
        out = []
        for _ in range(n):
            pool = self.positives if self.positives and rng.random() < self.positive_fraction else self.patches
            out.append(pool[int(rng.integers(len(pool)))])
        return out

    def crop(self, ref: PatchRef) -> tuple[np.ndarray, np.ndarray]:
        """Image (C, *patch) float32 and mask (1, *patch) float32 of one patch."""
        i, j, k = ref.start
        pi, pj, pk = self.patch_size
        image = self.images[ref.volume][:, i : i + pi, j : j + pj, k : k + pk]
        mask = self.masks[ref.volume][None, i : i + pi, j : j + pj, k : k + pk]
        return np.ascontiguousarray(image), mask.astype(np.float32)


def sliding_window_logits(
    model: nn.Module,
    image: np.ndarray,
    *,
    patch_size: Sequence[int],
    stride: Sequence[int],
    device: str | torch.device = "cpu",
    amp: bool = False,
    blend: str = "constant",
    sw_batch_size: int = 2,
) -> torch.Tensor:
    """Logits of a whole (C, I, J, K) image by MONAI ``sliding_window_inference``, as a (1, 1, I, J, K) CPU tensor.

    The window overlap is ``1 - stride / patch`` per axis, so inference visits the same grid as training;
    overlapping windows are averaged (``blend="constant"``) or Gaussian-weighted (``"gaussian"``).
    """
    from monai.inferers import sliding_window_inference

    overlap = [1.0 - s / p for s, p in zip(stride, patch_size, strict=True)]
    device = torch.device(device)
    inputs = torch.from_numpy(np.ascontiguousarray(image))[None].to(device)

    def predictor(batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda"):
            return model(batch).float()

    logits = sliding_window_inference(
        inputs,
        roi_size=tuple(int(p) for p in patch_size),
        sw_batch_size=sw_batch_size,
        predictor=predictor,
        overlap=overlap,
        mode=blend,
    )
    return torch.as_tensor(logits).float().cpu()
