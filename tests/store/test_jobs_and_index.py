"""The results store as users hit it: two processes at once, kill -9 mid-training, code changes, the index."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.store import dump, reindex, run_table

runner = CliRunner()

PLUGIN = textwrap.dedent(
    '''
    """A real trainable method (basicunet's adapter and engine) with a tiny recipe, registered as a user plugin."""
    from dataclasses import replace

    from msbench.methods import get_card, register

    card = get_card("basicunet")
    smoke = card.recipe("smoke")
    tiny = replace(smoke, epochs=EPOCHS, iterations_per_epoch=2, batch_size=2,
                   overrides={**smoke.overrides, "base_width": 4, "plateau_patience": 100})
    register(replace(card, name="tinyunet", recipes={**card.recipes, "smoke": tiny}))
    '''
)


def _env(tmp_path: Path, epochs: int = 4) -> dict[str, str]:
    (tmp_path / "tiny_plugin.py").write_text(PLUGIN.replace("EPOCHS", str(epochs)))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MSBENCH_PLUGINS": "tiny_plugin", "MSBENCH_NUM_THREADS": "1"}
    return env


def _command(results: Path, phantom: Path, method: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "msbench.benchmark.cli", "run", "--method", method, "--dataset", "synth-ms",
        "--budget", "smoke", "--data-root", str(phantom), "--results", str(results), "--no-progress", *extra,
    ]  # fmt: skip


def _job_dirs(results: Path) -> list[str]:
    return sorted(f"{p.parent.parent.name}/{p.name}" for p in results.glob("runs/*/jobs/*") if p.is_dir())


def test_two_processes_on_one_store_commit_every_job_once_and_the_index_equals_a_reindex(tmp_path, smoke_phantom):
    results = tmp_path / "results"
    env = {**os.environ, "MSBENCH_NUM_THREADS": "1"}
    first = subprocess.Popen(_command(results, smoke_phantom, "threshold", "--folds", "all", "--no-baseline"), env=env)
    second = subprocess.Popen(
        _command(results, smoke_phantom, "inter-rater,threshold", "--folds", "all", "--no-baseline"), env=env
    )
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    jobs = _job_dirs(results)
    assert len(jobs) == 10 and not [j for j in jobs if j.split("/")[1].startswith(".")]  # 2 runs x 5 folds, once
    before = dump(results)
    counts = reindex(results)
    assert {k: counts[k] for k in ("runs", "jobs", "shifted_case_metrics")} == {
        "runs": 2,
        "jobs": 10,
        "shifted_case_metrics": 0,
    }
    after = dump(results)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(frame, after[table], obj=table)
    assert len(before["jobs"]) == 10 and (before["jobs"]["status"] == "ok").all()
    cases = pd.read_csv(next(results.glob("runs/threshold__*/cases.csv")))
    inter_rater = pd.read_csv(next(results.glob("runs/inter-rater__*/cases.csv")))
    assert counts["case_metrics"] == len(cases) + len(inter_rater)  # every (scan, reference) row of both runs
    assert sorted(cases.loc[cases["reference"] == "mask1", "fold"].unique()) == [0, 1, 2, 3, 4]


def test_kill_9_during_training_resumes_from_the_checkpoint_with_identical_metrics(tmp_path, smoke_phantom):
    env = _env(tmp_path)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(
        _command(killed, smoke_phantom, "tinyunet", "--no-baseline"), env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 240
    history = None
    while time.monotonic() < deadline and process.poll() is None:
        found = list(killed.glob("runs/tinyunet__*/jobs/.partial-fold0-seed0/work/**/history.csv"))
        if found and len(pd.read_csv(found[0])) >= 2:
            history = found[0]
            break
        time.sleep(0.2)
    assert history is not None and process.poll() is None, "training never reached epoch 2 before finishing"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(pd.read_csv(history))
    assert not list(killed.glob("runs/tinyunet__*/jobs/fold0-seed0"))  # nothing committed by the killed process

    resumed = subprocess.run(
        _command(killed, smoke_phantom, "tinyunet", "--no-baseline"), env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from its checkpoint after epoch" in resumed.stderr
    (run,) = killed.glob("runs/tinyunet__*")
    record = json.loads((run / "jobs" / "fold0-seed0" / "job.json").read_text())
    assert record["status"] == "ok" and record["resumed_from_epoch"] >= done >= 2
    assert len(pd.read_csv(run / "jobs" / "fold0-seed0" / "train_log.csv")) == 4

    fresh = subprocess.run(_command(clean, smoke_phantom, "tinyunet", "--no-baseline"), env=env, capture_output=True)
    assert fresh.returncode == 0
    (clean_run,) = clean.glob("runs/tinyunet__*")
    metrics = ["dice", "ppv", "sensitivity", "hd95_mm", "ltpr", "lfpr", "tp", "fp", "fn"]
    pd.testing.assert_frame_equal(
        pd.read_csv(run / "cases.csv")[metrics], pd.read_csv(clean_run / "cases.csv")[metrics], check_exact=True
    )


def _cli_run(results: Path, phantom: Path, *extra: str):
    args = ["run", "--method", "threshold", "--dataset", "synth-ms", "--data-root", str(phantom), "--results"]
    return runner.invoke(app, [*args, str(results), "--no-progress", "--no-baseline", "--folds", "0", *extra])


def test_a_job_made_by_other_code_is_rerun_or_kept_as_stale_on_request(tmp_path, smoke_phantom):
    assert _cli_run(tmp_path, smoke_phantom).exit_code == 0
    (run,) = (tmp_path / "runs").iterdir()
    record_path = run / "jobs" / "fold0-seed0" / "job.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "code_hash": "other-code"}))  # as if an older msbench made it

    kept = _cli_run(tmp_path, smoke_phantom, "--reuse-stale")
    assert kept.exit_code == 0, kept.output
    assert json.loads(record_path.read_text())["code_hash"] == "other-code"
    assert json.loads((run / "manifest.json").read_text())["stale_jobs"] == ["fold0-seed0"]
    assert dump(tmp_path)["jobs"]["stale"].tolist() == [1]

    old_suite = {**record, "code_hash": "other-code", "suite_version": "1.0.0+nan-policy-1"}
    record_path.write_text(json.dumps(old_suite))  # scored by a suite whose numbers differ: never kept
    refused = _cli_run(tmp_path, smoke_phantom, "--reuse-stale")
    assert refused.exit_code == 0 and json.loads(record_path.read_text())["suite_version"] != "1.0.0+nan-policy-1"
    record_path.write_text(json.dumps({**record, "code_hash": "other-code"}))

    rerun = _cli_run(tmp_path, smoke_phantom)
    assert rerun.exit_code == 0, rerun.output
    assert "committed by other code" in rerun.output
    assert json.loads(record_path.read_text())["code_hash"] == record["code_hash"]
    assert json.loads((run / "manifest.json").read_text())["stale_jobs"] == []


def test_store_files_honour_the_umask(tmp_path, smoke_phantom):
    old = os.umask(0o022)
    try:
        assert _cli_run(tmp_path, smoke_phantom).exit_code == 0
    finally:
        os.umask(old)
    (run,) = (tmp_path / "runs").iterdir()
    for path in (run / "manifest.json", run / "summary.csv", run / "jobs" / "fold0-seed0" / "job.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_an_old_store_is_refused_with_what_to_do(tmp_path, smoke_phantom):
    (tmp_path / "runs" / "threshold__old" / "folds" / "fold0-seed0").mkdir(parents=True)
    (tmp_path / "index.csv").write_text("run_id\n")
    result = _cli_run(tmp_path, smoke_phantom)
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "older msbench results store" in text and "new --results folder" in text
    assert not (tmp_path / "msbench.sqlite").exists()


def test_index_with_another_schema_is_refused_and_reindex_rebuilds_it(tmp_path, smoke_phantom):
    import sqlite3

    assert _cli_run(tmp_path, smoke_phantom).exit_code == 0
    with sqlite3.connect(tmp_path / "msbench.sqlite") as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(ValueError, match="msbench store reindex"):
        run_table(tmp_path)
    (tmp_path / "msbench.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"msbench.sqlite{suffix}").unlink(missing_ok=True)
    result = runner.invoke(app, ["store", "reindex", "--results", str(tmp_path)])
    assert result.exit_code == 0 and "indexed 1 runs and 1 jobs" in result.output
    import pandas as pd

    cases = pd.read_csv(next(tmp_path.glob("runs/*/jobs/*/cases.csv")))
    # One scored case per (scan, reference) row of cases.csv; no cross-dataset run here.
    assert f"({len(cases)} scored cases, 0 shifted scored cases, " in " ".join(result.output.split())
    assert run_table(tmp_path)["method"].tolist() == ["threshold"] * len(run_table(tmp_path))


def test_runs_list_and_show_name_the_jobs(tmp_path, smoke_phantom):
    assert _cli_run(tmp_path, smoke_phantom).exit_code == 0
    listed = runner.invoke(app, ["runs", "list", "--results", str(tmp_path)])
    assert listed.exit_code == 0 and "threshold__synth-ms" in listed.output
    shown = runner.invoke(app, ["runs", "show", "threshold", "--results", str(tmp_path)], env={"COLUMNS": "250"})
    assert shown.exit_code == 0 and "fold0-seed0" in shown.output and "ok" in shown.output
    missing = runner.invoke(app, ["runs", "show", "nope", "--results", str(tmp_path)])
    assert missing.exit_code == 2 and "matches no run" in missing.output
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["runs", "list", "--results", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and "holds no msbench results" in " ".join(empty.output.split())


def test_ray_executor_runs_jobs_as_tasks_with_the_local_executors_metrics(tmp_path, smoke_phantom):
    pytest.importorskip("ray")
    env = {**os.environ, "MSBENCH_NUM_THREADS": "1"}
    common = ("--folds", "0,1", "--no-baseline")
    local = subprocess.run(_command(tmp_path / "local", smoke_phantom, "threshold", *common), env=env)
    on_ray = subprocess.run(
        _command(tmp_path / "ray", smoke_phantom, "threshold", *common, "--executor", "ray", "--cpus-per-job", "1"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert local.returncode == 0 and on_ray.returncode == 0, on_ray.stderr[-3000:]
    (ray_run,) = (tmp_path / "ray" / "runs").iterdir()
    records = [json.loads((ray_run / "jobs" / j / "job.json").read_text()) for j in ("fold0-seed0", "fold1-seed0")]
    assert all(r["status"] == "ok" for r in records)
    assert (ray_run / "jobs" / "fold1-seed0" / "predictions").is_dir()  # the task's files came back to the driver
    frames = [pd.read_csv(next((tmp_path / name).glob("runs/*/cases.csv"))) for name in ("local", "ray")]
    metrics = ["case", "reference", "dice", "hd95_mm", "ltpr", "lfpr", "tp", "fp", "fn"]
    pd.testing.assert_frame_equal(frames[0][metrics], frames[1][metrics], check_exact=True)


def test_unknown_executor_and_missing_ray_fail_before_anything_is_written(tmp_path, smoke_phantom, monkeypatch):
    result = _cli_run(tmp_path / "r", smoke_phantom, "--executor", "slurm")
    assert result.exit_code == 2 and "expected one of local, ray" in result.output
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    missing = _cli_run(tmp_path / "r", smoke_phantom, "--executor", "ray")
    assert missing.exit_code == 2 and 'pip install -e ".[ray]"' in " ".join(missing.output.split())
    assert not (tmp_path / "r").exists()


def test_runs_export_writes_plain_tables_and_one_prediction_csv_per_job(tmp_path, smoke_phantom):
    assert _cli_run(tmp_path, smoke_phantom, "--folds", "0,1").exit_code == 0
    (run,) = (p.name for p in (tmp_path / "runs").iterdir())
    result = runner.invoke(app, ["runs", "export", run, "--results", str(tmp_path), "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    names = sorted(str(p.relative_to(tmp_path / "x")) for p in (tmp_path / "x").rglob("*") if p.is_file())
    assert names == [
        "cases.csv", "jobs.csv", "lesions.csv", "manifest.json", "predictions/fold0-seed0.csv",
        "predictions/fold1-seed0.csv", "summary.csv",
    ]  # fmt: skip
    predictions = pd.read_csv(tmp_path / "x" / "predictions" / "fold0-seed0.csv")
    cases = pd.read_csv(tmp_path / "runs" / run / "jobs" / "fold0-seed0" / "cases.csv")
    assert sorted(predictions["case"]) == sorted(set(cases["case"]))
    assert all(Path(p).is_file() for p in predictions["prediction_file"])
    first = cases[(cases["reference"] == "mask1")].set_index("case")["dice"]
    assert predictions.set_index("case")["dice_mask1"].to_dict() == pytest.approx(first.to_dict())
    again = runner.invoke(app, ["runs", "export", run, "--results", str(tmp_path), "--out", str(tmp_path / "x")])
    assert again.exit_code == 2 and "not an empty folder" in " ".join(again.output.split())
