"""Fold builders behind the split files: pure functions of case ids (and patients), deterministic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any  # folds are JSON payloads of a split file

import numpy as np


def isbi_patient(case_id: str) -> str:
    """``training03_05`` -> ``training03``."""
    return case_id.rsplit("_", 1)[0]


def isbi2015_folds(case_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Leave-one-patient-out over the 5 training patients; the next patient (cyclically) validates."""
    patients = sorted({isbi_patient(c) for c in case_ids})
    folds = []
    for k, test in enumerate(patients):
        val = patients[(k + 1) % len(patients)]
        by_role = {"test": [test], "val": [val], "train": [p for p in patients if p not in (test, val)]}
        folds.append(
            {
                "index": k,
                "patients": by_role,
                **{role: sorted(c for c in case_ids if isbi_patient(c) in ps) for role, ps in by_role.items()},
            }
        )
    return folds


RONDINELLA_TEST_TIMEPOINT = "04"
RONDINELLA_VAL_TIMEPOINT = "01"


def rondinella2023_folds(case_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Rondinella et al. 2023's scan-level folds on the 21 ISBI 2015 training scans: 17 train, 3 validate, 1 tests.

    Fold k tests time point 4 of patient k (the paper's folds 1-5). The paper does not say which 3 scans validate;
    here they are time point 1 of the three patients that follow patient k cyclically, so every fold validates on
    three different patients and the test patient's other time points train (as in Hashemi et al., whom the paper
    follows: "part of patient's scans were employed during training"). The test patient's other scans are in
    training, hence ``leaks_timepoints``.
    """
    patients = sorted({isbi_patient(c) for c in case_ids})
    ids = set(case_ids)
    folds = []
    for k, patient in enumerate(patients):
        test = f"{patient}_{RONDINELLA_TEST_TIMEPOINT}"
        val = [f"{patients[(k + j) % len(patients)]}_{RONDINELLA_VAL_TIMEPOINT}" for j in (1, 2, 3)]
        missing = [c for c in (test, *val) if c not in ids]
        if missing:
            raise ValueError(f"rondinella2023 folds need cases {missing}, which the case list does not have.")
        train = sorted(ids - {test, *val})
        folds.append({"index": k, "test": [test], "val": sorted(val), "train": train})
    return folds


def default_n_val(n_patients: int) -> int:
    """Validation patients per fold when not given: one per ten patients, at least one."""
    return max(1, n_patients // 10)


def kfold_folds(
    patient_of: Mapping[str, str], k: int = 5, seed: int = 0, n_val: int | None = None
) -> list[dict[str, Any]]:
    """Seeded patient-level K-fold with validation patients inside each fold.

    Patients are shuffled with ``numpy.random.default_rng(seed)`` and cut into ``k`` near-equal groups; fold ``i``
    tests group ``i``, validates on the first ``n_val`` patients of group ``i + 1`` (cyclically) and trains on the rest.

    Args:
        patient_of: Case id -> patient id.
        k: Number of folds (2 <= k <= number of patients, leaving training patients in each fold).
        seed: Shuffle seed.
        n_val: Validation patients per fold; default :func:`default_n_val`.
    """
    patients = sorted(set(patient_of.values()))
    n_val = default_n_val(len(patients)) if n_val is None else n_val
    if not 2 <= k <= len(patients):
        raise ValueError(f"k={k} folds for {len(patients)} patients: expected 2 <= k <= {len(patients)}.")
    smallest, largest = len(patients) // k, -(-len(patients) // k)
    if not 1 <= n_val <= smallest:
        raise ValueError(f"n_val={n_val} validation patients: expected 1..{smallest} (the smallest fold's size).")
    if largest + n_val >= len(patients):
        raise ValueError(f"k={k} folds of {len(patients)} patients leave no training patient; use more patients.")
    order = [patients[i] for i in np.random.default_rng(seed).permutation(len(patients))]
    groups = [list(g) for g in np.array_split(np.array(order, dtype=object), k)]
    folds = []
    for i in range(k):
        test = sorted(groups[i])
        val = sorted(groups[(i + 1) % k][:n_val])
        train = sorted(p for p in patients if p not in test and p not in val)
        by_role = {"test": test, "val": val, "train": train}
        folds.append(
            {
                "index": i,
                "patients": by_role,
                **{role: sorted(c for c, p in patient_of.items() if p in ps) for role, ps in by_role.items()},
            }
        )
    return folds
