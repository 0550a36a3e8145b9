"""Committed, fingerprinted splits: which cases train, validate and test in each fold of a protocol.

Splits are data (``datasets/splits/<dataset>__<protocol>.json``), never recomputed at run time. Each file carries a
fingerprint of the case list it was made for; loading it against other data on disk is an error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .case import Case

SPLITS_DIR = Path(__file__).parent / "splits"
SCHEMA_VERSION = 1


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


def case_fingerprint(case_ids: Sequence[str]) -> str:
    """Hash of the sorted case ids: what a split was made for."""
    return hashlib.sha256("\n".join(sorted(case_ids)).encode()).hexdigest()


def split_path(dataset: str, protocol: str) -> Path:
    return SPLITS_DIR / f"{dataset}__{protocol}.json"


def load_split(dataset: str, protocol: str, cases: Sequence[Case]) -> Split:
    """Loads the committed split and checks it against the cases found on disk."""
    path = split_path(dataset, protocol)
    if not path.is_file():
        known = sorted(p.stem.split("__")[1] for p in SPLITS_DIR.glob(f"{dataset}__*.json"))
        raise KeyError(
            f"no committed split for dataset {dataset!r} and protocol {protocol!r}; known protocols: {known}."
        )
    raw = path.read_bytes()
    data = json.loads(raw)
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}.")
    found = case_fingerprint([c.case_id for c in cases])
    if found != data["case_fingerprint"]:
        expected = set(data["case_ids"])
        have = {c.case_id for c in cases}
        raise ValueError(
            f"{path}: the split does not match the data on disk. Missing on disk: {sorted(expected - have)[:10]}; "
            f"not in the split: {sorted(have - expected)[:10]}. Check --data-root, or regenerate the data."
        )
    folds = tuple(Fold(f["index"], tuple(f["train"]), tuple(f["val"]), tuple(f["test"])) for f in data["folds"])
    return Split(
        dataset=dataset,
        protocol=protocol,
        folds=folds,
        case_fingerprint=found,
        leaks_timepoints=bool(data.get("leaks_timepoints", False)),
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def isbi2015_folds(case_ids: Sequence[str]) -> list[dict[str, object]]:
    """Leave-one-patient-out over the 5 training patients; the next patient (cyclically) validates."""
    patients = sorted({c.rsplit("_", 1)[0] for c in case_ids})
    folds = []
    for k, test in enumerate(patients):
        val = patients[(k + 1) % len(patients)]
        by_role = {"test": [test], "val": [val], "train": [p for p in patients if p not in (test, val)]}
        folds.append(
            {
                "index": k,
                "patients": by_role,
                **{role: sorted(c for c in case_ids if c.rsplit("_", 1)[0] in ps) for role, ps in by_role.items()},
            }
        )
    return folds


def write_split(
    dataset: str,
    protocol: str,
    case_ids: Sequence[str],
    folds: list[dict[str, object]],
    *,
    leaks_timepoints: bool = False,
    description: str = "",
) -> Path:
    """Writes a split file (used once, by maintainers, to create the committed splits)."""
    path = split_path(dataset, protocol)
    payload = {
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset,
        "protocol": protocol,
        "description": description,
        "leaks_timepoints": leaks_timepoints,
        "case_fingerprint": case_fingerprint(case_ids),
        "case_ids": sorted(case_ids),
        "folds": folds,
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path
