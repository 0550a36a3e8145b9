"""What ``msbench datasets list`` and ``msbench datasets info NAME`` show: registered datasets and per-case facts.

Lesions are counted as connected components with 18-connectivity, the metric suite's default for the ISBI lesion
scores (``MetricParams.connectivity``), so the counts here match ``n_lesions_ref`` in results. The realism figures
of ``shared/spec/phantom.md`` use 26-connectivity; pass ``connectivity=26`` to compare with them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, TypeVar, cast

import numpy as np
import pandas as pd

from .case import Case
from .registry import DatasetNotFoundError, DatasetSpec, get_dataset, list_datasets
from .synth_ms import default_root, generated_roots

T = TypeVar("T")

MASKS_ONLY_LOADERS = {"lesjak-3dms": "msbench.datasets.lesjak:load_masks_only"}
"""Datasets whose samples may hold masks without images, and the loader that lists their masks alone."""

INFO_COLUMNS = (
    "case",
    "patient",
    "timepoint",
    "modalities",
    "shape",
    "spacing_mm",
    "reference",
    "n_lesions",
    "lesion_load_ml",
)


def describe_datasets() -> pd.DataFrame:
    """One row per registered dataset: name, title, env var, protocols, references, root status, citation."""
    rows = []
    for name in list_datasets():
        spec = get_dataset(name)
        rows.append(
            {
                "name": spec.name,
                "title": spec.title,
                "env_var": spec.env_var,
                "protocols": ", ".join(spec.protocols) or "(prediction only)",
                "references": ", ".join(spec.references) or "(none)",
                "root_status": root_status(spec),
                "citation": spec.citation,
            }
        )
    return pd.DataFrame(
        rows, columns=["name", "title", "env_var", "protocols", "references", "root_status", "citation"]
    )


def root_status(spec: DatasetSpec) -> str:
    """Where the data root is and whether it exists, without listing cases."""
    value = os.environ.get(spec.env_var)
    if value:
        path = Path(value).expanduser()
        return f"${spec.env_var}={path} ({'found' if path.is_dir() else 'missing'})"
    if spec.prepare is not None:
        copies = ", ".join(p.name for p in generated_roots()) or "none generated yet"
        return f"generated on first use into {default_root().parent} (cached: {copies})"
    return f"${spec.env_var} not set"


def dataset_info(
    name: str,
    root: Path | str | None = None,
    *,
    connectivity: int = 18,
    masks_only: bool = False,
    progress: bool = False,
    patient_regex: str | None = None,
) -> pd.DataFrame:
    """One row per case: ids, modalities, grid, and the primary reference's lesion count and load.

    Args:
        name: Registered dataset name.
        root: Data root; default: the dataset's environment variable (synth-ms: its cache, if generated).
        connectivity: Lesion connectivity for the count (6, 18 or 26); 18 matches the metric suite.
        masks_only: List the reference masks alone (datasets in ``MASKS_ONLY_LOADERS``, e.g. the open_ms_data sample
            of 3D-MR-MS, which ships few images).
        progress: Show a progress bar while masks are read.
        patient_regex: Which cases are one patient's (``nnunet-raw``; see :meth:`DatasetSpec.load_cases`).

    Returns:
        A DataFrame with the columns of ``INFO_COLUMNS``; ``n_lesions`` and ``lesion_load_ml`` are missing (NA) for
        datasets without references.
    """
    import cc3d

    if connectivity not in (6, 18, 26):
        raise ValueError(f"connectivity={connectivity!r}: expected 6, 18 or 26.")
    spec = get_dataset(name)
    copies = _copies(spec, root)
    cases = [(label, c) for label, r in copies for c in _cases(spec, r, masks_only, patient_regex)]
    reference = spec.references[0] if spec.references else None
    rows = []
    for label, case in _progress(cases, progress, f"reading {name} masks"):
        row: dict[str, object] = {
            "copy": label,
            "case": case.case_id,
            "patient": case.patient_id,
            "timepoint": case.timepoint,
            "modalities": ",".join(case.images),
            "shape": case.shape,
            "spacing_mm": tuple(round(s, 4) for s in case.spacing_mm),
            "reference": reference,
            "n_lesions": pd.NA,
            "lesion_load_ml": np.nan,
        }
        if reference is not None:
            mask = case.load_mask(reference)
            checked = cast(Literal[6, 18, 26], connectivity)  # checked above; cc3d's stubs take only the literals
            row["n_lesions"] = int(cc3d.connected_components(mask, connectivity=checked, return_N=True)[1])
            row["lesion_load_ml"] = float(mask.sum()) * float(np.prod(case.spacing_mm)) / 1000.0
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["copy", *INFO_COLUMNS])
    frame["n_lesions"] = frame["n_lesions"].astype("Int64")
    return frame if len(copies) > 1 else frame.drop(columns="copy")


def _cases(spec: DatasetSpec, root: Path | str | None, masks_only: bool, patient_regex: str | None) -> list[Case]:
    resolved = spec.resolve_root(root)
    if not masks_only:
        return spec.load_cases(resolved, patient_regex=patient_regex)
    if spec.name not in MASKS_ONLY_LOADERS:
        raise ValueError(
            f"dataset {spec.name!r} has no masks-only listing; masks_only works for {sorted(MASKS_ONLY_LOADERS)}."
        )
    module, attr = MASKS_ONLY_LOADERS[spec.name].split(":")
    return getattr(importlib.import_module(module), attr)(resolved)


def _copies(spec: DatasetSpec, root: Path | str | None) -> list[tuple[str, Path | str | None]]:
    """The roots to list: the given one (or the variable's), else every generated copy of a generated dataset."""
    if root is not None or spec.prepare is None or os.environ.get(spec.env_var):
        return [("", root)]

    copies = generated_roots()
    if not copies:
        raise DatasetNotFoundError(
            f"dataset {spec.name!r} is not generated yet (looked in {default_root().parent}). It is generated on "
            f"first use by a benchmark run on {spec.name} (or 'msbench datasets synth'); or pass --root DIR."
        )
    return [(p.name, p) for p in copies]


def _progress(items: list[T], enabled: bool, label: str) -> Iterable[T]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=label, unit="case")
