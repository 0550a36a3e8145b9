"""Card of ``dynunet``: MONAI's DynUNet (the nnU-Net 3D architecture) on the engine's 3D patch pipeline."""

from __future__ import annotations

from ..card import MethodCard
from ..engine.defaults import LIBRARY_SEARCH_SPACE, PATCH_CHOICES, PATCH_DEFAULTS, PATCH_SMOKE_CANDIDATES, patch_recipes
from ..registry import register

CARD = register(
    MethodCard(
        name="dynunet",
        title="MONAI DynUNet (nnU-Net's residual 3D U-Net), 3D patches (library baseline)",
        citation="F. Isensee et al., 'nnU-Net: a self-configuring method for deep learning-based biomedical image "
        "segmentation', Nature Methods 18, 203-211 (2021), doi:10.1038/s41592-020-01008-z; MONAI implementation "
        "monai.networks.nets.DynUNet",
        input_kind="3D",
        modalities=("flair",),
        adapter="msbench.methods.dynunet.adapter:DynUNetAdapter",
        defaults={**PATCH_DEFAULTS, "base_width": 32, "dropout": 0.0},
        search_space=LIBRARY_SEARCH_SPACE,
        recipes=patch_recipes({"base_width": 8, "positive_fraction": 1.0}),
        choices={
            **PATCH_CHOICES,
            "base_width": "32 at full resolution, doubling per level up to nnU-Net's cap of 320 (32-64-128-256-320), "
            "3x3x3 kernels, four stride-2 down-samplings, residual blocks, instance norm, leaky ReLU: nnU-Net's 3D "
            "full-resolution layout for 64^3 patches, without deep supervision.",
            "why not SegResNet": "MONAI's SegResNet was the first choice and was dropped because it does not "
            "learn reliably on the smoke budget: on fold 1 of the phantom it predicted nothing for most "
            "of 12 epochs under every variant tried (lr 1e-3 or 3e-3, no output-bias prior, BCE weight 0.2, only "
            "lesion patches, batch norm); DynUNet at the same width and schedule learns from epoch 2.",
            "smoke": "base width 8, 32^3 patches on a stride-16 grid, only lesion-containing patches, batch Dice, lr "
            "3e-3, 12 x 10 steps of 4 patches (the 3D patch methods' shared smoke schedule). Lesion patches only "
            "(half before) was chosen on the validation patient among the card's smoke_candidates; `msbench methods "
            "show dynunet` prints the selection's record. The margin is small: one seed, one patient.",
        },
        family="library",
        smoke_candidates=PATCH_SMOKE_CANDIDATES,
    )
)
