"""Committed, fingerprinted splits: which cases train, validate and test in each fold of a protocol.

Splits are data (``datasets/splits/<dataset>__<protocol>.json``), never recomputed at run time. Each file carries a
fingerprint of the case list it was made for; loading it against other data on disk is an error. Datasets whose case
list cannot be known in advance (``nnunet-raw``, subsets of a dataset) get a split file made once by
:func:`make_kfold_split`, kept by the user and loaded by path or from ``$MSBENCH_SPLITS_DIR``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._folds import isbi2015_folds, kfold_folds
from .case import Case

SPLITS_DIR = Path(__file__).parent / "splits"
SCHEMA_VERSION = 1
SPLITS_ENV = "MSBENCH_SPLITS_DIR"
"""Folder of user-made split files (``<dataset>__<protocol>.json``), searched after the committed ones."""


@dataclass(frozen=True)
class Fold:
    """One outer fold: case ids per role."""

    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def select(self, cases: Sequence[Case], role: str) -> list[Case]:
        wanted = set(getattr(self, role))
        return [c for c in cases if c.case_id in wanted]


@dataclass(frozen=True)
class Split:
    """A named protocol's folds for one dataset."""

    dataset: str
    protocol: str
    folds: tuple[Fold, ...]
    case_fingerprint: str
    leaks_timepoints: bool
    path: Path
    sha256: str
    description: str = ""


def case_fingerprint(case_ids: Sequence[str]) -> str:
    """Hash of the sorted case ids: what a split was made for."""
    return hashlib.sha256("\n".join(sorted(case_ids)).encode()).hexdigest()


def split_path(dataset: str, protocol: str) -> Path:
    return SPLITS_DIR / f"{dataset}__{protocol}.json"


def locate_split(dataset: str, protocol: str | Path) -> Path:
    """The split file for a protocol name or a path.

    Order: ``protocol`` itself when it names a ``.json`` file, the committed file, then ``$MSBENCH_SPLITS_DIR``.
    """
    protocol = str(protocol)
    if protocol.endswith(".json"):
        path = Path(protocol).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: split file not found (protocol {protocol!r} names a .json file).")
        return path
    committed = split_path(dataset, protocol)
    if committed.is_file():
        return committed
    user_dir = os.environ.get(SPLITS_ENV)
    if user_dir and (Path(user_dir).expanduser() / committed.name).is_file():
        return Path(user_dir).expanduser() / committed.name
    known = sorted(p.stem.split("__")[1] for p in SPLITS_DIR.glob(f"{dataset}__*.json"))
    where = f"{SPLITS_DIR}" + (f" or ${SPLITS_ENV}={user_dir}" if user_dir else f" (nor ${SPLITS_ENV}, which is unset)")
    raise KeyError(
        f"no split for dataset {dataset!r} and protocol {protocol!r} in {where}; committed protocols: {known}. "
        f"Make one once with msbench.datasets.make_kfold_split({dataset!r}, cases, k=5, seed=0, out=DIR) and set "
        f"{SPLITS_ENV}=DIR, or pass the file's path as the protocol."
    )


def load_split(dataset: str, protocol: str | Path, cases: Sequence[Case]) -> Split:
    """Loads a split and checks it against the cases found on disk.

    Args:
        dataset: Registered dataset name; the file must have been made for it.
        protocol: Protocol name (committed file or ``$MSBENCH_SPLITS_DIR``), or the path of a ``.json`` split file.
        cases: The cases on disk; their ids must be exactly the split's (same fingerprint).

    Raises:
        KeyError: No split file for this dataset and protocol.
        ValueError: The file is for another dataset or schema, its folds are inconsistent, or it does not match the
            data on disk (the message lists missing and unexpected case ids).
    """
    path = locate_split(dataset, protocol)
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a split file, invalid JSON ({err}).") from err
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}.")
    if data.get("dataset") != dataset:
        raise ValueError(f"{path}: the split was made for dataset {data.get('dataset')!r}, not {dataset!r}.")
    found = case_fingerprint([c.case_id for c in cases])
    if found != data["case_fingerprint"]:
        expected = set(data["case_ids"])
        have = {c.case_id for c in cases}
        raise ValueError(
            f"{path}: the split does not match the data on disk ({len(have)} cases found, {len(expected)} in the "
            f"split). Missing on disk: {sorted(expected - have)[:10]}; "
            f"not in the split: {sorted(have - expected)[:10]}. "
            "Check --data-root, or regenerate the data; for a different case list make a split with make_kfold_split."
        )
    folds = tuple(Fold(f["index"], tuple(f["train"]), tuple(f["val"]), tuple(f["test"])) for f in data["folds"])
    leaks = bool(data.get("leaks_timepoints", False))
    _check_folds(path, folds, cases, leaks)
    return Split(
        dataset=dataset,
        protocol=data.get("protocol", str(protocol)),
        folds=folds,
        case_fingerprint=found,
        leaks_timepoints=leaks,
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        description=data.get("description", ""),
    )


def _check_folds(path: Path, folds: Sequence[Fold], cases: Sequence[Case], leaks_timepoints: bool) -> None:
    """Every fold partitions the cases; without ``leaks_timepoints`` no test patient trains or validates."""
    ids = {c.case_id for c in cases}
    patient = {c.case_id: c.patient_id for c in cases}
    for fold in folds:
        roles = (fold.train, fold.val, fold.test)
        listed = [c for role in roles for c in role]
        if sorted(listed) != sorted(ids):
            raise ValueError(f"{path}: fold {fold.index} does not use every case exactly once in train/val/test.")
        if not fold.test or not fold.train:
            raise ValueError(f"{path}: fold {fold.index} has an empty train or test set.")
        test_patients = {patient[c] for c in fold.test}
        seen = {patient[c] for c in (*fold.train, *fold.val)} & test_patients
        if seen and not leaks_timepoints:
            raise ValueError(
                f"{path}: fold {fold.index} trains or validates on test patients {sorted(seen)}, but the file does "
                "not declare leaks_timepoints: true."
            )


def split_payload(
    dataset: str,
    protocol: str,
    case_ids: Sequence[str],
    folds: list[dict[str, object]],
    *,
    leaks_timepoints: bool = False,
    description: str = "",
    extra: dict[str, object] | None = None,
) -> str:
    """The text of a split file (JSON, one-space indent, trailing newline): what :func:`write_split` writes."""
    payload = {
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset,
        "protocol": protocol,
        "description": description,
        "leaks_timepoints": leaks_timepoints,
        "case_fingerprint": case_fingerprint(case_ids),
        "case_ids": sorted(case_ids),
        **(extra or {}),
        "folds": folds,
    }
    return json.dumps(payload, indent=1) + "\n"


def write_split(
    dataset: str,
    protocol: str,
    case_ids: Sequence[str],
    folds: list[dict[str, object]],
    *,
    leaks_timepoints: bool = False,
    description: str = "",
    path: Path | None = None,
    extra: dict[str, object] | None = None,
) -> Path:
    """Writes a split file: by default the committed one (maintainers only; see ``committed_splits``)."""
    path = split_path(dataset, protocol) if path is None else path
    path.parent.mkdir(parents=True, exist_ok=True)
    text = split_payload(
        dataset, protocol, case_ids, folds, leaks_timepoints=leaks_timepoints, description=description, extra=extra
    )
    path.write_text(text)
    return path


def make_kfold_split(
    dataset: str,
    cases: Sequence[Case],
    k: int = 5,
    seed: int = 0,
    *,
    out: Path | str | None = None,
    protocol: str | None = None,
    n_val: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Makes a seeded patient-level K-fold split of the cases on disk and writes it where the user keeps it.

    Fold ``i`` tests one group of patients, validates on ``n_val`` patients of the next group and trains on the
    rest (see ``kfold_folds``). Run it once, keep the file with the data, and load it with
    ``load_split(dataset, "<file>.json", cases)`` or by protocol name with ``$MSBENCH_SPLITS_DIR`` set to its folder.

    Args:
        dataset: Registered dataset name recorded in the file.
        cases: The dataset's cases (their ids are fingerprinted; their patient ids group the folds).
        k: Number of folds.
        seed: Shuffle seed.
        out: A folder (the file is named ``<dataset>__<protocol>.json``) or a ``.json`` path; default
            ``$MSBENCH_SPLITS_DIR``.
        protocol: Protocol name stored in the file; default ``kfold<k>``.
        n_val: Validation patients per fold; default one per ten patients, at least one.
        overwrite: Replace an existing file with different content (a split should not change once used).

    Returns:
        The path written.
    """
    protocol = protocol or f"kfold{k}"
    if out is None:
        if not os.environ.get(SPLITS_ENV):
            raise ValueError(f"make_kfold_split needs out=DIR (or ${SPLITS_ENV}) to know where to keep the split file.")
        out = os.environ[SPLITS_ENV]
    out = Path(out).expanduser()
    path = out if out.suffix == ".json" else out / f"{dataset}__{protocol}.json"
    patient_of = {c.case_id: c.patient_id for c in cases}
    if len(patient_of) != len(cases):
        raise ValueError(f"dataset {dataset!r}: case ids are not unique; a split needs one id per case.")
    folds = kfold_folds(patient_of, k=k, seed=seed, n_val=n_val)
    description = (
        f"{dataset}: seeded patient-level {k}-fold (seed {seed}); fold i tests one group of patients, validates on "
        f"{len(folds[0]['patients']['val'])} patient(s) of the next group (cyclic), the others train."
    )
    text = split_payload(
        dataset, protocol, list(patient_of), folds, description=description, extra={"k": k, "seed": seed}
    )
    if path.is_file() and path.read_text() != text and not overwrite:
        raise FileExistsError(f"{path}: a different split already exists; pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


__all__ = [
    "SPLITS_DIR",
    "Fold",
    "Split",
    "case_fingerprint",
    "isbi2015_folds",
    "kfold_folds",
    "load_split",
    "locate_split",
    "make_kfold_split",
    "split_path",
    "split_payload",
    "write_split",
]
