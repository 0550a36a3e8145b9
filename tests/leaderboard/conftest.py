"""One results store made by a real smoke run, shared by the leaderboard's tests (seconds, not minutes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from msbench.methods import Adapter, FitReport, MethodCard, Prediction, Recipe


class FailingAdapter(Adapter):
    """A method whose fit always fails: its run must be shown apart, never ranked."""

    def fit(self, train: Sequence, val: Sequence) -> FitReport:
        raise RuntimeError("this method always fails")

    def predict(self, case) -> Prediction:  # pragma: no cover - never reached
        raise AssertionError


def build_store(out: Path, phantom: Path) -> Path:
    """threshold (flair, and flair+t1), inter-rater, the tiny trainable basicunet and a failing method on the phantom's
    isbi2015 protocol, and threshold on the leaking rondinella2023 protocol."""
    from msbench.benchmark.runner import RunRequest, run_benchmark
    from msbench.methods import get_card, register
    from msbench.methods.registry import _CARDS

    card = get_card("basicunet")
    smoke = card.recipe("smoke")
    tiny = replace(
        smoke, epochs=2, iterations_per_epoch=1, batch_size=2, overrides={**smoke.overrides, "base_width": 4}
    )
    register(replace(card, name="basicunet-tiny", recipes={**card.recipes, "smoke": tiny}))
    failing = MethodCard(
        name="failing", title="failing", citation="test", input_kind="3D", modalities=("flair",),
        adapter=f"{__name__}:FailingAdapter", recipes={b: Recipe(epochs=1) for b in ("smoke", "quick", "paper")},
    )  # fmt: skip
    register(failing)
    try:
        common = {"data_root": phantom, "progress": False, "baseline": False, "device": "cpu"}
        run_benchmark(RunRequest("threshold,inter-rater,basicunet-tiny,failing", "synth-ms", out, **common))
        run_benchmark(RunRequest("threshold", "synth-ms", out, modalities=("flair", "t1"), **common))
        run_benchmark(RunRequest("threshold", "synth-ms", out, protocol="rondinella2023", **common))
    finally:
        _CARDS.pop("basicunet-tiny")
        _CARDS.pop("failing")
    return out


@pytest.fixture(scope="session")
def board_store(tmp_path_factory: pytest.TempPathFactory, smoke_phantom: Path) -> Path:
    """The smoke store every leaderboard test reads (never written by a test: copy it first)."""
    return build_store(tmp_path_factory.mktemp("board") / "results", smoke_phantom)
