"""The nnU-Net trainer msbench runs: nnUNetTrainer with the budget's length, the paper's extras and a history file.

Imported only inside the nnU-Net worker process (training) and by the adapter's predictor (network building).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nnunetv2.training.dataloading.nnunet_dataset import nnUNetBaseDataset
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from msbench.methods.adapter import HISTORY_CSV

from ._augment import PaperAffine2D
from ._process import EPOCH_MARKER

HISTORY_FILE = "msbench_history.json"


class KeptSlicesDataset(nnUNetBaseDataset):
    """A preprocessed nnU-Net dataset that shows the 2D data loader only the kept axial slices of each case.

    nnU-Net's 2D loader draws a case, then one slice of it (a patch of depth 1 along the first axis). Handing it
    volumes made of the kept slices only restricts training to those slices without touching the loader. Slices are
    given on the native grid; preprocessing only crops along that axis (2d never resamples it), so the preprocessed
    index is the native one minus the crop's start.

    Args:
        base: The dataset nnU-Net built for the training keys.
        kept: nnU-Net case identifier -> kept native axial indices. Cases with none leave the dataset.
    """

    def __init__(self, base: nnUNetBaseDataset, kept: Mapping[str, Sequence[int]]) -> None:
        super().__init__(base.source_folder, [i for i in base.identifiers if kept.get(i)], None)
        self.base = base
        self.kept = {k: [int(s) for s in v] for k, v in kept.items()}

    def load_case(self, identifier: str):
        data, seg, seg_prev, properties = self.base.load_case(identifier)
        start = int(properties["bbox_used_for_cropping"][0][0])
        depth = int(data.shape[1])
        index = [k - start for k in self.kept[identifier] if 0 <= k - start < depth]
        if not index:
            raise ValueError(f"case {identifier}: none of its kept slices lies inside nnU-Net's crop.")
        data = np.stack([np.asarray(data[:, i]) for i in index], axis=1)
        seg = np.stack([np.asarray(seg[:, i]) for i in index], axis=1)
        properties = dict(properties)
        properties["class_locations"] = _remap_locations(properties["class_locations"], index)
        return data, seg, seg_prev, properties

    @staticmethod
    def save_case(data, seg, properties, output_filename_truncated):
        raise NotImplementedError("KeptSlicesDataset is a read-only view for training.")

    @staticmethod
    def get_identifiers(folder: str) -> list[str]:
        raise NotImplementedError("KeptSlicesDataset is built from a base dataset, not from a folder.")


def _remap_locations(locations: Mapping[Any, Any], index: Sequence[int]) -> dict[Any, Any]:
    """Keeps the foreground samples lying on kept slices and renumbers their slice coordinate (column 1)."""
    new_position = {old: new for new, old in enumerate(index)}
    remapped = {}
    for key, coords in locations.items():
        coords = np.asarray(coords)
        if coords.size == 0:
            remapped[key] = coords
            continue
        on_kept = np.isin(coords[:, 1], list(new_position))
        kept = coords[on_kept].copy()
        kept[:, 1] = [new_position[int(s)] for s in kept[:, 1]]
        remapped[key] = kept
    return remapped


class nnUNetTrainerMSBench(nnUNetTrainer):  # noqa: N801 - nnU-Net's trainer naming convention
    """nnUNetTrainer whose length, optimiser, training slices and augmentation come from msbench settings.

    ``apply_settings`` must be called before ``run_training``; nothing else of nnU-Net's trainer changes.
    """

    momentum = 0.99
    kept_slices: Mapping[str, Sequence[int]] | None = None
    paper_augmentation = True
    batch_size_override: int | None = None

    def apply_settings(self, settings: Mapping[str, Any]) -> None:
        # checkpoint_latest.pth after every epoch: an interrupted fit resumes where it stopped (msbench jobs resume).
        self.save_every = 1
        self.num_epochs = int(settings["epochs"])
        self.num_iterations_per_epoch = int(settings["iterations_per_epoch"])
        self.num_val_iterations_per_epoch = int(settings["val_iterations_per_epoch"])
        self.initial_lr = float(settings["initial_lr"])
        self.weight_decay = float(settings["weight_decay"])
        self.momentum = float(settings["momentum"])
        self.kept_slices = settings["kept_slices"]
        self.paper_augmentation = bool(settings["paper_augmentation"])
        self.batch_size_override = None if settings["batch_size"] is None else int(settings["batch_size"])

    def _set_batch_size_and_oversample(self):
        super()._set_batch_size_and_oversample()
        if self.batch_size_override is not None:
            self.batch_size = self.batch_size_override

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(
            self.network.parameters(),
            self.initial_lr,
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            nesterov=True,
        )
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)

    def get_tr_and_val_datasets(self):
        dataset_tr, dataset_val = super().get_tr_and_val_datasets()
        if self.kept_slices is None:
            return dataset_tr, dataset_val
        filtered = KeptSlicesDataset(dataset_tr, self.kept_slices)
        if not filtered.identifiers:
            raise ValueError(
                "the entropy filter kept no training slice (no training scan has a lesion slice at or above "
                "entropy_threshold); lower entropy_threshold or check the reference masks."
            )
        dropped = sorted(set(dataset_tr.identifiers) - set(filtered.identifiers))
        n_slices = sum(len(self.kept_slices[i]) for i in filtered.identifiers)
        self.print_to_log_file(
            f"entropy filter: {n_slices} training slices kept in {len(filtered.identifiers)} cases; "
            f"cases without a kept slice: {dropped or 'none'}"
        )
        return filtered, dataset_val

    def get_training_transforms(self, patch_size, *args, **kwargs):
        pipeline = nnUNetTrainer.get_training_transforms(patch_size, *args, **kwargs)
        if self.paper_augmentation:
            if len(patch_size) != 2:
                raise ValueError(f"the paper's augmentation is 2D; this configuration has patch size {patch_size}.")
            pipeline.transforms.insert(0, PaperAffine2D(reference_size=patch_size))
        return pipeline

    def on_train_start(self):
        super().on_train_start()
        # nnU-Net redraws progress.png after every epoch; drawing it once at the end saves seconds per epoch on CPU.
        self._plot_progress = self.logger.plot_progress_png
        self.logger.plot_progress_png = _skip_plot

    def on_epoch_end(self):
        epoch = self.current_epoch
        super().on_epoch_end()
        print(EPOCH_MARKER + json.dumps(_record(self.logger, epoch)), flush=True)
        write_epoch_log(Path(self.output_folder), self.logger, epoch + 1)

    def on_train_end(self):
        super().on_train_end()
        self._plot_progress(self.output_folder)
        history = [_record(self.logger, epoch) for epoch in range(self.num_epochs)]
        Path(self.output_folder, HISTORY_FILE).write_text(json.dumps(history, indent=1))


def _skip_plot(output_folder: str) -> None:
    del output_folder


_LOGGED = {
    "train_loss": "train_losses",
    "val_loss": "val_losses",
    "pseudo_dice": "mean_fg_dice",
    "ema_pseudo_dice": "ema_fg_dice",
    "lr": "lrs",
}
"""History column -> nnU-Net logger key (its pseudo Dice is on validation patches, foreground classes averaged)."""


def write_epoch_log(folder: Path, logger, epochs: int) -> Path:
    """``history.csv`` of the first ``epochs`` epochs with their seconds, rewritten after every epoch (atomically).

    The same per-epoch log the engine writes: ``msbench run``'s live table reads its epoch count and epoch times
    from it, and a resumed job's record its ``resumed_from_epoch``. nnU-Net's own logger (restored from its
    checkpoint on resume) holds every epoch, so the rows span a resumed fit's earlier epochs too.
    """
    rows = []
    for epoch in range(epochs):
        row = _record(logger, epoch)
        try:
            start, end = (logger.get_value(f"epoch_{edge}_timestamps", step=epoch) for edge in ("start", "end"))
            row["seconds"] = round(float(end) - float(start), 3)
        except (KeyError, IndexError, TypeError):
            row["seconds"] = None
        rows.append(row)
    path = folder / HISTORY_CSV
    tmp = folder / f".{HISTORY_CSV}.tmp"
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["epoch"])
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def _record(logger, epoch: int) -> dict[str, Any]:
    record: dict[str, Any] = {"epoch": epoch}
    for column, key in _LOGGED.items():
        try:
            value = logger.get_value(key, step=epoch)
        except (KeyError, IndexError):
            value = None
        record[column] = None if value is None else float(value)
    return record
