"""Several ``msbench run`` processes with the same command on one store share its jobs: each runs once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.store import file_lock

runner = CliRunner()

# A worker: logs every job it starts ("<run>/<job> <pid>") and slows it by 0.5 s (so the workers' jobs interleave),
# waits until every worker is up (so they really start at once), then runs the real CLI: `msbench run ...`.
WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    barrier, n, log = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    from msbench.benchmark import executors
    from msbench.benchmark.cli import app
    run_job = executors.run_job
    def counted(card, job, inputs, folder):
        with open(log, "a") as handle:
            handle.write(f"{job.run_id}/{job.job_id} {os.getpid()}\\n")
        time.sleep(0.5)
        return run_job(card, job, inputs, folder)
    executors.run_job = counted
    (barrier / f"ready-{os.getpid()}").touch()
    while len(list(barrier.iterdir())) < n:
        time.sleep(0.05)
    app(["run", *sys.argv[4:]], prog_name="msbench")
    """
)


def _args(results: Path, phantom: Path, *extra: str) -> list[str]:
    return [
        "--method", "threshold", "--dataset", "synth-ms", "--budget", "smoke", "--data-root", str(phantom),
        "--results", str(results), "--no-progress", "--no-baseline", *extra,
    ]  # fmt: skip


SUMMARY = re.compile(r"this process ran (\d+) jobs?; (\d+) ran in another process; (\d+) reused")


def test_two_identical_commands_split_the_jobs_run_each_once_and_both_end_with_the_whole_run(tmp_path, smoke_phantom):
    results, log, barrier = tmp_path / "shared", tmp_path / "jobs.log", tmp_path / "barrier"
    barrier.mkdir()
    args = _args(results, smoke_phantom, "--folds", "all", "--seeds", "0,1")  # 10 jobs
    env = {**os.environ, "MSBENCH_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(barrier), "2", str(log), *args],
            env={**env, "COLUMNS": "200"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs

    started = [line.split() for line in log.read_text().splitlines()]
    jobs = [job for job, _ in started]
    assert len(jobs) == 10 and len(set(jobs)) == 10, f"a job ran twice or not at all: {sorted(jobs)}"
    by_pid = {str(p.pid): sum(pid == str(p.pid) for _, pid in started) for p in procs}
    assert all(n >= 1 for n in by_pid.values()), f"one process ran everything: {by_pid}"
    for proc, output in zip(procs, outputs, strict=True):
        ran, elsewhere, reused = (int(v) for v in SUMMARY.search(output).groups())
        assert (ran, elsewhere, reused) == (by_pid[str(proc.pid)], 10 - ran, 0), output

    alone = runner.invoke(app, ["run", *_args(tmp_path / "alone", smoke_phantom, "--folds", "all", "--seeds", "0,1")])
    assert alone.exit_code == 0, alone.output
    keys = ["fold", "seed", "case", "reference"]
    shared, single = (
        pd.read_csv(next(r.glob("runs/threshold__*/cases.csv"))).sort_values(keys, ignore_index=True)
        for r in (results, tmp_path / "alone")
    )
    pd.testing.assert_frame_equal(shared, single)
    dice = re.search(r"threshold\s.*?(\d\.\d{3})", alone.output).group(1)
    for output in outputs:  # both commands end with the whole run's table (all 10 jobs, the same Dice)
        assert re.search(rf"threshold\s.*ok.*{dice}", output), output


def test_a_job_held_by_another_process_is_waited_for_and_resumed_here_when_it_is_let_go(tmp_path, smoke_phantom):
    results = tmp_path / "results"
    assert runner.invoke(app, ["run", *_args(results, smoke_phantom, "--folds", "0")]).exit_code == 0
    (run,) = (results / "runs").iterdir()
    held, release = threading.Event(), threading.Event()

    def other_process() -> None:  # holds fold 1's lock for a while, then dies without committing it
        with file_lock(run / "jobs" / ".fold1-seed0.lock", blocking=False) as got:
            assert got
            held.set()
            release.wait(timeout=60)

    holder = threading.Thread(target=other_process)
    holder.start()
    held.wait(timeout=10)
    threading.Timer(2.0, release.set).start()
    result = runner.invoke(app, ["run", *_args(results, smoke_phantom, "--folds", "0,1")], env={"COLUMNS": "200"})
    holder.join()
    assert result.exit_code == 0, result.output
    assert "waiting for 1 job(s) running in another process: threshold fold 1 seed 0" in result.output
    assert "this process ran 1 job; 0 ran in another process; 1 reused" in result.output
    assert sorted(p.name for p in (run / "jobs").iterdir() if not p.name.startswith(".")) == [
        "fold0-seed0",
        "fold1-seed0",
    ]
