"""Qualitative overlays: FLAIR slices of one case with the reference and a prediction (read with nibabel only).

The FLAIR and reference files come from the run's dataset (the manifest's ``dataset`` and ``data_root``); the
prediction from the job folder (``predictions/<case>.nii.gz``, written on the grid of the case's input files). All
three are turned to the closest canonical (RAS) orientation before slicing, so the views are axial, coronal and
sagittal whatever the files' orientation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from msbench.datasets import get_dataset

from .plots import Figure, plt

VIEWS = (("axial", 2), ("coronal", 1), ("sagittal", 0))
FP_RGBA = (1.0, 0.15, 0.1, 0.75)
FN_RGBA = (0.1, 0.45, 1.0, 0.75)


@dataclass(frozen=True)
class CaseVolumes:
    """One case's FLAIR, reference and prediction on one canonical grid."""

    flair: np.ndarray
    reference: np.ndarray
    prediction: np.ndarray


def _canonical(path: Path) -> np.ndarray:
    import nibabel as nib

    return np.asanyarray(nib.as_closest_canonical(nib.load(str(path))).dataobj)


def case_files(manifest: dict[str, Any], case_id: str, reference: str) -> tuple[Path, Path]:
    """The FLAIR and reference mask files of ``case_id`` in the run's dataset.

    Raises:
        FileNotFoundError: The dataset folder the run read is gone, or the case or reference is not in it.
    """
    root = Path(manifest.get("data_root") or "")
    if not root.is_dir():
        raise FileNotFoundError(
            f"the run read {manifest.get('dataset')} from {root}, which is gone; overlays need the dataset's images "
            "(regenerate or mount it at that path)."
        )
    cases = {
        c.case_id: c
        for c in get_dataset(manifest["dataset"]).load_cases(root, patient_regex=manifest.get("patient_regex"))
    }
    if case_id not in cases:
        raise FileNotFoundError(f"case {case_id} is not in {root} any more.")
    case = cases[case_id]
    if reference not in case.masks or "flair" not in case.images:
        raise FileNotFoundError(f"case {case_id} in {root} has no FLAIR or no {reference!r} mask.")
    return Path(case.images["flair"]), Path(case.masks[reference])


def prediction_file(results: Path, run_id: str, job_id: str, case_id: str) -> Path:
    """Where a job saved its prediction of ``case_id``."""
    return Path(results) / "runs" / run_id / "jobs" / job_id / "predictions" / f"{case_id}.nii.gz"


def load_case(flair: Path, reference: Path, prediction: Path) -> CaseVolumes:
    """Reads the three files; refuses a prediction on another grid than the FLAIR.

    Raises:
        FileNotFoundError: The prediction was not saved (the job ran without saving predictions, or was deleted).
        ValueError: The three volumes differ in shape.
    """
    if not prediction.is_file():
        raise FileNotFoundError(f"no saved prediction {prediction}; rerun the job to save it.")
    volumes = CaseVolumes(_canonical(flair).astype(np.float32), _canonical(reference) > 0, _canonical(prediction) > 0)
    shapes = {volumes.flair.shape, volumes.reference.shape, volumes.prediction.shape}
    if len(shapes) != 1:
        raise ValueError(f"{flair}, {reference} and {prediction} have different shapes {sorted(shapes)}.")
    return volumes


def best_slices(reference: np.ndarray, prediction: np.ndarray) -> dict[str, int]:
    """Per view, the slice with the most reference lesion (else the most predicted lesion, else the middle)."""
    picked = {}
    for name, axis in VIEWS:
        other = tuple(a for a in range(3) if a != axis)
        for mask in (reference, prediction):
            counts = mask.sum(axis=other)
            if counts.any():
                picked[name] = int(np.argmax(counts))
                break
        else:
            picked[name] = reference.shape[axis] // 2
    return picked


def _view(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    return np.rot90(np.take(volume, index, axis=axis))


def overlay_figure(panels: list[tuple[str, CaseVolumes]], slices: dict[str, int]) -> Figure:
    """One row per method (``(label, volumes)``), one column per view (axial, coronal, sagittal).

    FLAIR in grey, false positives in red, false negatives in blue, the reference outlined in green and the
    prediction in yellow.
    """
    fig, axes = plt.subplots(len(panels), 3, figsize=(9, 3.1 * len(panels)), dpi=100, squeeze=False)
    for row, (label, vols) in enumerate(panels):
        low, high = np.percentile(vols.flair[vols.flair > 0], (1, 99.5)) if (vols.flair > 0).any() else (0, 1)
        for col, (name, axis) in enumerate(VIEWS):
            ax = axes[row, col]
            index = slices[name]
            ref, pred = _view(vols.reference, axis, index), _view(vols.prediction, axis, index)
            ax.imshow(_view(vols.flair, axis, index), cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            colour = np.zeros((*ref.shape, 4))
            colour[pred & ~ref] = FP_RGBA
            colour[ref & ~pred] = FN_RGBA
            ax.imshow(colour, interpolation="nearest")
            for mask, tint in ((ref, "lime"), (pred, "yellow")):
                if mask.any() and not mask.all():
                    ax.contour(mask.astype(float), levels=[0.5], colors=tint, linewidths=0.8)
            ax.set_axis_off()
            ax.set_title(f"{label} · {name} {index}", fontsize=8)
    legend = "green: reference outline · yellow: prediction outline · red: false positive · blue: false negative"
    fig.text(0.5, 0.005, legend, ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
