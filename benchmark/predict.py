"""``msbench predict``: a model trained in the results store, applied to a user's own scans.

The run's method is rebuilt from its manifest (hyper-parameters, recipe, modalities) through the one door
(:meth:`~msbench.benchmark.fitting.FitSpec.recorded`) and restored from a committed
job's work folder (``Adapter.restore``), never trained again. Each scan is read onto the canonical grid like any
case, so the method's own pre-processing (brain crop, intensity scaling, spacing-aware patches) applies, whatever
the scan's grid, orientation or intensity range; a scan whose voxel size differs from the training cases' median by
more than ``SPACING_RTOL`` is resampled to it first, in memory (:func:`msbench.benchmark.fitting.predict_case`, the
door every job's prediction goes through: networks learned their patches and kernels in voxels of that spacing) and
the prediction resampled back; the mask (and the probability map, where
the method has one) is written on the scan's own grid, in its own orientation, with its affine. With ``--ensemble``
every committed job of the run predicts and the probability maps are averaged (masks by majority vote where a method
has no probability).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from rich.console import Console

from msbench.datasets import Case
from msbench.datasets.nifti import read_image
from msbench.methods import Prediction, Recipe, get_card

from . import manifest as mf
from .evaluate import case_name
from .fitting import FitSpec, predict_case, restore
from .metrics import SUITE_VERSION
from .options import resolve_device
from .store import RunStore, atomic_path, find_run, read_json, read_manifest


@dataclass(frozen=True)
class Scan:
    """One scan to segment: a name for its output files and an image file per modality."""

    name: str
    images: dict[str, Path]


def parse_scans(arguments: list[str], modalities: tuple[str, ...]) -> list[Scan]:
    """``IMAGE`` (the run's only modality) or ``flair=A.nii.gz,t1=B.nii.gz`` per scan; checks every file up front.

    Raises:
        ValueError: A modality is missing or unknown, a file is missing, unreadable, not 3D or holds non-finite
            values; the message names the file.
    """
    if not arguments:
        raise ValueError("give at least one IMAGE (a NIfTI file; modality=file,... for multi-modal runs).")
    scans = []
    for argument in arguments:
        if "=" in argument:
            pairs = [part.split("=", 1) for part in argument.split(",")]
            images = {m.strip(): Path(p.strip()) for m, p in pairs}
        elif len(modalities) == 1:
            images = {modalities[0]: Path(argument)}
        else:
            raise ValueError(
                f"{argument}: the run reads {', '.join(modalities)}; give them as "
                f"{','.join(f'{m}=FILE' for m in modalities)}."
            )
        missing, extra = [m for m in modalities if m not in images], [m for m in images if m not in modalities]
        if missing or extra:
            raise ValueError(
                f"{argument}: the run reads modalities {list(modalities)}; missing {missing}, not used {extra}."
            )
        for path in images.values():
            data, _ = read_image(path)  # exists, reads, 3D (names the file otherwise)
            if not np.isfinite(data).all():
                raise ValueError(f"{path}: holds non-finite values (NaN or inf); fix or mask them before predicting.")
        first = images[modalities[0]]
        scans.append(Scan(case_name(first), images))
    names = [s.name for s in scans]
    if len(set(names)) != len(names):
        raise ValueError(f"two scans share a file name ({', '.join(sorted(names))}); their outputs would collide.")
    return scans


def pick_jobs(store: RunStore, fold: int | None, ensemble: bool) -> list[tuple[str, dict[str, Any]]]:
    """The committed jobs that predict: one fold's (its first seed), every job (``ensemble``) or the only one."""
    jobs = [(j, r) for j, r in store.committed_jobs() if r.get("status") == "ok"]
    if not jobs:
        raise ValueError(f"run {store.run_id} has no finished job to predict with; run 'msbench run' first.")
    if ensemble:
        return jobs
    folds = sorted({r["fold"] for _, r in jobs})
    if fold is None:
        if len(folds) > 1:
            raise ValueError(f"run {store.run_id} has models for folds {folds}; choose one with --fold, or --ensemble.")
        fold = folds[0]
    chosen = [(j, r) for j, r in jobs if r["fold"] == fold]
    if not chosen:
        raise ValueError(f"run {store.run_id} has no finished job for --fold {fold}; it has folds {folds}.")
    return chosen[:1]


def predict_scans(
    results: Path,
    run: str,
    images: list[str],
    out: Path,
    *,
    fold: int | None = None,
    ensemble: bool = False,
    device: str = "auto",
) -> list[Path]:
    """Segments the scans with the run's model(s); returns the files written into ``out``.

    Everything is checked (run, jobs, every input file) before anything is written.
    """
    store = find_run(results, run)
    manifest = read_manifest(store.manifest_path)
    card = get_card(manifest["method"])
    jobs = pick_jobs(store, fold, ensemble)
    modalities = tuple(manifest["modalities"])
    scans = parse_scans(images, modalities)
    device = resolve_device(device)
    code = mf.code_hash(card.adapter, SUITE_VERSION)
    stale = [j for j, r in jobs if r.get("code_hash") != code]
    adapters = []
    for job_id, record in jobs:
        spec = FitSpec.recorded(
            card,
            manifest["budget"],
            manifest["hparams"],
            Recipe(**manifest["recipe"]),
            workdir=store.job_dir(job_id) / "work",
            seed=int(record["seed"]),
            device=device,
            modalities=modalities,
            reference=manifest["reference"],
        )
        adapters.append(restore(spec, read_json(store.job_dir(job_id) / "fit.json")))
    spacing = _recorded_spacing(jobs)
    written: list[Path] = []
    for scan in scans:
        case = Case(case_id=scan.name, patient_id=scan.name, timepoint=None, images=scan.images, masks={})
        mask, probability = _combine([predict_case(a, case, spacing, modalities) for a in adapters])
        written.append(_write(case, mask.astype(np.uint8), out / f"{scan.name}_mask.nii.gz"))
        if probability is not None:
            written.append(_write(case, probability.astype(np.float32), out / f"{scan.name}_probability.nii.gz"))
    if stale:
        Console(stderr=True).print(
            f"note: jobs {', '.join(stale)} were trained by other code (code hash differs from {code}); their "
            "weights loaded, but rerun the run to predict with models of this code."
        )
    return written


def _recorded_spacing(jobs: list[tuple[str, dict[str, Any]]]) -> tuple[float, ...] | None:
    """The training spacing the jobs recorded (``train_spacing_mm``; None for jobs committed before it was)."""
    spacings = [tuple(r["train_spacing_mm"]) for _, r in jobs if r.get("train_spacing_mm")]
    return tuple(float(z) for z in np.median(spacings, axis=0)) if spacings else None


def _combine(predictions: list[Prediction]) -> tuple[np.ndarray, np.ndarray | None]:
    if len(predictions) == 1:
        return predictions[0].mask, predictions[0].probability
    probabilities = [p.probability for p in predictions if p.probability is not None]
    if len(probabilities) == len(predictions):
        probability = np.mean(probabilities, axis=0)
        return probability >= 0.5, probability
    votes = np.mean([p.mask for p in predictions], axis=0)
    return votes > 0.5, None


def _write(case: Case, data: np.ndarray, path: Path) -> Path:
    with atomic_path(path) as tmp:
        nib.save(case.to_nifti(data), str(tmp))
    return path
