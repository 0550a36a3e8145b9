"""One job: fit, predict and score one (method, fold, seed) inside the job's ``.partial-`` folder.

A job never touches another job's files and never writes run-level tables; the runner commits its folder by one
rename when it returns. Its record (``job.json``) carries its own provenance: commit, code hash, library versions,
device and thread count, timings, and whether it resumed from a checkpoint left by an interrupted attempt.

A cross-dataset run (``JobInputs.shifted``) also scores every scan of a second data set with the same model: those
rows say ``domain`` = ``shifted`` and name their ``dataset``; the fold's own test patients say ``in-domain``. Every
scan reaches the model through the one door (:mod:`msbench.benchmark.fitting`), as in ``msbench predict``: the job
keeps the records and files; the door fits, predicts and scores.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from msbench.datasets import Case, Split
from msbench.methods import FitContext, MethodCard, Prediction
from msbench.methods.adapter import HISTORY_CSV

from . import manifest as mf
from .fitting import FitSpec, Overrides, fit, predict_case, score_case, training_spacing
from .metrics import SUITE_VERSION, MetricParams, provenance_columns
from .profiling import profile_job_adapter
from .store import JOB_RECORD, atomic_path, read_table, write_csv, write_json


@dataclass(frozen=True)
class Job:
    """One unit of work of a run; its id is stable for the run's config hash (the run id holds that hash).

    Attributes:
        run_id: The run (method, dataset, protocol, budget, config hash).
        method: Registered method name.
        fold: Outer fold index of the protocol.
        seed: Seed of the fit.
        code_hash: Hash of the code the job runs (method package, engine, data pre-processing, suite version).
    """

    run_id: str
    method: str
    fold: int
    seed: int
    code_hash: str

    @property
    def job_id(self) -> str:
        return f"fold{self.fold}-seed{self.seed}"


@dataclass(frozen=True)
class JobInputs:
    """What every job of a run shares: the cases, the split, the device and the fit settings.

    ``overrides`` (tuned parameters, ``--batch-size``) travel beside the card: the door applies them to each fit.
    """

    cases: list[Case]
    split: Split
    device: str
    budget: str
    modalities: tuple[str, ...]
    reference: str
    metric_params: MetricParams
    progress: bool
    dataset: str = ""
    shifted: ShiftedInputs | None = None
    overrides: Overrides = field(default_factory=Overrides)


IN_DOMAIN = "in-domain"
SHIFTED = "shifted"


@dataclass(frozen=True)
class ShiftedInputs:
    """The second data set of a cross-dataset run: every one of its scans is scored, none is trained on."""

    dataset: str
    cases: list[Case]


EPOCH_LOG = HISTORY_CSV
"""The per-epoch log a fit writes under its workdir: the engine's, and nnunet2d's trainer's (in its output folder)."""


def epochs_done(workdir: Path) -> int:
    """Epochs an interrupted attempt completed (rows of the per-epoch logs under ``workdir``)."""
    log = find_epoch_log(workdir)
    return 0 if log is None else len(read_table(log))


def find_epoch_log(workdir: Path) -> Path | None:
    """The longest per-epoch log under ``workdir`` (None before the first epoch ends)."""
    return max(workdir.rglob(EPOCH_LOG), key=lambda path: len(epoch_log(path)), default=None)


def epoch_log(path: Path) -> list[float]:
    """Seconds of each epoch in a per-epoch log (NaN where a row has none); empty when it is gone or mid-write."""
    try:
        table = read_table(path)
    except (OSError, ValueError):  # renamed away by a commit, or read while another process replaces it
        return []
    if "seconds" not in table:
        return [float("nan")] * len(table)
    return [float(v) for v in pd.to_numeric(table["seconds"], errors="coerce")]


def run_job(card: MethodCard, job: Job, inputs: JobInputs, folder: Path) -> dict[str, Any]:
    """Fits and scores one job inside ``folder`` (its ``.partial-`` folder); returns the record it wrote.

    Never raises for the method's own failure: the record then says ``failed`` with the error and traceback.
    """
    split_fold = inputs.split.folds[[f.index for f in inputs.split.folds].index(job.fold)]
    train, val, test = (split_fold.select(inputs.cases, role) for role in ("train", "val", "test"))
    spec = FitSpec.from_card(
        card,
        inputs.budget,
        overrides=inputs.overrides,
        workdir=folder / "work",
        seed=job.seed,
        device=inputs.device,
        modalities=inputs.modalities,
        reference=inputs.reference,
        progress=inputs.progress,
    )
    context = spec.context
    resumed_from = epochs_done(context.workdir) if context.workdir.exists() else 0
    record: dict[str, Any] = {
        "job_id": job.job_id,
        "run_id": job.run_id,
        "method": job.method,
        "fold": job.fold,
        "seed": job.seed,
        "code_hash": job.code_hash,
        "suite_version": SUITE_VERSION,
        "resumed_from_epoch": resumed_from,
        "train_cases": [c.case_id for c in train],
        "val_cases": [c.case_id for c in val],
        "test_cases": [c.case_id for c in test],
        "train_spacing_mm": list(training_spacing(train)),
        "git": mf.git_state(),
        "versions": mf.library_versions(),
        "device": mf.device_info(inputs.device),
        "compute": mf.compute_stack(),
        "command": mf.command_line(),
        "started": mf.now_iso(),
    }
    t0 = time.perf_counter()
    try:
        adapter, report = fit(spec, train, val)
        fit_s = time.perf_counter() - t0 + _seconds_before(report.history, resumed_from)
        cases_rows, lesion_rows, predict_s = [], [], 0.0
        provenance = provenance_columns(inputs.metric_params)  # suite version and parameters on every case row
        ids = {"method": card.name, "fold": job.fold, "seed": job.seed}
        spacing = record["train_spacing_mm"]
        scored = [(case, IN_DOMAIN, inputs.dataset, "predictions") for case in test]
        if inputs.shifted is not None:
            record["shifted_dataset"] = inputs.shifted.dataset
            record["shifted_cases"] = [c.case_id for c in inputs.shifted.cases]
            scored += [(case, SHIFTED, inputs.shifted.dataset, "shifted") for case in inputs.shifted.cases]
        for case, domain, dataset, sub in scored:
            t1 = time.perf_counter()
            prediction = predict_case(adapter, case, spacing, inputs.modalities)
            predict_s += time.perf_counter() - t1
            save_prediction(folder, case, prediction, sub)
            rows, lesions = score_case(case, prediction, inputs.metric_params, inputs.modalities)
            where = {"domain": domain, "dataset": dataset}
            cases_rows += [{**ids, **row, **where, **provenance} for row in rows]
            lesion_rows += [{**ids, **row, **where} for row in lesions]
        if test or train:
            # The model's costs (profile.json): a failing profile is recorded there, never fails the job.
            profile = profile_job_adapter(adapter, (test or train)[0], (train or test)[0], folder, ids_of(job))
            if profile.get("errors"):
                record["profile_errors"] = profile["errors"]
        write_json(folder / "fit.json", {**asdict(report), "history": None})
        if report.history:
            write_csv(folder / "train_log.csv", pd.DataFrame(report.history))
        write_csv(folder / "lesions.csv", pd.DataFrame(lesion_rows))
        write_csv(folder / "cases.csv", pd.DataFrame(cases_rows))
        record.update(status="ok", fit_seconds=round(fit_s, 3), predict_seconds=round(predict_s, 3))
    except Exception as err:  # a method's failure is recorded, never fatal to the run
        record.update(status="failed", error=describe_error(err, card.name, context), traceback=traceback.format_exc())
        record["last_epoch"] = epochs_done(context.workdir) if context.workdir.exists() else 0
    record.update(finished=mf.now_iso(), wall_seconds=round(time.perf_counter() - t0, 3))
    write_json(folder / JOB_RECORD, record)
    return record


def ids_of(job: Job) -> dict[str, str]:
    """The ids a job's profile is stored under."""
    return {"run_id": job.run_id, "job_id": job.job_id}


def describe_error(err: Exception, method: str, context: FitContext) -> str:
    """The error text stored with a failed job; CUDA running out of memory says what to lower, and how."""
    text = f"{type(err).__name__}: {err}"
    if type(err).__name__ != "OutOfMemoryError":
        return text
    patch = context.hparams.get("patch_size") or context.hparams.get("crop_size") or "the method's default"
    return (
        f"CUDA ran out of memory in method {method!r} "
        f"(patch/crop size {patch}, batch size {context.recipe.batch_size}, budget {context.budget}, device "
        f"{context.device}); run again with a smaller --batch-size (e.g. {max(1, context.recipe.batch_size // 2)}) "
        f"or on a larger GPU. {text.splitlines()[0]}"
    )


def _seconds_before(history: list[dict[str, Any]], resumed_from: int) -> float:
    """Training seconds of the epochs an earlier, interrupted attempt ran: a resumed fit's time is the whole fit."""
    return float(sum(row.get("seconds", 0.0) or 0.0 for row in history[:resumed_from]))


def save_prediction(folder: Path, case: Case, prediction: Prediction, sub: str = "predictions") -> None:
    """Writes the mask (and probability map) in the orientation and affine of the case's input files.

    In-domain scans go to ``predictions/`` and ``probabilities/``; a cross-dataset run's other data set to
    ``shifted/`` and ``shifted_probabilities/`` (its case ids may repeat the first data set's).
    """
    items = [(sub, prediction.mask.astype(np.uint8))]
    if prediction.probability is not None:
        items.append(
            (
                "probabilities" if sub == "predictions" else f"{sub}_probabilities",
                prediction.probability.astype(np.float32),
            )
        )
    for name, data in items:
        path = folder / name / f"{case.case_id}.nii.gz"
        with atomic_path(path) as tmp:
            nib.save(case.to_nifti(data), str(tmp))
