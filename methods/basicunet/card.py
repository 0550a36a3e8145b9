"""Card of ``basicunet``: MONAI's BasicUNet on the engine's 3D patch pipeline (library baseline)."""

from __future__ import annotations

from ..card import MethodCard
from ..engine.defaults import LIBRARY_SEARCH_SPACE, PATCH_CHOICES, PATCH_DEFAULTS, PATCH_SMOKE_CANDIDATES, patch_recipes
from ..registry import register

CARD = register(
    MethodCard(
        name="basicunet",
        title="MONAI BasicUNet, 3D patches (library baseline)",
        citation="MONAI BasicUNet (monai.networks.nets.BasicUNet), MONAI Consortium, https://monai.io; msbench "
        "baseline, no paper",
        input_kind="3D",
        modalities=("flair",),
        adapter="msbench.methods.basicunet.adapter:BasicUNetAdapter",
        defaults={**PATCH_DEFAULTS, "base_width": 16, "dropout": 0.0},
        search_space=LIBRARY_SEARCH_SPACE,
        recipes=patch_recipes({"base_width": 8}),
        choices={
            **PATCH_CHOICES,
            "base_width": "features (w, w, 2w, 4w, 8w, w) with w = 16 (MONAI's default is 32): a small U-Net "
            "beside F.sh's 7 M parameters; instance norm and LeakyReLU as MONAI defines them.",
            "smoke": "w = 8, 32^3 patches on a stride-16 grid (half lesion-containing), batch Dice, lr 3e-3, 12 x 10 "
            "steps of 4 patches (the 3D patch methods' shared smoke schedule). The half share of lesion patches was "
            "chosen on the validation patient among the card's smoke_candidates; `msbench methods show basicunet` "
            "prints the selection's record.",
        },
        family="library",
        smoke_candidates=PATCH_SMOKE_CANDIDATES,
    )
)
