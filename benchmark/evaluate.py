"""File- and folder-level evaluation of NIfTI masks: the Python API behind ``msbench evaluate``.

PRED and REF are two NIfTI files, or two folders whose NIfTI files are matched by file name. Spacing
comes from the reference header; the metric code is the same ``evaluate_case`` the runner uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from msbench.datasets.nifti import AFFINE_ATOL_MM, NIFTI_SUFFIXES, read_mask

from .metrics import (
    CSV_COLUMNS,
    METRIC_SPECS,
    MetricParams,
    evaluate_case_with_lesions,
    provenance_columns,
)


def case_name(path: Path) -> str:
    """File name without ``.nii``/``.nii.gz``."""
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def load_mask(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """Read a binary NIfTI mask with msbench's one mask reader (:func:`msbench.datasets.nifti.read_mask`).

    The array comes on the canonical RAS+ grid (axes permuted and flipped, never resampled), as msbench's runner
    scores it: the axial slice axis is the last one whatever the file's orientation, and two files of one grid
    stored in different orientations compare equal.

    Returns:
        (C-contiguous boolean array in canonical voxel order (i, j, k), spacing in mm per axis, the canonical
        grid's 4x4 affine).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file cannot be read as NIfTI, is not 3D, holds NaN or values other than 0 and 1.
    """
    return read_mask(path, canonical=True)


def match_files(pred: Path, ref: Path) -> list[tuple[str, Path, Path]]:
    """Pair PRED and REF: two files, or two folders matched by NIfTI file name.

    Raises:
        FileNotFoundError: A path does not exist.
        ValueError: One path is a file and the other a folder, a folder holds no NIfTI file, or a file
            is present in only one of the folders.
    """
    for path in (pred, ref):
        if not path.exists():
            raise FileNotFoundError(f"Not found: {path}")
    if pred.is_file() and ref.is_file():
        return [(case_name(pred), pred, ref)]
    if pred.is_dir() != ref.is_dir():
        raise ValueError(f"PRED {pred} and REF {ref} must both be NIfTI files or both be folders.")
    pred_files, ref_files = _nifti_files(pred), _nifti_files(ref)
    only_pred, only_ref = sorted(set(pred_files) - set(ref_files)), sorted(set(ref_files) - set(pred_files))
    if only_pred or only_ref:
        lines = [f"{pred / n} has no reference in {ref}" for n in only_pred]
        lines += [f"{ref / n} has no prediction in {pred}" for n in only_ref]
        raise ValueError("Folders do not match by file name: " + "; ".join(lines))
    return [(case_name(pred / n), pred / n, ref / n) for n in sorted(pred_files)]


def _nifti_files(folder: Path) -> list[str]:
    names = [p.name for p in folder.iterdir() if p.is_file() and p.name.endswith(NIFTI_SUFFIXES)]
    if not names:
        raise ValueError(f"No NIfTI file (*.nii, *.nii.gz) in {folder}.")
    return names


def evaluate_pair(
    pred_path: Path, ref_path: Path, params: MetricParams, domain_path: Path | None = None
) -> tuple[dict[str, float | int], list[dict[str, float | int | str | bool]]]:
    """Score one predicted file against one reference file (spacing from the reference header).

    ``domain_path`` is an optional brain mask on the reference grid: nDSC's N and the balanced slice
    negatives (see :func:`msbench.benchmark.metrics.evaluate_case`).
    """
    pred, _, pred_affine = load_mask(pred_path)
    ref, spacing, ref_affine = load_mask(ref_path)
    if pred.shape != ref.shape:
        raise ValueError(
            f"Shape mismatch: {pred_path} has {pred.shape}, {ref_path} has {ref.shape}; "
            "resample the prediction onto the reference grid."
        )
    if not np.allclose(pred_affine, ref_affine, rtol=0.0, atol=AFFINE_ATOL_MM):
        raise ValueError(
            f"Affine mismatch between {pred_path} and {ref_path} (max difference "
            f"{np.abs(pred_affine - ref_affine).max():.4g}): the masks are not on the same grid; "
            "resample the prediction onto the reference grid."
        )
    domain = _load_domain(domain_path, ref.shape, ref_affine) if domain_path is not None else None
    return evaluate_case_with_lesions(pred, ref, spacing, params=params, domain=domain)


def _load_domain(path: Path, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """Read a brain mask and check that it lies on the reference grid."""
    domain, _, domain_affine = load_mask(path)
    if domain.shape != shape or not np.allclose(domain_affine, affine, rtol=0.0, atol=AFFINE_ATOL_MM):
        raise ValueError(
            f"Brain mask {path} (shape {domain.shape}) is not on the reference grid (shape {shape}): "
            "pass the brain mask of the same case, on the reference grid."
        )
    if not domain.any():
        raise ValueError(f"Brain mask {path} is empty: pass the case's brain mask, or leave --domain out.")
    return domain


def domain_paths(domain: Path | None, pairs: list[tuple[str, Path, Path]], files: bool) -> list[Path | None]:
    """Brain mask per pair: DOMAIN itself for a file pair, else the file of the same name in the DOMAIN folder.

    Args:
        domain: Brain mask file or folder, or None (whole volume).
        pairs: The pairs from :func:`match_files`.
        files: PRED and REF are two files (one pair), not folders.

    Raises:
        FileNotFoundError: DOMAIN, or a case's file in the DOMAIN folder, does not exist.
        ValueError: DOMAIN is a file while PRED and REF are folders, or a folder for a file pair.
    """
    if domain is None:
        return [None] * len(pairs)
    if not domain.exists():
        raise FileNotFoundError(f"--domain {domain} not found.")
    if files != domain.is_file():
        kind = "files" if files else "folders"
        raise ValueError(
            f"--domain {domain} must be a {'NIfTI file' if files else 'folder of brain masks'} when PRED and REF "
            f"are {kind}."
        )
    if files:
        return [domain]
    missing = [str(domain / p.name) for _, p, _ in pairs if not (domain / p.name).is_file()]
    if missing:
        raise FileNotFoundError(f"--domain folder {domain} has no brain mask for: {', '.join(missing)}")
    return [domain / p.name for _, p, _ in pairs]


def evaluate_paths(
    pred: str | Path,
    ref: str | Path,
    *,
    params: MetricParams | None = None,
    progress: bool = False,
    domain: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a predicted file or folder against a reference file or folder.

    ``domain`` is an optional brain mask file (for a file pair) or folder of brain masks matched by file
    name: it sets nDSC's N and the balanced slice negatives; without it the whole volume is the domain.

    Returns:
        (cases, lesions). ``cases`` has ``case``, then the ``CSV_COLUMNS`` in order, then every other
        metric key, then :func:`provenance_columns` (suite version and every parameter); ``lesions``
        has ``case`` then the per-lesion rows of :func:`evaluate_case_with_lesions`.
    """
    from tqdm.auto import tqdm

    params = params or MetricParams()
    provenance = provenance_columns(params)
    pairs = match_files(Path(pred), Path(ref))
    domains = domain_paths(None if domain is None else Path(domain), pairs, files=Path(pred).is_file())
    rows, lesion_rows = [], []
    jobs = [(*pair, d) for pair, d in zip(pairs, domains, strict=True)]
    for name, pred_path, ref_path, domain_path in tqdm(jobs, desc="evaluate", unit="case", disable=not progress):
        record, lesions = evaluate_pair(pred_path, ref_path, params, domain_path)
        rows.append({"case": name, **record, **provenance})
        lesion_rows += [{"case": name, **row} for row in lesions]
    cases = pd.DataFrame(rows)
    rest = [k for k in METRIC_SPECS if k not in CSV_COLUMNS]
    cases = cases[["case", *CSV_COLUMNS, *rest, *provenance]]
    return cases, pd.DataFrame(lesion_rows, columns=_LESION_COLUMNS)


_LESION_COLUMNS = [
    "case",
    "family",
    "source",
    "lesion_id",
    "volume_vox",
    "volume_mm3",
    "centroid_i",
    "centroid_j",
    "centroid_k",
    "matched",
    "overlap_vox",
    "overlap_fraction",
]


def evaluate_to_csv(
    pred: str | Path,
    ref: str | Path,
    out_csv: str | Path,
    *,
    lesions_out: str | Path | None = None,
    connectivity: int = MetricParams.connectivity,
    ndsc_reference_load: float = MetricParams.ndsc_reference_load,
    domain: str | Path | None = None,
) -> pd.DataFrame:
    """Run :func:`evaluate_paths` and write the per-case (and optionally per-lesion) CSV.

    Args:
        pred: Predicted NIfTI file or folder.
        ref: Reference NIfTI file or folder, matched by file name.
        out_csv: Per-case table to write (parent folders are created).
        lesions_out: Per-lesion table to write, if given.
        connectivity: Lesion connectivity of the ISBI family (6, 18 or 26; default that of ``MetricParams``).
        ndsc_reference_load: r of the normalised Dice (default that of ``MetricParams``, as in Shifts).
        domain: Brain mask file or folder (matched by file name); None scores the whole volume.

    Returns:
        The per-case table as written.

    Raises:
        ValueError: An invalid parameter, or the masks cannot be scored (see :func:`evaluate_pair`).
    """
    params = MetricParams(connectivity=connectivity, ndsc_reference_load=ndsc_reference_load)
    cases, lesions = evaluate_paths(pred, ref, params=params, progress=True, domain=domain)
    for table, path in ((cases, out_csv), (lesions, lesions_out)):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(path, index=False)
    return cases
