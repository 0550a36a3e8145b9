"""Torch-free default hyper-parameters of the engine's 3D patch adapters (cards import these)."""

from __future__ import annotations

from typing import Any

from ..card import CategoricalParam, FloatParam, Recipe, SearchParam

PATCH_DEFAULTS: dict[str, Any] = {
    "lr": 1e-4,
    "weight_decay": 0.0,
    "init_prior": 0.01,
    "bce_weight": 0.5,
    "dice_smooth": 1e-5,
    "batch_dice": False,
    "plateau_factor": 0.5,
    "plateau_patience": 10,
    "plateau_metric": "val_loss",
    "upper_percentile": 100.0,
    "crop_margin": 2,
    "threshold": 0.5,
    "min_lesion_voxels": 0,
    "patch_mm": 64.0,
    "stride_mm": 32.0,
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

PATCH_CHOICES: dict[str, str] = {
    "patch_mm / stride_mm": "64 mm patches on a 32 mm grid over the brain crop (64^3 voxels on a stride-32 grid at "
    "1 mm, as in F.sh; in voxels of the training cases' median spacing, rounded to a multiple of 16; smoke: 96 mm "
    "and 48 mm, i.e. 32^3 on a stride-16 grid at 3 mm): the same patch "
    "pipeline for every 3D patch method so that they differ only by their network.",
    "positive_fraction": "1.0: only grid patches that contain lesion are drawn (F.sh's class-imbalance control). "
    "On smoke each method's share was chosen on the validation patient (methods/smoke_selection): 0.5 unless its "
    "card says otherwise.",
    "augmentation": "rotation (p 0.2, +-15 degrees), flips (p 0.5 per axis), elastic (p 0.2, MONAI "
    "Rand3DElasticd sigma 5-8, magnitude 100-200), as msbench's F.sh.",
    "loss / optimiser": "0.5 BCE + 0.5 soft Dice, Adam lr 1e-4, ReduceLROnPlateau(0.5, patience 10) on the "
    "validation loss, as msbench's F.sh; best epoch by validation Dice.",
    "init_prior": "the output bias starts at the logit of 0.01 (Lin et al. 2017) so training does not begin by "
    "unlearning a 0.5 lesion probability everywhere.",
    "blend": "sliding-window inference on the training grid (overlap 0.5), overlapping windows averaged.",
}
"""What the engine's 3D patch pipeline fixes, for the cards of library baselines that reuse it unchanged."""


def patch_recipes(smoke_overrides: dict[str, Any]) -> dict[str, Any]:
    """Recipes on the 3D patch pipeline: smoke (with a method's own overrides), quick and paper.

    ``paper`` is F.sh's schedule (70 epochs, one pass over the lesion patches per epoch); the library baselines
    share it, so that they and F.sh train equally long.
    """
    return {
        "smoke": Recipe(
            epochs=12,
            batch_size=4,
            iterations_per_epoch=10,
            overrides={
                "patch_mm": 96.0,
                "stride_mm": 48.0,
                "lr": 3e-3,
                "positive_fraction": 0.5,
                "batch_dice": True,
                "plateau_patience": 2,
                "elastic_prob": 0.0,
                "rotate_prob": 0.0,
                "sw_batch_size": 4,
                **smoke_overrides,
            },
        ),
        "quick": Recipe(
            epochs=20,
            batch_size=2,
            iterations_per_epoch=50,
            patience=8,
            overrides={"lr": 3e-4, "plateau_patience": 3, "sw_batch_size": 8},
        ),
        "paper": Recipe(epochs=70, batch_size=2),
    }


PATCH_SMOKE_CANDIDATES = {"positive_fraction 1.0": {"positive_fraction": 1.0}}
"""The 3D patch methods' recipe-selection variant of the smoke recipe: F.sh's share, lesion patches only."""

LIBRARY_SEARCH_SPACE: dict[str, SearchParam] = {
    "lr": FloatParam(1e-5, 1e-3, log=True),
    "base_width": CategoricalParam((8, 16, 32)),
    "dropout": FloatParam(0.0, 0.3),
    "bce_weight": FloatParam(0.2, 0.8),
    "threshold": FloatParam(0.3, 0.7),
}
"""The Optuna search space shared by the MONAI library baselines (same knobs, same ranges)."""
