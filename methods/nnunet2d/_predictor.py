"""nnU-Net's predictor for a trained fold, and whole-volume prediction on a case's own grid."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..engine.parameters import count_parameters
from ._layout import NnUNetFolders


def load_predictor(folders: NnUNetFolders, device: str, checkpoint: str, mirroring: bool = True) -> tuple[Any, int]:
    """Builds nnU-Net's predictor holding fold 0's weights; no environment variable is read.

    ``nnUNetPredictor.initialize_from_trained_model_folder`` looks the trainer class up by name in nnU-Net's package
    (or ``nnUNet_extTrainer``); this does the same steps with msbench's trainer class given directly.

    Args:
        folders: The fit's nnU-Net folders.
        device: ``cpu`` or ``cuda``/``cuda:N``.
        checkpoint: ``final`` or ``best``.
        mirroring: Test-time mirroring over the axes the trainer allowed (nnU-Net's default).

    Returns:
        The predictor and the network's parameter count.
    """
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from ._trainer import nnUNetTrainerMSBench  # torch, nnunetv2: on use

    model = folders.model
    weights = model / "fold_0" / f"checkpoint_{checkpoint}.pth"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} does not exist: nnU-Net's training did not finish; fit() first.")
    plans = json.loads((model / "plans.json").read_text())
    dataset_json = json.loads((model / "dataset.json").read_text())
    state = torch.load(weights, map_location="cpu", weights_only=False)
    plans_manager = PlansManager(plans)
    configuration = plans_manager.get_configuration(state["init_args"]["configuration"])
    network = nnUNetTrainerMSBench.build_network_architecture(
        plans_manager,
        configuration,
        determine_num_input_channels(plans_manager, configuration, dataset_json),
        plans_manager.get_label_manager(dataset_json).num_segmentation_heads,
        enable_deep_supervision=False,
    )
    network.load_state_dict(state["network_weights"])
    torch_device = torch.device(device)
    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=mirroring,
        perform_everything_on_device=torch_device.type == "cuda",
        device=torch_device,
        verbose=False,
        verbose_preprocessing=False,
        allow_tqdm=False,
    )
    predictor.manual_initialization(
        network,
        plans_manager,
        configuration,
        [state["network_weights"]],
        dataset_json,
        state["trainer_name"],
        state.get("inference_allowed_mirroring_axes"),
    )
    return predictor, count_parameters(network, trainable_only=False)


def predict_volume(
    predictor: Any, images: np.ndarray, spacing_mm: tuple[float, ...], threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Runs nnU-Net's preprocessing, sliding-window inference and export on one (C, I, J, K) volume.

    nnU-Net's ``NibabelIO`` reads NIfTI as (C, K, J, I) with the spacing reversed; the volume is handed over the same
    way, so training and prediction see identical arrays. No post-processing is applied.

    Args:
        predictor: From ``load_predictor``.
        images: The case's modalities, (C, I, J, K).
        spacing_mm: Voxel size in array axis order.
        threads: Torch threads during the call (restored after); None leaves them as they are.

    Returns:
        The lesion mask (bool) and lesion probability (float32), both (I, J, K).
    """
    import torch

    data = np.ascontiguousarray(images.transpose(0, 3, 2, 1), dtype=np.float32)
    properties = {"spacing": [float(s) for s in spacing_mm[::-1]]}
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        segmentation, probabilities = predictor.predict_single_npy_array(data, properties, None, None, True)
    finally:
        torch.set_num_threads(before)
    mask = np.ascontiguousarray(np.asarray(segmentation).transpose(2, 1, 0) == 1)
    probability = np.ascontiguousarray(np.asarray(probabilities)[1].transpose(2, 1, 0), dtype=np.float32)
    return mask, probability
