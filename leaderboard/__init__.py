"""The Streamlit leaderboard over a results store; its data layer imports pandas alone (no torch, no streamlit)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

APP = Path(__file__).with_name("app.py")
#: Streamlit settings of the served page: no "Deploy" button or developer menu (``client.toolbarMode`` viewer), no
#: usage statistics, no file watcher (a results store is not source code).
STREAMLIT_OPTIONS = {
    "client.toolbarMode": "viewer",
    "browser.gatherUsageStats": "false",
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
}
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def streamlit_command(
    results: Path, *, port: int = 8501, headless: bool = True, address: str = "localhost"
) -> list[str]:
    """The ``python -m streamlit run app.py ... -- --results DIR`` command line ``launch`` runs.

    ``address`` is always passed: Streamlit alone binds every interface, and the pages show patients' scans.
    """
    options = {**STREAMLIT_OPTIONS, "server.port": str(port), "server.headless": str(headless).lower()}
    options["server.address"] = address
    flags = [item for key, value in options.items() for item in (f"--{key}", value)]
    return [sys.executable, "-m", "streamlit", "run", str(APP), *flags, "--", "--results", str(Path(results).resolve())]


def launch(results: Path, *, port: int = 8501, headless: bool = True, address: str = "localhost") -> int:
    """Serves the leaderboard until the Streamlit child exits; returns its exit code.

    SIGTERM, SIGINT and SIGHUP sent to this process are forwarded to the child, which is then waited for (and killed
    after 10 s), so stopping ``msbench leaderboard`` never leaves a server holding the port.
    """
    child = subprocess.Popen(streamlit_command(results, port=port, headless=headless, address=address))
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    deadline: float | None = None
    try:
        while True:
            try:
                code = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if received and deadline is None:
                    deadline = time.monotonic() + 10.0
                if deadline is not None and time.monotonic() > deadline:
                    child.kill()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 + received[0] if received else code


__all__ = ["APP", "STREAMLIT_OPTIONS", "launch", "streamlit_command"]
