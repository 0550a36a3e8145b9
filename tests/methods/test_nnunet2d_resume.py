"""nnU-Net jobs resume too: ``kill -9`` of ``msbench run`` mid-training kills the nnU-Net worker with it, and the
rerun continues from nnU-Net's latest checkpoint instead of deleting the fit and starting again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PLUGIN = textwrap.dedent(
    """
    from dataclasses import replace

    from msbench.methods import get_card, register

    card = get_card("nnunet2d")
    smoke = card.recipe("smoke")
    register(replace(card, name="tinynnunet", recipes={**card.recipes, "smoke": replace(smoke, epochs=4)}))
    """
)


def _workers(folder: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "nnunet2d._worker" in command and str(folder) in command:
                found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_kill_9_mid_training_resumes_nnunet_from_its_latest_checkpoint(tmp_path, smoke_phantom):
    (tmp_path / "tiny_nnunet_plugin.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MSBENCH_PLUGINS": "tiny_nnunet_plugin"}
    results = tmp_path / "results"
    command = [
        sys.executable, "-m", "msbench.benchmark.cli", "run", "--method", "tinynnunet", "--data-root",
        str(smoke_phantom), "--results", str(results), "--no-progress", "--no-baseline",
    ]  # fmt: skip
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, latest = time.monotonic() + 400, None
    while time.monotonic() < deadline and first.poll() is None:
        found = list(results.glob("runs/*/jobs/.partial-fold0-seed0/work/nnunet/**/checkpoint_latest.pth"))
        if found:
            latest = found[0]
            break
        time.sleep(0.5)
    assert latest is not None and first.poll() is None, "nnU-Net never wrote a checkpoint before the run ended"
    first.send_signal(signal.SIGKILL)
    first.wait()
    partial = latest.parents[5]
    time.sleep(1.0)
    assert _workers(partial) == []  # the worker died with msbench: nothing trains on into the job folder

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    (job,) = results.glob("runs/*/jobs/fold0-seed0")
    log = next(job.glob("work/nnunet/nnunet_worker.log")).read_text()
    assert "msbench: resuming nnU-Net training from" in log
    assert (job / "train_log.csv").read_text().count("\n") == 1 + 4  # header and the 4 epochs, none twice
