"""ISBI 2015 longitudinal MS lesion segmentation challenge: training and test layouts as distributed.

The training layout is also what the synth-ms phantom writes. Only the ``preprocessed`` images are read (skull
stripped, N4 corrected, rigidly registered to the 1 mm MNI template, 181x217x181); the ``orig`` folders are not used.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._layout import check_same_grid, find_first
from .case import Case
from .registry import DatasetNotFoundError, get_dataset

ISBI_MODALITIES = {"flair": "flair", "mprage": "t1", "t2": "t2", "pd": "pd"}
"""ISBI file suffix -> canonical modality."""

LAYOUT = """\
<root>/training/training01/preprocessed/training01_01_flair_pp.nii   (also _mprage_pp, _t2_pp, _pd_pp)
<root>/training/training01/masks/training01_01_mask1.nii             (and _mask2; rater 1 is the primary reference)
... training01..training05, time points 01..05"""

TEST_LAYOUT = """\
<root>/testdata_website/test01/preprocessed/test01_01_flair_pp.nii   (also _mprage_pp, _t2_pp, _pd_pp)
... test01..test14, 4-6 time points each; no masks (the challenge scores test predictions on its website)"""

_FILE = re.compile(r"^((?:training|test)\d\d)_(\d\d)_(flair|mprage|t2|pd|mask1|mask2|truth)(?:_pp)?\.nii(?:\.gz)?$")


def load_training(root: Path, dataset: str = "isbi2015") -> list[Case]:
    """Lists the cases of an ISBI 2015 training folder: all four modalities and both raters for every time point.

    Args:
        root: Folder holding ``training/``.
        dataset: Name recorded in the cases (``synth-ms`` reuses this loader).

    Returns:
        One case per (patient, time point), masks ordered ``mask1``, ``mask2`` (then the phantom's ``truth``).

    Raises:
        DatasetNotFoundError: ``root/training`` is missing or holds no ``trainingNN`` folder.
        MissingFileError: An image or a rater's mask of a time point is missing (the message names the file).
        ValueError: A case's images and masks do not share one voxel grid (the message names both files).
    """
    return _load(root, "training", dataset, raters=("mask1", "mask2"))


def load_test(root: Path, dataset: str = "isbi2015-test") -> list[Case]:
    """Lists the cases of the ISBI 2015 test folder (``testdata_website``); they have no masks (prediction only)."""
    return _load(root, "testdata_website", dataset, raters=())


def _load(root: Path, folder: str, dataset: str, raters: tuple[str, ...]) -> list[Case]:
    spec = get_dataset(dataset)
    base = root / folder
    prefix = "training" if folder == "training" else "test"
    if not base.is_dir():
        raise DatasetNotFoundError(spec.missing_message(root, f"There is no folder {base}."))
    patients = sorted(p for p in base.iterdir() if p.is_dir() and re.fullmatch(rf"{prefix}\d\d", p.name))
    if not patients:
        raise DatasetNotFoundError(spec.missing_message(root, f"{base} holds no {prefix}NN folders."))
    cases: list[Case] = []
    for patient_dir in patients:
        timepoints = _timepoints(patient_dir)
        if not timepoints:
            raise DatasetNotFoundError(
                spec.missing_message(root, f"{patient_dir / 'preprocessed'} holds no {patient_dir.name}_NN_*_pp.nii.")
            )
        for timepoint in timepoints:
            cases.append(_case(patient_dir, timepoint, dataset, raters))
    return cases


def _timepoints(patient_dir: Path) -> list[str]:
    found = set()
    for sub in ("preprocessed", "masks"):
        for path in (patient_dir / sub).glob("*.nii*"):
            if (match := _FILE.match(path.name)) and match[1] == patient_dir.name:
                found.add(match[2])
    return sorted(found)


def _case(patient_dir: Path, timepoint: str, dataset: str, raters: tuple[str, ...]) -> Case:
    case_id = f"{patient_dir.name}_{timepoint}"
    images = {
        canonical: _nifti(patient_dir / "preprocessed" / f"{case_id}_{suffix}_pp", f"the {suffix} image of {case_id}")
        for suffix, canonical in ISBI_MODALITIES.items()
    }
    masks = {rater: _nifti(patient_dir / "masks" / f"{case_id}_{rater}", f"rater mask {rater}") for rater in raters}
    if raters:
        truth = [p for p in (patient_dir / "masks").glob(f"{case_id}_truth.nii*") if _FILE.match(p.name)]
        if truth:
            masks["truth"] = sorted(truth)[0]
    check_same_grid(case_id, images, masks)
    return Case(case_id, patient_dir.name, int(timepoint), images, masks, dataset=dataset)


def _nifti(stem: Path, what: str) -> Path:
    return find_first([stem.with_name(stem.name + ".nii"), stem.with_name(stem.name + ".nii.gz")], what)
