"""Input checks and the union bounding-box crop every metric family works on."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from msbench.datasets.masks import to_bool_mask

from ._kernels import Nodes


@dataclass(frozen=True)
class CaseArrays:
    """Both masks cropped to their union bounding box plus a background margin.

    Attributes:
        pred: Cropped predicted mask, C-contiguous bool.
        ref: Cropped reference mask, C-contiguous bool.
        spacing_mm: Voxel spacing in array axis order.
        full_shape: Shape of the uncropped volume (TN and slice counts need it).
        origin: Index in the full volume of the crop's first voxel (negative inside the margin).
        pred_fg: Flat indices of the crop's predicted voxels; every count reads through these.
        ref_fg: Flat indices of the crop's reference voxels.
    """

    pred: np.ndarray
    ref: np.ndarray
    spacing_mm: tuple[float, float, float]
    full_shape: tuple[int, int, int]
    origin: tuple[int, int, int] = (0, 0, 0)
    pred_fg: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    ref_fg: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing_mm))

    @cached_property
    def pred_nodes(self) -> Nodes:
        """The prediction's :class:`Nodes`, made on first use."""
        return Nodes.of(self.pred, self.pred_fg)

    @cached_property
    def ref_nodes(self) -> Nodes:
        """The reference's :class:`Nodes`, made on first use."""
        return Nodes.of(self.ref, self.ref_fg)


def check_inputs(
    pred: np.ndarray, ref: np.ndarray, spacing_mm: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Validate two 3D masks and their spacing; return boolean arrays and the spacing as floats."""
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(
            f"pred has shape {pred.shape} but ref has shape {ref.shape}: both masks must lie on the same "
            "voxel grid (resample the prediction onto the reference grid first)."
        )
    if pred.ndim != 3:
        raise ValueError(f"Masks have {pred.ndim} dimensions {pred.shape}: expected 3D volumes (i, j, k).")
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(
            f"spacing_mm={tuple(spacing_mm)!r}: expected three positive finite voxel sizes in mm, "
            "in array axis order (for NIfTI: header.get_zooms()[:3])."
        )
    return to_bool_mask(pred, "pred"), to_bool_mask(ref, "ref"), spacing


def check_domain(domain: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Validate the scored domain (a brain mask): same grid as the masks, binary, not empty."""
    domain = np.asarray(domain)
    if domain.shape != tuple(shape):
        raise ValueError(
            f"domain has shape {domain.shape} but the masks have shape {tuple(shape)}: pass the brain mask "
            "of the same case on the same voxel grid, or domain=None to score the whole volume."
        )
    domain = to_bool_mask(domain, "domain")
    if not domain.any():
        raise ValueError("domain is empty: pass the case's brain mask, or domain=None to score the whole volume.")
    return domain


def crop_case(pred: np.ndarray, ref: np.ndarray, spacing_mm: tuple[float, float, float], margin: int) -> CaseArrays:
    """Crop both masks to their union bounding box plus ``margin`` background voxels on every side.

    Voxels beyond the volume edge are background, as in scipy's ``binary_erosion(border_value=0)``
    used by medpy and MONAI, so a lesion touching the edge has boundary voxels there. The box comes
    from the foreground's flat indices (one fast pass over each full mask; lesion masks are sparse),
    and the crops are written from them, so nothing else reads the full volume again.
    """
    full_shape = tuple(int(n) for n in pred.shape)
    pred_full, ref_full = flat_true(pred), flat_true(ref)
    if pred_full.size == 0 and ref_full.size == 0:
        empty = np.zeros((1, 1, 1), dtype=bool)
        return CaseArrays(empty, empty.copy(), spacing_mm, full_shape)  # type: ignore[arg-type]
    coords = [_unravel(indices, full_shape) for indices in (pred_full, ref_full)]
    lo = [min(int(c[axis].min()) for c in coords if c[axis].size) for axis in range(3)]
    hi = [max(int(c[axis].max()) for c in coords if c[axis].size) for axis in range(3)]
    out_shape = tuple(top - bottom + 1 + 2 * margin for bottom, top in zip(lo, hi, strict=True))
    origin = tuple(bottom - margin for bottom in lo)
    crops, fgs = [], []
    for i, j, k in coords:
        # Lexicographic (i, j, k) order is kept by the shift, so the crop indices stay sorted.
        fg = ((i - origin[0]) * out_shape[1] + (j - origin[1])) * out_shape[2] + (k - origin[2])
        crop = np.zeros(out_shape, dtype=bool)
        crop.ravel()[fg] = True
        crops.append(crop)
        fgs.append(fg)
    return CaseArrays(crops[0], crops[1], spacing_mm, full_shape, origin, fgs[0], fgs[1])  # type: ignore[arg-type]


def flat_true(mask: np.ndarray) -> np.ndarray:
    """``np.flatnonzero(mask)`` for a boolean mask, read eight voxels at a time.

    A lesion mask is mostly empty: the 8-byte words that hold a voxel are found first (one comparison per word),
    and only those words are read voxel by voxel. Same indices, in the same (C) order.
    """
    flat = np.ascontiguousarray(mask).reshape(-1)  # a C-order copy only when the mask is not C-contiguous
    n_words = flat.size // 8
    head = flat[: 8 * n_words]
    words = np.flatnonzero(head.view(np.uint64) != 0)
    inside = np.flatnonzero(head.reshape(n_words, 8)[words].reshape(-1))
    found = words[inside >> 3] * 8 + (inside & 7)
    if head.size == flat.size:
        return found
    return np.concatenate([found, np.flatnonzero(flat[head.size :]) + head.size])


def _unravel(flat_index: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, k) of C-order flat indices; cheaper than ``np.unravel_index`` for sorted int64 input."""
    i, rest = np.divmod(flat_index, shape[1] * shape[2])
    j, k = np.divmod(rest, shape[2])
    return i, j, k
