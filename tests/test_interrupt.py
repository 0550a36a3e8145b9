"""Ctrl-C and SIGTERM stop ``msbench run`` with one line: what was kept, what the job in flight saved, how to resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

# The real CLI, with the threshold fit of fold 1 turned into a long fit that has logged 3 epochs (the per-epoch log a
# trainable method writes) when it touches the marker file, then trains on until it is stopped.
WORKER = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    # Ctrl-C as a terminal delivers it: a shell starts a background job (pytest under '... &') with SIGINT ignored,
    # which this process would inherit
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import pandas as pd
    from msbench.benchmark.cli import app
    from msbench.methods.threshold.adapter import ThresholdAdapter
    marker = Path(sys.argv[1])
    fit = ThresholdAdapter.fit
    def slow_fit(self, *args):
        if "fold1" in str(self.context.workdir):
            pd.DataFrame({"epoch": [1, 2, 3], "seconds": [1.0, 1.0, 1.0]}).to_csv(
                self.context.workdir / "history.csv", index=False)
            marker.touch()
            time.sleep(300)
        return fit(self, *args)
    ThresholdAdapter.fit = slow_fit
    app(["run", *sys.argv[2:]], prog_name="msbench")
    """
)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_says_what_was_kept_and_how_to_resume_and_exits_with_the_shells_status(
    tmp_path, smoke_phantom, signum, status
):
    results, marker = tmp_path / "results", tmp_path / "fitting"
    args = ["--method", "threshold", "--data-root", str(smoke_phantom), "--results", str(results), "--folds", "0,1",
            "--no-baseline", "--no-progress"]  # fmt: skip
    env = {**os.environ, "MSBENCH_NUM_THREADS": "1", "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(marker), *args], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "fold 1 never started"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    line = "interrupted: 1 of 2 jobs committed, threshold fold 1 seed 0 saved at epoch 3; run the same command again"
    assert line in stderr
    assert "Traceback" not in stderr
    (run,) = (results / "runs").iterdir()
    assert json.loads((run / "jobs" / "fold0-seed0" / "job.json").read_text())["status"] == "ok"
    assert (run / "jobs" / ".partial-fold1-seed0" / "work" / "history.csv").is_file()  # kept to resume from
