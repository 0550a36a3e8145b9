"""Card of the ``inter-rater`` reference row."""

from __future__ import annotations

from ..card import MethodCard, Recipe
from ..registry import register

CARD = register(
    MethodCard(
        name="inter-rater",
        title="Second rater scored against the primary reference (human ceiling)",
        citation="Carass et al., NeuroImage 2017 (ISBI 2015 raters); on synth-ms the phantom's simulated rater 2",
        input_kind="voxel",
        modalities=("flair",),
        adapter="msbench.methods.inter_rater.adapter:InterRaterAdapter",
        recipes={b: Recipe(epochs=0, batch_size=1) for b in ("smoke", "quick", "paper")},
        choices={
            "rater": "the case's second reference mask (mask2 on ISBI 2015 and synth-ms); "
            "cases with a single reference make this row fail with a clear error.",
        },
        trainable=False,
    )
)
