"""Child process that runs nnU-Net's stages for one fit: fingerprint, plan, preprocess (2d) and train.

Run as ``python -m msbench.methods.nnunet2d._worker <settings.json>``. The adapter starts it with ``nnUNet_raw``,
``nnUNet_preprocessed`` and ``nnUNet_results`` pointing inside the run directory, so nnU-Net reads and writes nothing
outside it. Top-level imports stay light: nnU-Net's spawned pool workers re-import this module.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from msbench.methods.nnunet2d._layout import DATASET_NAME
from msbench.methods.nnunet2d._process import STAGE_MARKER


def _stage(name: str) -> None:
    print(STAGE_MARKER + name, flush=True)


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_fit(settings: dict[str, Any]) -> None:
    """Fingerprint, plan, preprocess the ``2d`` configuration and train fold 0 of the harness's split."""
    raw = os.environ["nnUNet_raw"]  # noqa: SIM112 - nnU-Net's own variable name
    dataset_json = Path(raw) / DATASET_NAME / "dataset.json"
    if not dataset_json.is_file():
        raise FileNotFoundError(f"{dataset_json} does not exist: the adapter writes the raw dataset before the worker.")

    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset, preprocess_dataset
    from nnunetv2.paths import nnUNet_preprocessed

    from msbench.methods.nnunet2d._trainer import nnUNetTrainerMSBench  # torch, nnunetv2: on use, in the worker process

    dataset_id = int(settings["dataset_id"])
    n_proc = int(settings["num_processes"])
    _seed_everything(int(settings["seed"]))

    _stage("fingerprint")
    extract_fingerprint_dataset(dataset_id, num_processes=n_proc, clean=True, verbose=False, show_progress_bar=False)

    _stage("plan")
    # suppress_transpose keeps nnU-Net's first axis = the axial axis, so the 2d configuration slices axially.
    planner = ExperimentPlanner(dataset_id, suppress_transpose=True)
    planner.plan_experiment()

    _stage("preprocess")
    preprocess_dataset(
        dataset_id, planner.plans_identifier, configurations=("2d",), num_processes=(n_proc,), show_progress_bar=False
    )

    preprocessed = Path(str(nnUNet_preprocessed)) / planner.dataset_name
    splits = load_json(str(preprocessed / "splits_final.json"))
    if splits != settings["splits"]:
        raise RuntimeError(f"{preprocessed / 'splits_final.json'} is not the split msbench wrote; refusing to train.")

    _stage("train")
    torch.set_num_threads(int(settings["torch_threads"]))
    # This process's own environment: nnU-Net reads the augmentation worker count when it builds its loaders.
    os.environ["nnUNet_n_proc_DA"] = str(int(settings["augmentation_workers"]))  # noqa: SIM112
    _seed_everything(int(settings["seed"]))
    plans = load_json(str(preprocessed / f"{planner.plans_identifier}.json"))
    plans["continue_training"] = False
    trainer = nnUNetTrainerMSBench(
        plans=plans,
        configuration="2d",
        fold=0,
        dataset_json=load_json(str(preprocessed / "dataset.json")),
        device=torch.device(settings["device"]),
    )
    trainer.apply_settings(settings)
    latest = Path(trainer.output_folder) / "checkpoint_latest.pth"
    if settings.get("resume") and latest.is_file():
        print(f"msbench: resuming nnU-Net training from {latest}", flush=True)
        trainer.load_checkpoint(str(latest))
    trainer.run_training()
    _stage("done")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m msbench.methods.nnunet2d._worker <settings.json>", file=sys.stderr)
        return 2
    settings = json.loads(Path(argv[0]).read_text())
    run_fit(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
