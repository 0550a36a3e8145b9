"""Lesjak et al. 3D-MR-MS (Ljubljana, 30 patients, 3 T): raw, co-registered and MNI-space layouts.

Layouts read (the variant is taken from the folder; ``variant=`` forces one):

- ``coregistered``: the images co-registered to FLAIR and bias corrected, in FLAIR space with the consensus; file
  names as in open_ms_data (``FLAIR.nii.gz``) or as distributed by the authors (``patient01_FLAIR.nii.gz``).
- ``raw``: images in their acquisition space (a folder named ``raw``, or T1W not on FLAIR's grid). Only FLAIR
  shares the consensus grid, so only FLAIR is an input; the other raw files are listed in
  ``Case.meta["unregistered"]`` (use the co-registered variant for several inputs).
- ``mni``: open_ms_data's MNI-space files (1 mm, 182x218x182), skull stripped, N4 corrected.

The open_ms_data sample ships images for very few patients (the others have only the consensus); loading it raises
an error that says so, and :func:`load_masks_only` lists every consensus for lesion statistics.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ._layout import MissingFileError, check_same_grid, find_first, header_grid
from .case import Case
from .nifti import AFFINE_ATOL_MM
from .registry import DatasetNotFoundError, get_dataset

DATASET = "lesjak-3dms"
VARIANTS = ("coregistered", "raw", "mni")
_MNI_SUFFIX = "_N4_noneck_reduced_winsor_regtoFLAIR_brain_N4_regtoMNI.nii.gz"
MNI_MASK = "GOLD_STANDARD_N4_noneck_reduced_winsor_regtoFLAIR_regtoMNI.nii.gz"

FILES = {
    "coregistered": {"flair": "FLAIR", "t1": "T1W", "t1post": "T1WKS", "t2": "T2W"},
    "raw": {"flair": "FLAIR"},
    "mni": {
        "flair": f"FLAIR{_MNI_SUFFIX}",
        "t1": f"T1{_MNI_SUFFIX}",
        "t1post": f"T1POST{_MNI_SUFFIX}",
        "t2": f"T2{_MNI_SUFFIX}",
    },
}
"""Variant -> canonical modality -> file stem (``.nii.gz`` added unless present)."""

LAYOUT = f"""\
<root>/patient01/FLAIR.nii.gz  T1W.nii.gz  T1WKS.nii.gz  T2W.nii.gz  consensus_gt.nii.gz  (co-registered to FLAIR;
    names may carry the patient prefix, patient01_FLAIR.nii.gz, as in the authors' archive)
<root>/patient01/FLAIR.nii.gz + consensus_gt.nii.gz        (raw variant: a folder named raw)
<root>/patient01/FLAIR{_MNI_SUFFIX}  (also T1, T1POST, T2)
<root>/patient01/{MNI_MASK}     (MNI variant, open_ms_data)
... patient01..patient30; <root> may also be open_ms_data/cross_sectional/<variant> or one holding only one variant"""

_RAW_OTHERS = ("T1W", "T1WKS", "T2W")


def load(root: Path, variant: str | None = None) -> list[Case]:
    """Lists the 3D-MR-MS cases (one per patient) with all modalities of the variant and the consensus mask.

    Args:
        root: A variant folder holding ``patientNN/`` (or open_ms_data's root or ``cross_sectional`` when it holds
            exactly one variant).
        variant: ``coregistered``, ``raw`` or ``mni``; default: read from the folder.

    Raises:
        DatasetNotFoundError: No ``patientNN`` folders, or several variants to choose from.
        MissingFileError: A modality or the consensus is missing; for patients that have only the consensus (the
            open_ms_data sample), the message names them and points to :func:`load_masks_only`.
        ValueError: A case's images and mask do not share one voxel grid (the message names both files).
    """
    folder, variant = _resolve(root, variant)
    patients = _patients(folder, root)
    masks_only = [p for p in patients if not _has_any_image(p, variant)]
    if masks_only:
        names = ", ".join(p.name for p in masks_only[:8]) + (" ..." if len(masks_only) > 8 else "")
        expected = _image_path(masks_only[0], variant, "flair")
        raise MissingFileError(
            f"{expected}: expected the FLAIR image, but {len(masks_only)} of {len(patients)} patients in {folder} "
            f"have only the consensus mask ({names}). The open_ms_data sample ships images for a few patients only. "
            "For lesion statistics use msbench.datasets.lesjak.load_masks_only(root); to run methods, get the full "
            "3D-MR-MS data set (http://lit.fe.uni-lj.si/tools) and point --data-root at it."
        )
    return [_case(p, variant) for p in patients]


def load_masks_only(root: Path, variant: str | None = None) -> list[Case]:
    """Lists every patient's consensus mask, images or not (``Case.images`` is empty): for lesion statistics."""
    folder, variant = _resolve(root, variant)
    cases = []
    for patient in _patients(folder, root):
        mask = _mask_path(patient, variant)
        cases.append(Case(patient.name, patient.name, None, {}, {"consensus": mask}, DATASET, {"variant": variant}))
    return cases


def _resolve(root: Path, variant: str | None) -> tuple[Path, str]:
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not a 3D-MR-MS layout; expected one of {', '.join(VARIANTS)}.")
    folder = root / "cross_sectional" if (root / "cross_sectional").is_dir() else root
    if not folder.is_dir():
        raise DatasetNotFoundError(get_dataset(DATASET).missing_message(root, f"There is no folder {folder}."))
    if any(_is_patient(p) for p in folder.iterdir()):
        return folder, variant or _detect(folder)
    subfolders = {"coregistered": "coregistered", "raw": "raw", "mni": "MNI"}
    present = {v: folder / name for v, name in subfolders.items() if (folder / name).is_dir()}
    if variant is not None:
        present = {variant: present[variant]} if variant in present else {}
    if len(present) != 1:
        problem = (
            f"{folder} holds several variants ({', '.join(str(p) for p in present.values())}); point at one of them."
            if present
            else f"{folder} holds no patientNN folders."
        )
        raise DatasetNotFoundError(get_dataset(DATASET).missing_message(root, problem))
    ((found, folder),) = present.items()
    return folder, variant or found


def _detect(folder: Path) -> str:
    """The variant from the folder's name, else its files: MNI names, or whether T1W shares FLAIR's grid."""
    name = folder.name.lower()
    if name in ("mni", "raw", "coregistered"):
        return name
    if any(folder.glob(f"patient*/{MNI_MASK}")):
        return "mni"
    for patient in sorted(p for p in folder.iterdir() if _is_patient(p)):
        flair = [p for p in _candidates(patient, "FLAIR") if p.is_file()]
        t1 = [p for p in _candidates(patient, "T1W") if p.is_file()]
        if flair and t1:
            (shape_f, affine_f), (shape_t, affine_t) = header_grid(flair[0]), header_grid(t1[0])
            same = shape_f == shape_t and np.allclose(affine_f, affine_t, atol=AFFINE_ATOL_MM)
            return "coregistered" if same else "raw"
    return "coregistered"


def _is_patient(path: Path) -> bool:
    return path.is_dir() and re.fullmatch(r"patient\d\d", path.name) is not None


def _patients(folder: Path, root: Path) -> list[Path]:
    patients = sorted(p for p in folder.iterdir() if _is_patient(p))
    if not patients:
        raise DatasetNotFoundError(get_dataset(DATASET).missing_message(root, f"{folder} holds no patientNN folders."))
    return patients


def _candidates(patient: Path, stem: str) -> list[Path]:
    name = stem if stem.endswith(".nii.gz") else f"{stem}.nii.gz"
    return [patient / name, patient / f"{patient.name}_{name}"]


def _image_path(patient: Path, variant: str, modality: str) -> Path:
    return _candidates(patient, FILES[variant][modality])[0]


def _has_any_image(patient: Path, variant: str) -> bool:
    return any(path.is_file() for stem in FILES[variant].values() for path in _candidates(patient, stem))


def _mask_path(patient: Path, variant: str) -> Path:
    stem = MNI_MASK if variant == "mni" else "consensus_gt"
    return find_first(_candidates(patient, stem), f"the consensus lesion mask of {patient.name}")


def _case(patient: Path, variant: str) -> Case:
    images = {
        modality: find_first(_candidates(patient, stem), f"the {modality} image of {patient.name} ({variant} variant)")
        for modality, stem in FILES[variant].items()
    }
    masks = {"consensus": _mask_path(patient, variant)}
    check_same_grid(patient.name, images, masks)
    meta = {"variant": variant}
    if variant == "coregistered":
        brain = [p for p in _candidates(patient, "brainmask") if p.is_file()]
        if brain:
            meta["brain_mask"] = str(brain[0])
    if variant == "raw":
        others = [p for stem in _RAW_OTHERS for p in _candidates(patient, stem) if p.is_file()]
        meta["unregistered"] = ",".join(str(p) for p in others)
    return Case(patient.name, patient.name, None, images, masks, DATASET, meta)
