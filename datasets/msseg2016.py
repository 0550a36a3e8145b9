"""MSSEG-2016 (MICCAI 2016 MS lesion segmentation challenge), Training and Testing layouts as distributed.

Only ``Preprocessed_Data`` is read (the organisers' pipeline: denoised, rigidly registered to FLAIR, skull stripped,
bias corrected); ``Raw_Data`` is not used. ``Masks/Brain_Mask.nii.gz``, where present, is the case's brain
(``Case.meta["brain_mask"]``, read by ``Case.load_brain``); it must lie on the preprocessed images' grid. Every case
has the consensus of seven experts and the seven manual segmentations. ``T1`` is the native T1, ``GADO`` the
contrast-enhanced T1 (``t1post``), ``DP`` the proton-density image (``pd``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ._layout import check_same_grid, require_file
from .case import Case
from .registry import DatasetNotFoundError, get_dataset

MSSEG_MODALITIES = {"FLAIR": "flair", "T1": "t1", "T2": "t2", "DP": "pd", "GADO": "t1post"}
"""File prefix in Preprocessed_Data -> canonical modality."""

REFERENCES = ("consensus", *(f"manual{k}" for k in range(1, 8)))
"""Consensus first (the primary reference), then the seven experts' manual segmentations."""

LAYOUT = """\
<root>/Training/Center_01/Patient_01/Preprocessed_Data/FLAIR_preprocessed.nii.gz  (also T1_, T2_, DP_, GADO_)
<root>/Training/Center_01/Patient_01/Masks/Consensus.nii.gz                       (primary reference)
<root>/Training/Center_01/Patient_01/Masks/ManualSegmentation_1.nii.gz            (... _7: the seven experts)
... Centers 01, 07 and 08, Patients 01..05 each (15 training patients)"""

TEST_LAYOUT = LAYOUT.replace("Training/", "Testing/").rsplit("\n", 1)[0] + "\n... the 38 testing patients of 4 centres"


def load_training(root: Path) -> list[Case]:
    """Lists the 15 MSSEG-2016 training cases under ``root/Training`` (or ``root`` itself if it holds Center_XX).

    Raises:
        DatasetNotFoundError: No ``Center_XX/Patient_YY`` folders where they should be.
        MissingFileError: A modality or one of the eight masks is missing (the message names the file).
        ValueError: A case's images and masks do not share one voxel grid (the message names both files).
    """
    return _load(root, "Training", "msseg2016")


def load_testing(root: Path) -> list[Case]:
    """Lists the MSSEG-2016 testing cases under ``root/Testing`` (same files per patient as Training)."""
    return _load(root, "Testing", "msseg2016-test")


def case_id_of(center: str, patient: str) -> str:
    """``Center_07``, ``Patient_03`` -> ``center07_patient03`` (the patient id too: one scan per patient)."""
    return f"center{center.split('_')[-1]}_patient{patient.split('_')[-1]}"


def _load(root: Path, subset: str, dataset: str) -> list[Case]:
    spec = get_dataset(dataset)
    base = root / subset if (root / subset).is_dir() else root
    centers = sorted(p for p in base.glob("Center_*") if p.is_dir() and re.fullmatch(r"Center_\d+", p.name))
    if not centers:
        raise DatasetNotFoundError(spec.missing_message(root, f"Neither {root / subset} nor {root} holds Center_XX."))
    cases: list[Case] = []
    for center in centers:
        patients = sorted(p for p in center.glob("Patient_*") if p.is_dir() and re.fullmatch(r"Patient_\d+", p.name))
        if not patients:
            raise DatasetNotFoundError(spec.missing_message(root, f"{center} holds no Patient_XX folders."))
        cases.extend(_case(patient, dataset) for patient in patients)
    return cases


def _case(patient_dir: Path, dataset: str) -> Case:
    case_id = case_id_of(patient_dir.parent.name, patient_dir.name)
    data, masks_dir = patient_dir / "Preprocessed_Data", patient_dir / "Masks"
    images = {
        canonical: require_file(data / f"{prefix}_preprocessed.nii.gz", f"the {prefix} image of {case_id}")
        for prefix, canonical in MSSEG_MODALITIES.items()
    }
    masks = {"consensus": require_file(masks_dir / "Consensus.nii.gz", f"the consensus mask of {case_id}")}
    for k in range(1, 8):
        masks[f"manual{k}"] = require_file(
            masks_dir / f"ManualSegmentation_{k}.nii.gz", f"expert {k}'s manual segmentation of {case_id}"
        )
    brain = masks_dir / "Brain_Mask.nii.gz"
    check_same_grid(case_id, images, {**masks, **({"brain": brain} if brain.is_file() else {})})
    meta = {"center": patient_dir.parent.name, "patient_folder": patient_dir.name}
    if brain.is_file():
        meta["brain_mask"] = str(brain)
    return Case(case_id, case_id, None, images, masks, dataset=dataset, meta=meta)
