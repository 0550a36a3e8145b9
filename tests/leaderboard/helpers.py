"""Small helpers of the leaderboard tests: run the app on a store, copy a store before damaging it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from msbench.leaderboard import APP


def app_on(results: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The leaderboard app, run once on ``results`` (as ``streamlit run app.py -- --results DIR`` would)."""
    monkeypatch.setattr(sys, "argv", ["app.py", "--results", str(results)])
    return AppTest.from_file(str(APP), default_timeout=60).run()


def copy_store(store: Path, to: Path) -> Path:
    """A copy of the shared store that a test may damage or extend (predictions and checkpoints left out)."""
    return Path(shutil.copytree(store, to / "results", ignore=shutil.ignore_patterns("work", "probabilities")))
