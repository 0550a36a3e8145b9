"""Any data set in nnU-Net v2's raw layout: ``dataset.json``, ``imagesTr/<case>_XXXX``, ``labelsTr/<case>``.

Channels come from ``dataset.json`` (``channel_names``, or the v1 key ``modality``), mapped to canonical names
(``FLAIR`` -> ``flair``, ``T1w`` -> ``t1``; unknown names kept in lower case). Every label other than background
counts as lesion: msbench scores a binary segmentation. Patient id = case id, unless ``msbench_patients.json``
(``{"case": "patient", ...}``) in the dataset folder, or the ``patients`` argument, maps cases to patients so that
a patient's scans stay in one split.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from ._layout import canonical_modality, check_same_grid, require_file
from .case import Case
from .registry import DatasetNotFoundError, get_dataset

DATASET = "nnunet-raw"
PATIENT_MAP = "msbench_patients.json"

LAYOUT = """\
<root>/dataset.json            (channel_names {"0": "FLAIR", ...}, labels {"background": 0, "lesion": 1}, file_ending)
<root>/imagesTr/<case>_0000.nii.gz   (one file per channel: _0000, _0001, ...)
<root>/labelsTr/<case>.nii.gz        (every non-zero label is lesion)
<root>/msbench_patients.json   (optional: {"<case>": "<patient>"}; default patient = case)"""


def load(root: Path, patients: Mapping[str, str] | None = None) -> list[Case]:
    """Lists the training cases of an nnU-Net raw dataset folder (``DatasetXXX_Name``).

    Args:
        root: The dataset folder holding ``dataset.json``, ``imagesTr`` and ``labelsTr``.
        patients: Case id -> patient id; default: ``root/msbench_patients.json`` if present, else the case id.

    Raises:
        DatasetNotFoundError: ``dataset.json`` or ``imagesTr`` is missing.
        MissingFileError: A channel of a case or its label file is missing (the message names the file).
        ValueError: ``dataset.json`` is malformed, a case has no patient in the mapping, a file matches no channel,
            or a case's channels and label do not share one voxel grid.
    """
    spec = get_dataset(DATASET)
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise DatasetNotFoundError(spec.missing_message(root, f"There is no {meta_path}."))
    channels, ending = _read_dataset_json(meta_path)
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    if not images_dir.is_dir():
        raise DatasetNotFoundError(spec.missing_message(root, f"There is no folder {images_dir}."))
    case_ids = _case_ids(images_dir, ending, channels)
    mapping = _patient_map(root, patients, case_ids)
    cases = []
    for case_id in case_ids:
        images = {
            name: require_file(images_dir / f"{case_id}_{index:04d}{ending}", f"channel {index} ({name}) of {case_id}")
            for index, name in channels.items()
        }
        masks = {"label": require_file(labels_dir / f"{case_id}{ending}", f"the label map of {case_id}")}
        check_same_grid(case_id, images, masks)
        cases.append(Case(case_id, mapping[case_id], None, images, masks, DATASET, {"masks": "label_map"}))
    return cases


def _read_dataset_json(path: Path) -> tuple[dict[int, str], str]:
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}).") from err
    raw = meta.get("channel_names", meta.get("modality"))
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f'{path}: expected "channel_names" like {{"0": "FLAIR"}}, got {raw!r}.')
    try:
        channels = {int(k): canonical_modality(str(v)) for k, v in sorted(raw.items(), key=lambda kv: int(kv[0]))}
    except ValueError as err:
        raise ValueError(
            f'{path}: "channel_names" keys must be channel indices "0", "1", ...; got {list(raw)}.'
        ) from err
    if len(set(channels.values())) != len(channels):
        raise ValueError(f'{path}: "channel_names" {raw} name one modality twice; give each channel its own name.')
    labels = meta.get("labels")
    if not isinstance(labels, dict) or len(labels) < 2:
        raise ValueError(f'{path}: expected "labels" with background and at least one lesion label, got {labels!r}.')
    ending = meta.get("file_ending", ".nii.gz")
    if ending not in (".nii.gz", ".nii"):
        raise ValueError(f"{path}: file_ending {ending!r} is not NIfTI; msbench reads .nii.gz and .nii.")
    return channels, ending


def _case_ids(images_dir: Path, ending: str, channels: dict[int, str]) -> list[str]:
    ids = set()
    for path in images_dir.glob(f"*{ending}"):
        stem = path.name[: -len(ending)]
        case_id, _, index = stem.rpartition("_")
        if not (case_id and len(index) == 4 and index.isdigit() and int(index) in channels):
            raise ValueError(
                f"{path}: expected <case>_XXXX{ending} with XXXX one of the channels "
                f"{', '.join(f'{i:04d}' for i in channels)} of dataset.json."
            )
        ids.add(case_id)
    if not ids:
        raise DatasetNotFoundError(get_dataset(DATASET).missing_message(images_dir.parent, f"{images_dir} is empty."))
    return sorted(ids)


def _patient_map(root: Path, patients: Mapping[str, str] | None, case_ids: list[str]) -> dict[str, str]:
    source = "the patients argument"
    if patients is None and (root / PATIENT_MAP).is_file():
        source = str(root / PATIENT_MAP)
        patients = json.loads((root / PATIENT_MAP).read_text())
    if patients is None:
        return {c: c for c in case_ids}
    missing = [c for c in case_ids if c not in patients]
    if missing:
        raise ValueError(f"{source}: no patient for cases {missing[:10]}; map every case of imagesTr to a patient.")
    return {c: str(patients[c]) for c in case_ids}
