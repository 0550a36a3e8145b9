"""nnU-Net's folders for one fit, inside the run directory, and the raw dataset msbench writes into them.

Torch-free: writing ``imagesTr``/``labelsTr``, ``dataset.json`` and ``splits_final.json`` needs nibabel and json only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._entropy import kept_slices

if TYPE_CHECKING:
    from msbench.datasets.case import Case

DATASET_ID = 1
DATASET_NAME = "Dataset001_msbench"
PLANS = "nnUNetPlans"
CONFIGURATION = "2d"
TRAINER = "nnUNetTrainerMSBench"
FILE_ENDING = ".nii.gz"
CHANNEL_NAMES = {"flair": "FLAIR", "t1": "T1", "t2": "T2", "pd": "PD"}


@dataclass(frozen=True)
class NnUNetFolders:
    """nnU-Net's three locations for one fit, all under ``root`` (a folder of the run directory)."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "nnUNet_raw"

    @property
    def preprocessed(self) -> Path:
        return self.root / "nnUNet_preprocessed"

    @property
    def results(self) -> Path:
        return self.root / "nnUNet_results"

    @property
    def dataset_raw(self) -> Path:
        return self.raw / DATASET_NAME

    @property
    def model(self) -> Path:
        """nnU-Net's output folder of the trained configuration (``plans.json``, ``fold_0/checkpoint_*.pth``)."""
        return self.results / DATASET_NAME / f"{TRAINER}__{PLANS}__{CONFIGURATION}"

    def environment(self) -> dict[str, str]:
        """The variables nnU-Net reads its locations from, for the worker process only."""
        return {
            "nnUNet_raw": str(self.raw),
            "nnUNet_preprocessed": str(self.preprocessed),
            "nnUNet_results": str(self.results),
        }


@dataclass(frozen=True)
class RawDataset:
    """What ``write_raw_dataset`` wrote: identifiers per split and the axial slices kept for training."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    kept_slices: dict[str, list[int]]

    @property
    def splits(self) -> list[dict[str, list[str]]]:
        """``splits_final.json``: one fold, the harness's own."""
        return [{"train": list(self.train), "val": list(self.val)}]


def case_identifiers(cases: Sequence[Case]) -> list[str]:
    """nnU-Net case identifiers: the case ids with characters outside ``[A-Za-z0-9-]`` replaced, unique."""
    identifiers = [re.sub(r"[^A-Za-z0-9-]+", "-", c.case_id).strip("-") or "case" for c in cases]
    seen: dict[str, int] = {}
    unique = []
    for name in identifiers:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return unique


def write_raw_dataset(
    folders: NnUNetFolders,
    train: Sequence[Case],
    val: Sequence[Case],
    modalities: Sequence[str],
    reference: str,
    entropy_threshold: float,
) -> RawDataset:
    """Writes the fold's training and validation scans in nnU-Net's raw layout, with dataset.json and the split.

    Images are written as float32 NIfTI with the case's affine and voxel size, one file per modality
    (``<id>_0000.nii.gz`` ...); labels as uint8 0/1. nnU-Net reads them back with its ``NibabelIO``.

    Args:
        folders: The fit's nnU-Net folders.
        train: Training scans (only their kept slices will be trained on).
        val: Validation scans.
        modalities: Canonical modality names, one nnU-Net channel each, in order.
        reference: Reference mask name used as label.
        entropy_threshold: Slices with mask entropy below it are not trained on.

    Returns:
        The identifiers per split and the kept slices of the training scans.
    """
    if not train:
        raise ValueError("nnunet2d needs at least one training case; the fold has none.")
    if not val:
        raise ValueError("nnunet2d needs at least one validation case (nnU-Net's validation batches); got none.")
    unknown = [m for m in modalities if m not in CHANNEL_NAMES]
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; expected names among {sorted(CHANNEL_NAMES)}.")
    import nibabel as nib

    images, labels = folders.dataset_raw / "imagesTr", folders.dataset_raw / "labelsTr"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    cases = [*train, *val]
    identifiers = case_identifiers(cases)
    kept: dict[str, list[int]] = {}
    for identifier, case in zip(identifiers, cases, strict=True):
        spacing = tuple(case.spacing_mm)
        for channel, modality in enumerate(modalities):
            image = nib.Nifti1Image(case.load_image(modality), case.affine)
            image.header.set_zooms(spacing)
            nib.save(image, images / f"{identifier}_{channel:04d}{FILE_ENDING}")
        mask = case.load_mask(reference)
        label = nib.Nifti1Image(mask.astype(np.uint8), case.affine)
        label.header.set_zooms(spacing)
        nib.save(label, labels / f"{identifier}{FILE_ENDING}")
        kept[identifier] = kept_slices(mask, entropy_threshold)

    raw = RawDataset(
        train=tuple(identifiers[: len(train)]),
        val=tuple(identifiers[len(train) :]),
        kept_slices={i: kept[i] for i in identifiers[: len(train)]},
    )
    dataset_json = {
        "channel_names": {str(c): CHANNEL_NAMES[m] for c, m in enumerate(modalities)},
        "labels": {"background": 0, "lesion": 1},
        "numTraining": len(cases),
        "file_ending": FILE_ENDING,
        "overwrite_image_reader_writer": "NibabelIO",
        "name": "msbench",
        "description": "msbench fold: training and validation scans only; test scans never enter nnU-Net.",
    }
    (folders.dataset_raw / "dataset.json").write_text(json.dumps(dataset_json, indent=1))
    (folders.dataset_raw / "splits_final.json").write_text(json.dumps(raw.splits, indent=1))
    return raw
