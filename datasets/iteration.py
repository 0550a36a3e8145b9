"""The case iterator the runner and methods use: one case's arrays in memory at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .case import Case


@dataclass(frozen=True, eq=False)
class LoadedCase:
    """One case's arrays, on the case's canonical RAS+ grid (axial slices along the last axis; see ``Case``).

    Attributes:
        case: The case the arrays come from (ids, files, meta).
        image: (C, I, J, K) float32, channels in the order of the requested modalities.
        mask: (I, J, K) bool reference mask, or None when no reference was requested.
        spacing_mm: Voxel size in mm per axis (I, J, K).
        affine: 4x4 voxel-to-world matrix of the canonical grid (``Case.to_nifti`` writes in the files' own).
        modalities: The channel names of ``image``.
    """

    case: Case
    image: np.ndarray
    mask: np.ndarray | None
    spacing_mm: tuple[float, ...]
    affine: np.ndarray
    modalities: tuple[str, ...]

    @property
    def case_id(self) -> str:
        return self.case.case_id

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.image.shape[1:])


def load_case(case: Case, modalities: Sequence[str] = ("flair",), reference: str | None = None) -> LoadedCase:
    """Reads one case's images (and a reference mask) into a :class:`LoadedCase`.

    Raises:
        KeyError: The case lacks a requested modality or reference (the message lists what it has).
        ValueError: The mask's shape differs from the images' (the message names the file).
    """
    if not modalities:
        raise ValueError(f"case {case.case_id!r}: no modalities requested; pass at least one, e.g. ('flair',).")
    image = case.load_images(tuple(modalities))
    mask = None
    if reference is not None:
        mask = case.load_mask(reference)
        if mask.shape != image.shape[1:]:
            raise ValueError(
                f"{case.masks[reference]}: mask shape {mask.shape} differs from the image shape {image.shape[1:]} "
                f"of case {case.case_id}."
            )
    return LoadedCase(case, image, mask, tuple(case.spacing_mm), case.affine.copy(), tuple(modalities))


def iter_cases(
    cases: Iterable[Case], modalities: Sequence[str] = ("flair",), reference: str | None = None
) -> Iterator[LoadedCase]:
    """Yields each case loaded, one at a time (the previous one can be freed before the next is read).

    Args:
        cases: Cases in the order to visit them.
        modalities: Canonical modality names stacked as channels.
        reference: Reference mask to load (e.g. the dataset's primary reference), or None for prediction only.
    """
    for case in cases:
        yield load_case(case, modalities, reference)
