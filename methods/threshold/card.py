"""Card of the ``threshold`` baseline."""

from __future__ import annotations

from ..card import FloatParam, MethodCard, Recipe
from ..registry import register

CARD = register(
    MethodCard(
        name="threshold",
        title="FLAIR intensity threshold inside the brain (training-free baseline)",
        citation="msbench baseline; no paper",
        input_kind="voxel",
        modalities=("flair",),
        adapter="msbench.methods.threshold.adapter:ThresholdAdapter",
        defaults={"low": 1.0, "high": 3.0, "steps": 101},
        search_space={"low": FloatParam(0.8, 1.5), "high": FloatParam(2.0, 4.0)},
        recipes={b: Recipe(epochs=0, batch_size=1) for b in ("smoke", "quick", "paper")},
        choices={
            "normalisation": "FLAIR divided by the median brain intensity (brain = voxels > 0 in the skull-stripped "
            "image), so one threshold serves scans with different scaling.",
            "threshold": "chosen on the validation patient only, maximising the mean Dice over its scans, on a grid "
            "of `steps` values between `low` and `high` multiples of the brain median.",
        },
        trainable=False,
    )
)
