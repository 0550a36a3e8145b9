"""nnunet2d: the fold's scans go through the real nnU-Net v2 (2d configuration) and back onto each case's grid.

``fit`` writes the training and validation scans in nnU-Net's raw layout inside the run directory, with the harness's
split as ``splits_final.json``, then runs fingerprinting, planning, 2d preprocessing and training in a child process
whose nnU-Net locations point inside the run directory. ``predict`` runs nnU-Net's predictor in this process (it needs
no nnU-Net location) and returns the lesion mask and probability on the case's grid, without post-processing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from msbench.datasets.case import Case
from msbench.datasets.masks import dice_score

from ..adapter import Adapter, FitReport, Prediction, fit_signature
from ._layout import CONFIGURATION, DATASET_ID, NnUNetFolders, write_raw_dataset
from ._predictor import load_predictor, predict_volume
from ._process import augmentation_workers, run_worker, torch_threads, worker_environment

NNUNET_DEFAULT_ITERATIONS = 250
"""nnU-Net's iterations per epoch, used when a recipe leaves ``iterations_per_epoch`` open."""


class NnUNet2dAdapter(Adapter):
    """Trains nnU-Net's 2d configuration on the fold and predicts with nnU-Net's predictor."""

    _predictor: Any = None

    @property
    def folders(self) -> NnUNetFolders:
        return NnUNetFolders(Path(self.context.workdir).resolve() / "nnunet")

    def settings(self, raw_splits: list[dict[str, list[str]]], kept: dict[str, list[int]]) -> dict[str, Any]:
        """Everything the worker needs: budget, hyper-parameters, seed, device, the split and the kept slices."""
        hp, recipe = self.context.hparams, self.context.recipe
        if hp["checkpoint"] not in ("final", "best"):
            raise ValueError(f"nnunet2d: checkpoint must be 'final' or 'best', got {hp['checkpoint']!r}.")
        return {
            "dataset_id": DATASET_ID,
            "configuration": CONFIGURATION,
            "seed": int(self.context.seed),
            "epochs": int(recipe.epochs),
            "iterations_per_epoch": int(recipe.iterations_per_epoch or NNUNET_DEFAULT_ITERATIONS),
            "val_iterations_per_epoch": int(hp["val_iterations_per_epoch"]),
            "batch_size": hp["batch_size"],
            "initial_lr": float(hp["initial_lr"]),
            "weight_decay": float(hp["weight_decay"]),
            "momentum": float(hp["momentum"]),
            "paper_augmentation": bool(hp["paper_augmentation"]),
            "splits": raw_splits,
            "kept_slices": kept,
        }

    def fit(self, train: Sequence[Case], val: Sequence[Case]) -> FitReport:
        folders = self.folders
        signature = self.signature(train, val)
        signature_file = folders.root / "msbench_signature.json"
        latest = folders.model / "fold_0" / "checkpoint_latest.pth"
        resume = signature_file.is_file() and signature_file.read_text() == signature and latest.is_file()
        if folders.root.exists() and not resume:
            shutil.rmtree(folders.root)  # another fit's files, or one that finished: never mixed with this one
        folders.root.mkdir(parents=True, exist_ok=True)
        signature_file.write_text(signature)
        hp = self.context.hparams
        raw = write_raw_dataset(
            folders, train, val, self.context.modalities, self.context.reference, float(hp["entropy_threshold"])
        )
        if not any(raw.kept_slices.values()):
            raise ValueError(
                f"nnunet2d: the entropy filter (entropy_threshold={hp['entropy_threshold']}) kept no training slice: "
                "no training scan has a lesion slice at or above it. Lower entropy_threshold or check the "
                f"reference masks ({self.context.reference!r})."
            )
        env, device = worker_environment(folders, self.context.device)
        settings = {
            **self.settings(raw.splits, raw.kept_slices),
            "device": device,
            "num_processes": int(env["nnUNet_def_n_proc"]),
            "augmentation_workers": augmentation_workers(self.context.device),
            "torch_threads": torch_threads(self.context.device),
            "resume": resume,
        }
        epochs = run_worker(folders, settings, env, folders.root / "nnunet_worker.log", self.context.progress)

        self._predictor, n_parameters = self._load_predictor()
        val_dice = [dice_score(self.predict(case).mask, case.load_mask(self.context.reference)) for case in val]
        history_file = folders.model / "fold_0" / "msbench_history.json"
        history = json.loads(history_file.read_text()) if history_file.is_file() else epochs
        return FitReport(
            chosen_epoch=_chosen_epoch(history, hp["checkpoint"]),
            val_dice=float(np.nanmean(val_dice)) if val_dice else None,
            history=history,
            chosen=self._chosen(raw.kept_slices, raw.train),
            n_parameters=int(n_parameters),
        )

    def restore(self, fit: Mapping[str, Any]) -> None:
        """nnU-Net's own trained folder lies in the workdir; the predictor loads from it on the first prediction."""
        if not self.folders.model.is_dir():
            raise FileNotFoundError(f"{self.folders.model}: no trained nnU-Net model in this job's work folder.")
        self._predictor = None

    def signature(self, train: Sequence[Case], val: Sequence[Case]) -> str:
        """Identity of the fit: an interrupted fit resumes from nnU-Net's latest checkpoint only under the same one."""
        return fit_signature(self.card.name, self.context, train, val)

    def predict(self, case: Case) -> Prediction:
        if self._predictor is None:
            self._predictor, _ = self._load_predictor()
        # Same thread count as training: on a small CPU box, torch's default team slows each step manyfold.
        threads = None if self.context.device.startswith("cuda") else torch_threads(self.context.device)
        mask, probability = predict_volume(
            self._predictor, case.load_images(self.context.modalities), tuple(case.spacing_mm), threads
        )
        if mask.shape != tuple(case.shape):
            raise RuntimeError(f"nnU-Net returned shape {mask.shape} for case {case.case_id} of shape {case.shape}.")
        return Prediction(mask=mask, probability=probability)

    def _load_predictor(self) -> tuple[Any, int]:
        hp = self.context.hparams
        return load_predictor(self.folders, self.context.device, hp["checkpoint"], bool(hp["test_time_mirroring"]))

    def _chosen(self, kept: dict[str, list[int]], train_ids: Sequence[str]) -> dict[str, Any]:
        plans = json.loads((self.folders.model / "plans.json").read_text())
        config = plans["configurations"][CONFIGURATION]
        return {
            "patch_size": config["patch_size"],
            "planned_batch_size": config["batch_size"],
            "spacing_mm": config["spacing"],
            "n_stages": config["architecture"]["arch_kwargs"]["n_stages"],
            "training_slices": sum(len(kept[i]) for i in train_ids),
            "training_cases_without_kept_slice": [i for i in train_ids if not kept[i]],
            "nnunet_folders": str(self.folders.root),
        }


def _chosen_epoch(history: list[dict], checkpoint: str) -> int | None:
    if not history:
        return None
    if checkpoint == "final":
        return int(history[-1]["epoch"])
    ema = [np.nan if h.get("ema_pseudo_dice") is None else h["ema_pseudo_dice"] for h in history]
    # nnU-Net saves checkpoint_best when the EMA pseudo-Dice first reaches a new maximum.
    return int(history[int(np.nanargmax(ema))]["epoch"]) if not np.all(np.isnan(ema)) else None
