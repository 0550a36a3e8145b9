"""The 2D / 2.5D axial slice pipeline shared by the slice-based methods (FC-DenseNet family, smp U-Net 2D).

A case becomes a :class:`SliceVolume` (with :mod:`msbench.datasets.preprocessing`): [0, 1] scaling per modality
inside the brain, the axial slices of the brain box (which drops the empty slices at both ends of the scan, as
Rondinella et al. do), and an in-plane window centred on the brain that spans at least ``window_mm`` and the whole
brain, in voxels of the case's spacing rounded up to the network's divisibility (cropping the black border,
zero-padding a smaller image; see :func:`msbench.datasets.preprocessing.brain_window`). Windows differ in size
between cases; the sampler zero-pads the training windows to the largest. A sample is ``n_slices`` adjacent
axial slices ``k - h .. k + h`` (edge-replicated) with the mask of slice ``k``. Prediction slides over every slice of
the box and pastes the probabilities back onto the case grid; voxels outside the window get probability 0.
Axis order follows :mod:`msbench.datasets.case`: images are (C, I, J, K) and an axial slice is ``[..., k]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from msbench.datasets.preprocessing import brain_bbox, brain_window, crop, normalise_01, uncrop

if TYPE_CHECKING:
    import torch

    from msbench.datasets.case import Case


@dataclass(frozen=True)
class SliceVolume:
    """One case cut to its window (brain-box slices, fixed in-plane size), ready for sampling and prediction.

    Attributes:
        image: (C, H, W, K) float32 in [0, 1], H x W = the in-plane window, K = axial slices of the brain box.
        mask: (H, W, K) bool reference inside the window, or None at prediction time.
        box: The window on the case grid (in-plane slices may reach outside it: zero padding).
        full_shape: The case's grid shape.
        outside_positives: Reference voxels outside the window (counted as misses by validation Dice).
    """

    image: np.ndarray
    mask: np.ndarray | None
    box: tuple[slice, slice, slice]
    full_shape: tuple[int, int, int]
    outside_positives: int = 0

    @property
    def n_slices(self) -> int:
        return self.image.shape[-1]

    def stack(self, k: int, n_slices: int) -> np.ndarray:
        """Slices ``k - h .. k + h`` (h = n_slices // 2, edge-replicated) as (T, C, H, W)."""
        half = n_slices // 2
        ks = np.clip(np.arange(k - half, k + half + 1), 0, self.n_slices - 1)
        return np.moveaxis(self.image[..., ks], -1, 0)

    def to_case_grid(self, window_values: np.ndarray) -> np.ndarray:
        """A (H, W, K) array on the window back onto the case grid (zero outside the window)."""
        return uncrop(window_values, self.box, self.full_shape)


def load_slice_volume(
    case: Case,
    modalities: Sequence[str],
    reference: str | None,
    window_mm: float,
    multiple: int = 1,
    upper_percentile: float = 100.0,
) -> SliceVolume:
    """Loads one case: [0, 1] scaling inside the brain, brain-box slices, a window of the whole brain in-plane.

    Args:
        case: The case.
        modalities: Input modalities (channels in this order).
        reference: Reference mask to load, or None at prediction time.
        window_mm: Smallest in-plane window edge in mm (the window also always covers the whole brain).
        multiple: Window edges in voxels are multiples of this (the network's divisibility).
        upper_percentile: Intensity percentile inside the brain mapped to 1.
    """
    if not window_mm > 0:
        raise ValueError(f"window_mm must be a positive in-plane window edge in mm, got {window_mm}.")
    image = case.load_images(modalities)
    brain = case.load_brain(modalities, image)
    image = normalise_01(image, brain, percentiles=(0.0, float(upper_percentile)))
    window_i, window_j, _ = brain_window(brain, case.spacing_mm, float(window_mm), int(multiple))
    box = (window_i, window_j, brain_bbox(brain)[2])
    mask = outside = None
    if reference is not None:
        full_mask = case.load_mask(reference)
        if full_mask.shape != brain.shape:
            raise ValueError(
                f"case {case.case_id!r}: reference {reference!r} has shape {full_mask.shape}, images {brain.shape}."
            )
        mask = crop(full_mask, box, fill=False)
        outside = int(full_mask.sum() - mask.sum())
    return SliceVolume(
        image=crop(image, box),
        mask=mask,
        box=box,
        full_shape=tuple(int(n) for n in brain.shape),  # type: ignore[arg-type]
        outside_positives=outside or 0,
    )


class SliceSampler:
    """Draws training batches of (n_slices adjacent slices, middle-slice mask) from several volumes.

    With ``positive_fraction == 0`` an epoch is a shuffled pass over every slice (the paper's protocol); otherwise
    each batch holds ``round(batch_size * positive_fraction)`` slices drawn from those with lesion and the rest
    drawn from all slices.
    """

    def __init__(self, volumes: Sequence[SliceVolume], n_slices: int, positive_fraction: float = 0.0) -> None:
        if n_slices < 1 or n_slices % 2 == 0:
            raise ValueError(f"n_slices must be a positive odd number (the middle slice is predicted), got {n_slices}.")
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must lie in [0, 1], got {positive_fraction}.")
        if not volumes:
            raise ValueError("no training volume given; the slice sampler needs at least one case.")
        self.volumes = [_pad_inplane(v, _largest_window(volumes)) for v in volumes]
        self.n_slices = n_slices
        self.positive_fraction = positive_fraction
        self.samples = np.array([(v, k) for v, vol in enumerate(self.volumes) for k in range(vol.n_slices)])
        has_lesion = [bool(self.volumes[v].mask[..., k].any()) for v, k in self.samples]
        self.positives = self.samples[np.asarray(has_lesion, dtype=bool)]

    def steps_per_epoch(self, batch_size: int, iterations: int | None) -> int:
        return iterations if iterations is not None else -(-len(self.samples) // batch_size)

    def batch(self, picks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, T, C, H, W) float32 and targets (B, 1, H, W) float32 for (volume, slice) pairs."""
        import torch

        inputs = np.stack([self.volumes[v].stack(k, self.n_slices) for v, k in picks])
        targets = np.stack([self.volumes[v].mask[None, ..., k] for v, k in picks]).astype(np.float32)
        return torch.from_numpy(inputs), torch.from_numpy(targets)

    def batches(
        self, rng: np.random.Generator, batch_size: int, iterations: int | None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n_steps = self.steps_per_epoch(batch_size, iterations)
        if self.positive_fraction == 0.0 or len(self.positives) == 0:
            # Shuffled passes over every slice; without an iteration count, exactly one pass (last batch partial).
            passes = 1 if iterations is None else -(-n_steps * batch_size // len(self.samples))
            order = np.concatenate([rng.permutation(len(self.samples)) for _ in range(passes)])
            for step in range(n_steps):
                yield self.batch(self.samples[order[step * batch_size : (step + 1) * batch_size]])
            return
        n_pos = int(round(batch_size * self.positive_fraction))
        for _ in range(n_steps):
            pos = self.positives[rng.integers(0, len(self.positives), n_pos)]
            rest = self.samples[rng.integers(0, len(self.samples), batch_size - n_pos)]
            yield self.batch(np.concatenate([pos, rest]))


def _largest_window(volumes: Sequence[SliceVolume]) -> tuple[int, int]:
    return (max(v.image.shape[1] for v in volumes), max(v.image.shape[2] for v in volumes))


def _pad_inplane(volume: SliceVolume, size: tuple[int, int]) -> SliceVolume:
    """The volume zero-padded at the end of I and J to ``size`` (training only: batches need one in-plane size)."""
    pad_i, pad_j = size[0] - volume.image.shape[1], size[1] - volume.image.shape[2]
    if not pad_i and not pad_j:
        return volume
    mask = None if volume.mask is None else np.pad(volume.mask, ((0, pad_i), (0, pad_j), (0, 0)))
    image = np.pad(volume.image, ((0, 0), (0, pad_i), (0, pad_j), (0, 0)))
    return replace(volume, image=image, mask=mask)


def predict_window(
    model: torch.nn.Module,
    volume: SliceVolume,
    n_slices: int,
    to_probability: Callable[[torch.Tensor], torch.Tensor],
    *,
    batch_size: int = 16,
    device: str = "cpu",
) -> np.ndarray:
    """Foreground probability (H, W, K) float32 of every axial slice of the window; ``model`` must be in eval mode.

    Slices go through the model in chunks of ``batch_size`` samples. A model with ``forward_indexed(slices,
    sequences)`` (the FC-DenseNet) gets each chunk's distinct slices once plus the index rows of its samples, so
    that a slice shared by adjacent samples is encoded once; others get (B, T, C, H, W) stacks.
    """
    import torch

    half = n_slices // 2
    out = np.zeros(volume.image.shape[1:], dtype=np.float32)
    forward_indexed = getattr(model, "forward_indexed", None)  # an nn.Module attribute: typed Tensor | Module
    with torch.no_grad():
        for start in range(0, volume.n_slices, batch_size):
            ks = np.arange(start, min(start + batch_size, volume.n_slices))
            wanted = np.clip(ks[:, None] + np.arange(-half, half + 1)[None, :], 0, volume.n_slices - 1)
            distinct, rows = np.unique(wanted, return_inverse=True)
            slab = torch.from_numpy(np.ascontiguousarray(np.moveaxis(volume.image[..., distinct], -1, 0))).to(device)
            sequences = torch.from_numpy(rows.reshape(wanted.shape)).to(device)
            logits = forward_indexed(slab, sequences) if forward_indexed is not None else model(slab[sequences])
            out[..., ks] = np.moveaxis(to_probability(logits.float())[:, 0].cpu().numpy(), 0, -1)
    return out


def soft_dice_loss(probability: np.ndarray, reference: np.ndarray, smooth: float = 1.0) -> float:
    """``1 - (2 sum(p y) + s) / (sum p + sum y + s)`` over a whole volume (the validation loss)."""
    intersection = float((probability * reference).sum())
    return 1.0 - (2.0 * intersection + smooth) / (float(probability.sum()) + float(reference.sum()) + smooth)


def batch_dice_loss(probability: torch.Tensor, targets: torch.Tensor, smooth: float) -> torch.Tensor:
    """``1 - (2 sum(p y) + s) / (sum p + sum y + s)`` over the whole batch (Rondinella et al.'s ``dice_loss``)."""
    intersection = (probability * targets).sum()
    return 1.0 - (2.0 * intersection + smooth) / (probability.sum() + targets.sum() + smooth)
