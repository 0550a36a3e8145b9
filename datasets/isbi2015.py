"""ISBI 2015 longitudinal MS lesion segmentation challenge, training layout (also written by the synth-ms phantom)."""

from __future__ import annotations

import re
from pathlib import Path

from .case import Case
from .registry import DatasetNotFoundError, get_dataset

ISBI_MODALITIES = {"flair": "flair", "mprage": "t1", "t2": "t2", "pd": "pd"}
"""ISBI file suffix -> canonical modality."""

LAYOUT = """\
<root>/training/training01/preprocessed/training01_01_flair_pp.nii   (also _mprage_pp, _t2_pp, _pd_pp)
<root>/training/training01/masks/training01_01_mask1.nii             (and _mask2; rater 1 is the primary reference)
... training01..training05, time points 01..05"""

_IMAGE = re.compile(r"^(training\d\d)_(\d\d)_(flair|mprage|t2|pd)_pp\.nii(\.gz)?$")
_MASK = re.compile(r"^(training\d\d)_(\d\d)_(mask1|mask2|truth)\.nii(\.gz)?$")


def load_training(root: Path, dataset: str = "isbi2015") -> list[Case]:
    """Lists the cases of an ISBI 2015 training folder, checking that every modality and both raters are present."""
    spec = get_dataset(dataset)
    training = root / "training"
    if not training.is_dir():
        raise DatasetNotFoundError(spec.missing_message(root, f"There is no folder {training}."))
    patients = sorted(p for p in training.iterdir() if p.is_dir() and re.fullmatch(r"training\d\d", p.name))
    if not patients:
        raise DatasetNotFoundError(spec.missing_message(root, f"{training} holds no trainingNN folders."))
    cases: list[Case] = []
    for patient_dir in patients:
        images: dict[str, dict[str, Path]] = {}
        masks: dict[str, dict[str, Path]] = {}
        for path in sorted((patient_dir / "preprocessed").glob("*.nii*")):
            if match := _IMAGE.match(path.name):
                images.setdefault(match[2], {})[ISBI_MODALITIES[match[3]]] = path
        for path in sorted((patient_dir / "masks").glob("*.nii*")):
            if match := _MASK.match(path.name):
                masks.setdefault(match[2], {})[match[3]] = path
        if not images:
            raise ValueError(
                f"{patient_dir / 'preprocessed'}: no ISBI images found (expected {LAYOUT.splitlines()[0]})."
            )
        for timepoint in sorted(set(images) | set(masks)):
            case_id = f"{patient_dir.name}_{timepoint}"
            found = images.get(timepoint, {})
            missing = sorted(set(ISBI_MODALITIES.values()) - set(found))
            if missing:
                raise ValueError(
                    f"{patient_dir / 'preprocessed'}: case {case_id} lacks modalities {missing} "
                    f"(expected files {case_id}_{{flair,mprage,t2,pd}}_pp.nii)."
                )
            raters = masks.get(timepoint, {})
            for rater in ("mask1", "mask2"):
                if rater not in raters:
                    raise ValueError(f"{patient_dir / 'masks'}: missing {case_id}_{rater}.nii for case {case_id}.")
            ordered = {r: raters[r] for r in ("mask1", "mask2", "truth") if r in raters}
            cases.append(Case(case_id, patient_dir.name, int(timepoint), found, ordered, dataset=dataset))
    return cases
