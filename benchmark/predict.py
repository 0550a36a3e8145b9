"""``msbench predict``: a model trained in the results store, applied to a user's own scans.

The run's method is rebuilt from its manifest (hyper-parameters, recipe, modalities) and restored from a committed
job's work folder (``Adapter.restore``), never trained again. Each scan is read onto the canonical grid like any
case, so the method's own pre-processing (brain crop, intensity scaling, spacing-aware patches) applies, whatever
the scan's grid, orientation or intensity range; a scan whose voxel size differs from the training cases' median by
more than ``SPACING_RTOL`` is resampled to it first (:func:`predict_on_training_grid`: networks learned their patches
and kernels in voxels of that spacing) and the prediction resampled back; the mask (and the probability map, where
the method has one) is written on the scan's own grid, in its own orientation, with its affine. With ``--ensemble``
every committed job of the run predicts and the probability maps are averaged (masks by majority vote where a method
has no probability).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from msbench.datasets import Case
from msbench.methods import FitContext, Prediction, Recipe, build_adapter, get_card

from . import manifest as mf
from .evaluate import case_name
from .metrics import SUITE_VERSION
from .options import resolve_device
from .store import RunStore, atomic_path, find_run, read_json, read_manifest

SPACING_RTOL = 0.1
"""Relative difference of voxel size (any axis) from the training spacing above which a scan is resampled."""


def training_spacing(cases: Sequence[Case]) -> tuple[float, float, float]:
    """The median voxel size (mm, canonical axis order) of the cases a model was trained on."""
    return tuple(float(z) for z in np.median([c.spacing_mm for c in cases], axis=0))  # type: ignore[return-value]


def needs_resampling(case: Case, spacing_mm: Sequence[float] | None) -> bool:
    """Whether ``case``'s voxel size differs from ``spacing_mm`` by more than ``SPACING_RTOL`` on some axis."""
    if spacing_mm is None:
        return False
    return any(abs(a - b) > SPACING_RTOL * b for a, b in zip(case.spacing_mm, spacing_mm, strict=True))


def predict_on_training_grid(
    predict: Callable[[Case], Prediction], case: Case, spacing_mm: Sequence[float] | None, modalities: Sequence[str]
) -> Prediction:
    """``predict(case)``, on the training spacing when the case's differs; the prediction is on the case's own grid.

    The one place where ``msbench predict`` and cross-dataset scoring bring a scan to the model.

    Images are resampled linearly (their brain mask, where the dataset ships one, by nearest neighbour) onto a grid of
    the same field of view; the mask comes back by nearest neighbour, the probability map linearly, both inside the
    case's brain (``Case.load_brain``).
    """
    if not needs_resampling(case, spacing_mm):
        return predict(case)
    import nibabel as nib

    from msbench.datasets.preprocessing import resample_to_shape, shape_for_spacing

    target = tuple(float(z) for z in spacing_mm)  # type: ignore[union-attr]
    shape = shape_for_spacing(case.shape, case.spacing_mm, target)
    affine = case.affine @ np.diag([*(t / s for s, t in zip(case.spacing_mm, target, strict=True)), 1.0])
    with tempfile.TemporaryDirectory(prefix="msbench-resampled-") as tmp:
        images = {}
        for modality in modalities:
            path = Path(tmp) / f"{modality}.nii.gz"
            data = resample_to_shape(case.load_image(modality), shape, order=1)
            nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(path))
            images[modality] = path
        meta = dict(case.meta)
        if meta.get("brain_mask"):
            path = Path(tmp) / "brain.nii.gz"
            brain = resample_to_shape(case.load_brain(modalities), shape, order=0)
            nib.save(nib.Nifti1Image(brain.astype(np.uint8), affine), str(path))
            meta["brain_mask"] = str(path)
        resampled = replace(case, images=images, masks={}, meta=meta)
        prediction = predict(resampled)
    brain = case.load_brain(modalities)  # interpolation never calls a lesion outside the scan's own brain
    mask = resample_to_shape(np.asarray(prediction.mask, dtype=bool), case.shape, order=0) & brain
    probability = prediction.probability
    if probability is not None:
        probability = np.clip(resample_to_shape(probability.astype(np.float32), case.shape, order=1), 0.0, 1.0)
        probability = np.where(brain, probability, 0.0).astype(np.float32)
    return replace(prediction, mask=mask, probability=probability)


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
    from msbench.datasets.nifti import read_image

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
        recipe = Recipe(**manifest["recipe"])
        context = FitContext(
            workdir=store.job_dir(job_id) / "work",
            seed=int(record["seed"]),
            device=device,
            budget=manifest["budget"],
            recipe=recipe,
            hparams=manifest["hparams"],
            modalities=modalities,
            reference=manifest["reference"],
            progress=False,
        )
        adapter = build_adapter(card, context)
        try:
            adapter.restore(read_json(store.job_dir(job_id) / "fit.json"))
        except NotImplementedError as err:
            raise ValueError(f"{err} It has no model to apply to new scans.") from None
        adapters.append(adapter)
    spacing = _recorded_spacing(jobs)
    written: list[Path] = []
    for scan in scans:
        case = Case(case_id=scan.name, patient_id=scan.name, timepoint=None, images=scan.images, masks={})
        mask, probability = _combine([predict_on_training_grid(a.predict, case, spacing, modalities) for a in adapters])
        written.append(_write(case, mask.astype(np.uint8), out / f"{scan.name}_mask.nii.gz"))
        if probability is not None:
            written.append(_write(case, probability.astype(np.float32), out / f"{scan.name}_probability.nii.gz"))
    if stale:
        from rich.console import Console

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
    if all(p.probability is not None for p in predictions):
        probability = np.mean([p.probability for p in predictions], axis=0)
        return probability >= 0.5, probability
    votes = np.mean([p.mask for p in predictions], axis=0)
    return votes > 0.5, None


def _write(case: Case, data: np.ndarray, path: Path) -> Path:
    import nibabel as nib

    with atomic_path(path) as tmp:
        nib.save(case.to_nifti(data), str(tmp))
    return path
