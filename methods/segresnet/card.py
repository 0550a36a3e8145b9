"""Card of ``segresnet``: MONAI's SegResNet on the engine's 3D patch pipeline (library baseline)."""

from __future__ import annotations

from ..card import MethodCard
from ..engine.defaults import LIBRARY_SEARCH_SPACE, PATCH_CHOICES, PATCH_DEFAULTS, patch_recipes
from ..registry import register

CARD = register(
    MethodCard(
        name="segresnet",
        title="MONAI SegResNet, 3D patches (library baseline)",
        citation="A. Myronenko, '3D MRI brain tumor segmentation using autoencoder regularization', BrainLes "
        "(MICCAI workshop) 2018, arXiv:1810.11654; MONAI implementation monai.networks.nets.SegResNet",
        input_kind="3D",
        modalities=("flair",),
        adapter="msbench.methods.segresnet.adapter:SegResNetAdapter",
        defaults={**PATCH_DEFAULTS, "base_width": 16, "dropout": 0.0},
        search_space=LIBRARY_SEARCH_SPACE,
        recipes=patch_recipes({"base_width": 8}),
        choices={
            **PATCH_CHOICES,
            "base_width": "init_filters 16 with blocks down (1, 2, 2, 4) and up (1, 1, 1), group norm with 8 "
            "groups: Myronenko's BraTS layout without the VAE branch.",
            "smoke": "init_filters 8, 32^3 patches on a stride-16 grid, batch Dice, lr 1e-2, 8 x 10 steps of 4 "
            "patches.",
        },
        family="library",
    )
)
