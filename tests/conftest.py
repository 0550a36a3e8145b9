"""Shared fixtures: one tiny synth-ms phantom per test session, generated at the smoke budget's grid."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SMOKE_RESOLUTION_MM = 3.0


@pytest.fixture(scope="session")
def smoke_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synth-ms phantom on the smoke grid (3 mm), 5 patients, as ``msbench run --budget smoke`` uses it."""
    from msbench.datasets.phantom import generate_synth_ms

    return generate_synth_ms(
        tmp_path_factory.mktemp("synth-ms") / "phantom", seed=0, resolution_mm=SMOKE_RESOLUTION_MM, progress=False
    )


@pytest.fixture(scope="session")
def smoke_cases(smoke_phantom: Path):
    from msbench.datasets import get_dataset

    return get_dataset("synth-ms").load_cases(smoke_phantom)


@pytest.fixture
def tiny_basicunet():
    """The real ``basicunet`` adapter and engine with a two-step recipe (width 4), registered as ``basicunet-tiny``:
    a trainable method cheap enough for the default suite."""
    from dataclasses import replace

    from msbench.methods import get_card, register
    from msbench.methods.registry import _CARDS

    card = get_card("basicunet")
    smoke = card.recipe("smoke")
    overrides = {**smoke.overrides, "base_width": 4}
    tiny = replace(smoke, epochs=2, iterations_per_epoch=1, batch_size=2, overrides=overrides)
    register(replace(card, name="basicunet-tiny", recipes={**card.recipes, "smoke": tiny}))
    yield "basicunet-tiny"
    _CARDS.pop("basicunet-tiny")
