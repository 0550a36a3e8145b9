"""Any data set in nnU-Net v2's raw layout: ``dataset.json``, ``imagesTr/<case>_XXXX``, ``labelsTr/<case>``.

Channels come from ``dataset.json`` (``channel_names``, or the v1 key ``modality``), mapped to canonical names
(``FLAIR`` -> ``flair``, ``T1w`` -> ``t1``; unknown names kept in lower case). Every label other than background
counts as lesion: msbench scores a binary segmentation.

Patients: nnU-Net's layout does not say which scans belong to one patient, and a split must keep a patient's scans
together. The patient of each case comes from, in this order: the ``patients`` argument (``{"case": "patient"}``),
the ``patient_regex`` argument (what ``--patient-regex`` gives), ``msbench_patients.json`` in the dataset folder, the
``MSBENCH_NNUNET_PATIENT_REGEX`` environment variable. A regex is matched against the whole case id; its group
``patient`` (else its first group) is the patient id and an optional group ``timepoint`` the time point. With none
of them each case is its own patient, unless the case ids look longitudinal (``training01_01``, ``training01_02``:
a shared prefix with time-point suffixes), which is refused rather than split by scan.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from ._layout import canonical_modality, check_same_grid, require_file
from .case import Case
from .nifti import NIFTI_SUFFIXES
from .registry import DatasetNotFoundError, get_dataset

DATASET = "nnunet-raw"
PATIENT_MAP = "msbench_patients.json"
PATIENT_REGEX_ENV = "MSBENCH_NNUNET_PATIENT_REGEX"

_TIMEPOINT_SUFFIX = re.compile(
    r"^(?P<patient>.*?[A-Za-z0-9])[_\-.]?(?P<marker>tp|t|time|timepoint|ses-?|session|visit|v|scan|m)?(?P<number>\d+)$",
    re.IGNORECASE,
)

LAYOUT = """\
<root>/dataset.json            (channel_names {"0": "FLAIR", ...}, labels {"background": 0, "lesion": 1}, file_ending)
<root>/imagesTr/<case>_0000.nii.gz   (one file per channel: _0000, _0001, ...)
<root>/labelsTr/<case>.nii.gz        (every non-zero label is lesion)
<root>/msbench_patients.json   (optional: {"<case>": "<patient>"}; default patient = case)"""


def load(root: Path, patients: Mapping[str, str] | None = None, patient_regex: str | None = None) -> list[Case]:
    r"""Lists the training cases of an nnU-Net raw dataset folder (``DatasetXXX_Name``).

    Args:
        root: The dataset folder holding ``dataset.json``, ``imagesTr`` and ``labelsTr``.
        patients: Case id -> patient id.
        patient_regex: Regex over the whole case id whose group ``patient`` (else group 1) is the patient id, with
            an optional group ``timepoint``; e.g. ``(?P<patient>.+)_(?P<timepoint>\d+)``. ``(.+)`` declares one
            patient per case on purpose. Default: ``msbench_patients.json``, else ``MSBENCH_NNUNET_PATIENT_REGEX``.

    Raises:
        DatasetNotFoundError: ``dataset.json`` or ``imagesTr`` is missing.
        MissingFileError: A channel of a case or its label file is missing (the message names the file).
        ValueError: ``dataset.json`` is malformed, a case has no patient in the mapping or does not match the regex,
            the case ids look longitudinal and nothing maps them to patients, a file matches no channel, or a
            case's channels and label do not share one voxel grid.
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
    mapping, timepoints = _patient_map(root, patients, patient_regex, case_ids)
    cases = []
    for case_id in case_ids:
        images = {
            name: require_file(images_dir / f"{case_id}_{index:04d}{ending}", f"channel {index} ({name}) of {case_id}")
            for index, name in channels.items()
        }
        masks = {"label": require_file(labels_dir / f"{case_id}{ending}", f"the label map of {case_id}")}
        check_same_grid(case_id, images, masks)
        cases.append(
            Case(case_id, mapping[case_id], timepoints.get(case_id), images, masks, DATASET, {"masks": "label_map"})
        )
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
    if ending not in NIFTI_SUFFIXES:
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


def _patient_map(
    root: Path, patients: Mapping[str, str] | None, patient_regex: str | None, case_ids: list[str]
) -> tuple[dict[str, str], dict[str, int]]:
    """Case -> patient and case -> time point, from the first source given (see the module docstring)."""
    if patients is not None and patient_regex is not None:
        raise ValueError("give either a patient mapping or a patient regex for an nnU-Net raw dataset, not both.")
    source = "the patients argument"
    if patients is None and patient_regex is None and (root / PATIENT_MAP).is_file():
        source = str(root / PATIENT_MAP)
        try:
            patients = json.loads((root / PATIENT_MAP).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f'{source}: not valid JSON ({err}); expected {{"<case>": "<patient>"}}.') from err
        if not isinstance(patients, dict):
            raise ValueError(f'{source}: expected {{"<case>": "<patient>", ...}}, got {type(patients).__name__}.')
    if patients is not None:
        missing = [c for c in case_ids if c not in patients]
        if missing:
            raise ValueError(f"{source}: no patient for cases {missing[:10]}; map every case of imagesTr to a patient.")
        return {c: str(patients[c]) for c in case_ids}, {}
    regex_source = "the patient_regex argument"
    if patient_regex is None and os.environ.get(PATIENT_REGEX_ENV):
        patient_regex, regex_source = os.environ[PATIENT_REGEX_ENV], PATIENT_REGEX_ENV
    if patient_regex is not None:
        return patients_from_regex(patient_regex, case_ids, regex_source)
    groups = longitudinal_groups(case_ids)
    if groups:
        example = next(iter(groups.items()))
        raise ValueError(
            f"{root / 'imagesTr'}: the case ids look longitudinal ({len(groups)} prefixes with several time points, "
            f"e.g. {', '.join(example[1][:3])} of {example[0]!r}), and nothing maps cases to patients: one case per "
            "patient would put a patient's time points in both training and test. Give --patient-regex (or "
            f"{PATIENT_REGEX_ENV}), e.g. '(?P<patient>.+)_(?P<timepoint>\\d+)', or write {root / PATIENT_MAP} "
            'as {"<case>": "<patient>"}; --patient-regex \'(.+)\' keeps one patient per case on purpose.'
        )
    return {c: c for c in case_ids}, {}


def patients_from_regex(
    pattern: str, case_ids: list[str], source: str = "patient_regex"
) -> tuple[dict[str, str], dict[str, int]]:
    """Case -> patient (group ``patient``, else group 1) and case -> time point (group ``timepoint``) by a regex.

    Raises:
        ValueError: The regex does not compile, has no group, or does not match every case id (fullmatch).
    """
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise ValueError(f"{source}={pattern!r}: not a valid regular expression ({err}).") from err
    if regex.groups == 0:
        raise ValueError(
            f"{source}={pattern!r}: has no group; mark the patient part, e.g. '(?P<patient>.+)_(?P<timepoint>\\d+)'."
        )
    patients, timepoints, unmatched = {}, {}, []
    for case_id in case_ids:
        match = regex.fullmatch(case_id)
        if match is None:
            unmatched.append(case_id)
            continue
        patient = match.group("patient") if "patient" in regex.groupindex else match.group(1)
        if not patient:
            unmatched.append(case_id)
            continue
        patients[case_id] = patient
        if "timepoint" in regex.groupindex and match.group("timepoint"):
            try:
                timepoints[case_id] = int(match.group("timepoint"))
            except ValueError as err:
                raise ValueError(
                    f"{source}={pattern!r}: group 'timepoint' of {case_id!r} is {match.group('timepoint')!r}, "
                    "expected a number."
                ) from err
    if unmatched:
        raise ValueError(
            f"{source}={pattern!r} does not match (as a whole, with a non-empty patient) the case ids "
            f"{unmatched[:10]}; every case of imagesTr needs a patient."
        )
    return patients, timepoints


def longitudinal_groups(case_ids: list[str]) -> dict[str, list[str]]:
    """Prefixes shared by several case ids that differ only by a time-point-like suffix (empty: none seen).

    ``training01_01``, ``training01_02`` share ``training01``. Plain numbering (``ms_001``, ``ms_002``: every id
    strips to the same prefix ``ms``) is not longitudinal; with an explicit marker (``_tp1``, ``_ses-2``,
    ``_visit3``) even a single shared prefix is.
    """
    groups: dict[str, list[str]] = {}
    marked: set[str] = set()
    for case_id in case_ids:
        match = _TIMEPOINT_SUFFIX.match(case_id)
        if match is None:
            continue
        groups.setdefault(match.group("patient"), []).append(case_id)
        if match.group("marker"):
            marked.add(match.group("patient"))
    shared = {prefix: ids for prefix, ids in groups.items() if len(ids) > 1}
    if len(groups) == 1 and not marked & set(shared):
        return {}  # one prefix for every case: a numbering, not time points
    return shared


def check_patient_regex(dataset: str, pattern: str | None) -> None:
    """What ``--patient-regex`` must be, checked before anything runs: for ``nnunet-raw``, compiling, with a group.

    The pattern then travels in the request (``RunRequest.patient_regex``) to :meth:`DatasetSpec.load_cases`.

    Raises:
        ValueError: ``dataset`` is not ``nnunet-raw``, or the regex does not compile or has no group.
    """
    if pattern is None:
        return
    if dataset != DATASET:
        raise ValueError(
            f"--patient-regex applies to --dataset {DATASET} only (got {dataset!r}, whose loader knows its patients)."
        )
    patients_from_regex(pattern, [], "--patient-regex")
