"""The Streamlit leaderboard over a results store; its data layer imports pandas alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")


def launch(results: Path, *, port: int = 8501, headless: bool = True) -> int:
    """Runs ``streamlit run app.py -- --results DIR`` and returns its exit code."""
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.headless",
        str(headless).lower(),
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--results",
        str(Path(results).resolve()),
    ]
    return subprocess.call(command)


__all__ = ["APP", "launch"]
