"""How every committed split file was made: the case list it is for and its fold builder.

``python -m msbench.datasets.committed_splits`` rewrites ``datasets/splits/*.json`` from this table. Tests check
the committed files' properties (patient-level, every patient tested once, the ISBI assignments written out by
hand), not that a file equals its own generator's output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ._folds import isbi2015_folds, kfold_folds, rondinella2023_folds
from .splits import SPLITS_DIR, split_payload

ISBI2015_TRAINING_CASE_IDS = tuple(
    f"training{p:02d}_{t:02d}"
    for p, n_timepoints in enumerate((4, 4, 5, 4, 4), start=1)
    for t in range(1, n_timepoints + 1)
)
"""The 21 ISBI 2015 training scans: 5 patients, training03 with 5 time points (the synth-ms phantom writes the same)."""

MSSEG2016_TRAINING_CASE_IDS = tuple(f"center{c}_patient{p:02d}" for c in ("01", "07", "08") for p in range(1, 6))
"""The 15 MSSEG-2016 training patients: Center_01, Center_07 and Center_08 with Patient_01..05 each."""

LESJAK_CASE_IDS = tuple(f"patient{i:02d}" for i in range(1, 31))
"""The 30 patients of 3D-MR-MS (the same ids in its raw, co-registered and MNI layouts)."""

ISBI_DESCRIPTION = (
    "ISBI 2015 training data: 5 folds, leave one patient out; the next patient (cyclic) is the validation patient; "
    "the other three train."
)
RONDINELLA_DESCRIPTION = (
    "Replication of Rondinella et al. 2023 (FC-DenseNet + SA + C-LSTM): fold k tests time point 4 of patient k; "
    "3 scans validate (time point 1 of the three patients after k, cyclic: the paper does not name them); the other "
    "17 scans train, including the test patient's other time points, so time points leak (not patient-level)."
)
KFOLD_SEED = 0


@dataclass(frozen=True)
class CommittedSplit:
    """One committed split file: dataset, protocol, the case ids it is for and how its folds are made."""

    dataset: str
    protocol: str
    case_ids: tuple[str, ...]
    folds: Callable[[tuple[str, ...]], list[dict[str, object]]]
    description: str
    leaks_timepoints: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return SPLITS_DIR / f"{self.dataset}__{self.protocol}.json"

    def text(self) -> str:
        """The file's content as the generator makes it."""
        return split_payload(
            self.dataset,
            self.protocol,
            self.case_ids,
            self.folds(self.case_ids),
            leaks_timepoints=self.leaks_timepoints,
            description=self.description,
            extra=self.extra,
        )


def _kfold(case_ids: tuple[str, ...]) -> list[dict[str, object]]:
    return kfold_folds({c: c for c in case_ids}, k=5, seed=KFOLD_SEED)


def _kfold_description(name: str, n: int) -> str:
    return (
        f"{name}: seeded patient-level 5-fold (seed {KFOLD_SEED}) over the {n} patients; fold i tests one group, "
        f"validates on {max(1, n // 10)} patient(s) of the next group (cyclic), the others train."
    )


COMMITTED_SPLITS = (
    CommittedSplit("isbi2015", "isbi2015", ISBI2015_TRAINING_CASE_IDS, isbi2015_folds, ISBI_DESCRIPTION),
    CommittedSplit("synth-ms", "isbi2015", ISBI2015_TRAINING_CASE_IDS, isbi2015_folds, ISBI_DESCRIPTION),
    CommittedSplit(
        "isbi2015", "rondinella2023", ISBI2015_TRAINING_CASE_IDS, rondinella2023_folds, RONDINELLA_DESCRIPTION, True
    ),
    CommittedSplit(
        "synth-ms", "rondinella2023", ISBI2015_TRAINING_CASE_IDS, rondinella2023_folds, RONDINELLA_DESCRIPTION, True
    ),
    CommittedSplit(
        "msseg2016",
        "kfold5",
        MSSEG2016_TRAINING_CASE_IDS,
        _kfold,
        _kfold_description("MSSEG-2016 training", 15),
        extra={"k": 5, "seed": KFOLD_SEED},
    ),
    CommittedSplit(
        "lesjak-3dms",
        "kfold5",
        LESJAK_CASE_IDS,
        _kfold,
        _kfold_description("3D-MR-MS", 30),
        extra={"k": 5, "seed": KFOLD_SEED},
    ),
)


def write_committed() -> list[Path]:
    """Rewrites every committed split file from its generator (maintainers only)."""
    written = []
    for split in COMMITTED_SPLITS:
        split.path.write_text(split.text())
        written.append(split.path)
    return written


if __name__ == "__main__":
    for path in write_committed():
        print(path)
