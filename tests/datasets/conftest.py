"""Writers of tiny on-disk layouts (8x9x7 volumes) of every dataset format msbench reads, as the ``tl`` fixture."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np
import pytest

SHAPE = (8, 9, 7)
SPACING = (1.0, 1.0, 3.0)


def affine(spacing: tuple[float, float, float] = SPACING) -> np.ndarray:
    return np.diag([*spacing, 1.0])


def write_volume(path: Path, data: np.ndarray | None = None, *, seed: int = 0, aff: np.ndarray | None = None) -> Path:
    """Writes a float32 image (random positive intensities by default) or the given array."""
    if data is None:
        data = np.random.default_rng(seed).uniform(1.0, 100.0, SHAPE).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.asarray(data), affine() if aff is None else aff)
    nib.save(img, str(path))
    return path


def lesion_mask(seed: int = 0) -> np.ndarray:
    """Two lesions: a 2x2x2 cube and a single voxel, apart."""
    mask = np.zeros(SHAPE, dtype=np.uint8)
    shift = seed % 2
    mask[1 + shift : 3 + shift, 1:3, 1:3] = 1
    mask[6, 7, 5] = 1
    return mask


def write_isbi_training(root: Path, timepoints: tuple[int, ...] = (4, 4, 5, 4, 4), truth: bool = False) -> Path:
    for p, n in enumerate(timepoints, start=1):
        patient = f"training{p:02d}"
        for t in range(1, n + 1):
            case = f"{patient}_{t:02d}"
            for k, mod in enumerate(("flair", "mprage", "t2", "pd")):
                write_volume(
                    root / "training" / patient / "preprocessed" / f"{case}_{mod}_pp.nii", seed=p * 100 + t + k
                )
            for rater in ("mask1", "mask2", *(("truth",) if truth else ())):
                write_volume(root / "training" / patient / "masks" / f"{case}_{rater}.nii", lesion_mask(t))
    return root


def write_isbi_test(root: Path, timepoints: tuple[int, ...] = (2, 3)) -> Path:
    for p, n in enumerate(timepoints, start=1):
        patient = f"test{p:02d}"
        for t in range(1, n + 1):
            for mod in ("flair", "mprage", "t2", "pd"):
                write_volume(root / "testdata_website" / patient / "preprocessed" / f"{patient}_{t:02d}_{mod}_pp.nii")
    return root


def write_msseg(
    root: Path, subset: str = "Training", centers: tuple[str, ...] = ("01", "07", "08"), n: int = 5
) -> Path:
    for c in centers:
        for p in range(1, n + 1):
            base = root / subset / f"Center_{c}" / f"Patient_{p:02d}"
            for mod in ("FLAIR", "T1", "T2", "DP", "GADO"):
                write_volume(base / "Preprocessed_Data" / f"{mod}_preprocessed.nii.gz", seed=p)
            write_volume(base / "Masks" / "Consensus.nii.gz", lesion_mask(p))
            for k in range(1, 8):
                write_volume(base / "Masks" / f"ManualSegmentation_{k}.nii.gz", lesion_mask(p + k))
            write_volume(base / "Masks" / "Brain_Mask.nii.gz", np.ones(SHAPE, np.uint8))
            write_volume(base / "Raw_Data" / "FLAIR.nii.gz", seed=p)
    return root


MNI_SUFFIX = "_N4_noneck_reduced_winsor_regtoFLAIR_brain_N4_regtoMNI.nii.gz"
MNI_MASK = "GOLD_STANDARD_N4_noneck_reduced_winsor_regtoFLAIR_regtoMNI.nii.gz"


def write_lesjak(folder: Path, variant: str = "coregistered", n: int = 30, prefixed: bool = False) -> Path:
    """One variant folder with patientNN subfolders (open_ms_data names, or the authors' patientNN_ prefix)."""
    for i in range(1, n + 1):
        patient = folder / f"patient{i:02d}"
        pre = f"{patient.name}_" if prefixed else ""
        if variant == "mni":
            for mod in ("FLAIR", "T1", "T1POST", "T2"):
                write_volume(patient / f"{mod}{MNI_SUFFIX}", seed=i)
            write_volume(patient / MNI_MASK, lesion_mask(i))
            continue
        for mod in ("FLAIR", "T1W", "T1WKS", "T2W"):
            aff = affine((0.9, 0.9, 1.2)) if variant == "raw" and mod != "FLAIR" else None
            write_volume(patient / f"{pre}{mod}.nii.gz", seed=i, aff=aff)
        write_volume(patient / f"{pre}consensus_gt.nii.gz", lesion_mask(i))
        if variant == "coregistered":
            write_volume(patient / f"{pre}brainmask.nii.gz", np.ones(SHAPE, np.uint8))
    return folder


def write_nnunet(
    root: Path, cases: tuple[str, ...] = ("ms_001", "ms_002", "ms_003"), channels=("FLAIR", "T1w")
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    meta = {
        "channel_names": {str(i): c for i, c in enumerate(channels)},
        "labels": {"background": 0, "lesion": 1},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(meta))
    for j, case in enumerate(cases):
        for i in range(len(channels)):
            write_volume(root / "imagesTr" / f"{case}_{i:04d}.nii.gz", seed=j * 10 + i)
        write_volume(root / "labelsTr" / f"{case}.nii.gz", lesion_mask(j))
    return root


@pytest.fixture
def tl() -> ModuleType:
    """This module: the layout writers and constants."""
    return sys.modules[__name__]
