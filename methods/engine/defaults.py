"""Torch-free default hyper-parameters of the engine's 3D patch adapters (cards import these)."""

from __future__ import annotations

from typing import Any

PATCH_DEFAULTS: dict[str, Any] = {
    "lr": 1e-4,
    "weight_decay": 0.0,
    "bce_weight": 0.5,
    "dice_smooth": 1e-5,
    "plateau_factor": 0.5,
    "plateau_patience": 10,
    "plateau_metric": "val_loss",
    "upper_percentile": 100.0,
    "crop_margin": 2,
    "threshold": 0.5,
    "patch_size": 64,
    "stride": 32,
    "positive_fraction": 1.0,
    "rotate_prob": 0.2,
    "rotate_deg": 15.0,
    "flip_prob": 0.5,
    "flip_axes": (0, 1, 2),
    "elastic_prob": 0.2,
    "elastic_sigma": (5.0, 8.0),
    "elastic_magnitude": (100.0, 200.0),
    "blend": "constant",
    "sw_batch_size": 2,
}
"""Hyper-parameters every :class:`PatchAdapter3D` reads, with msbench's defaults (F.sh's where the paper gives them)."""
