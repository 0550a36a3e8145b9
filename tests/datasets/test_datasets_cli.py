"""What a new user hits with ``msbench datasets``: plain messages for plain mistakes, every generated phantom listed."""

from __future__ import annotations

import shutil
import subprocess
import sys

from typer.testing import CliRunner

from msbench.benchmark.cli import app

runner = CliRunner()


def test_synth_user_errors_print_the_message_without_a_traceback(tmp_path):
    result = runner.invoke(app, ["datasets", "synth", "--out", str(tmp_path / "p"), "--resolution", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "resolution" in result.output
    assert not (tmp_path / "p").exists()


def test_a_killed_generation_leaves_no_partial_phantom_behind(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".phantom.partial-{dead.pid}"
    (stale / "training").mkdir(parents=True)
    result = runner.invoke(
        app, ["datasets", "synth", "--out", str(tmp_path / "phantom"), "--resolution", "6", "--patients", "1"]
    )
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phantom"]


def test_list_and_info_show_every_generated_resolution(tmp_path, smoke_phantom, monkeypatch):
    monkeypatch.setenv("MSBENCH_CACHE", str(tmp_path))
    monkeypatch.delenv("MSBENCH_SYNTH_ROOT", raising=False)
    from msbench.datasets.synth_ms import default_root

    copy = default_root(resolution_mm=3.0)
    copy.parent.mkdir(parents=True)
    shutil.copytree(smoke_phantom, copy)
    listed = runner.invoke(app, ["datasets", "list"], env={"COLUMNS": "300"})
    assert listed.exit_code == 0 and copy.name in listed.output
    info = runner.invoke(app, ["datasets", "info", "synth-ms"], env={"COLUMNS": "300"})
    assert info.exit_code == 0, info.output
    assert "training01_01" in info.output and "not generated" not in info.output


def _stop_generation(monkeypatch) -> None:
    """The generator stops at its first patient: a test sees what is said before the 2.8 GB are written."""
    from msbench.datasets.phantom import generate

    def stop(*args, **kwargs):
        raise RuntimeError("generation stopped by the test")

    monkeypatch.setattr(generate, "_generate_patient", stop)


def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MSBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MSBENCH_SYNTH_ROOT", raising=False)
    return tmp_path / "cache" / "synth-ms"


def test_realism_says_where_and_how_big_before_it_generates_the_phantom_into_the_cache(tmp_path, monkeypatch):
    cache = _cache(tmp_path, monkeypatch)
    _stop_generation(monkeypatch)
    result = runner.invoke(app, ["datasets", "realism", "--png", str(tmp_path / "r.png")])
    assert isinstance(result.exception, RuntimeError)
    assert not [p for p in cache.parent.rglob("*") if p.is_file()]  # nothing half-written is left either
    line = next(x for x in result.output.splitlines() if x.startswith("writing the synth-ms phantom"))
    assert "(about 2.8 GB)" in line and f"to {cache}/seed0-1mm-v" in line
    assert line.endswith("; set MSBENCH_CACHE to move it")


def test_a_run_says_where_the_phantom_goes_and_a_cached_one_is_reused_without_a_word(
    tmp_path, monkeypatch, smoke_phantom
):
    cache = _cache(tmp_path, monkeypatch)
    args = ["run", "--method", "threshold", "--folds", "0", "--no-baseline", "--no-progress"]
    _stop_generation(monkeypatch)
    stopped = runner.invoke(app, [*args, "--results", str(tmp_path / "r1")])
    assert isinstance(stopped.exception, RuntimeError)
    assert f"writing the synth-ms phantom (about 0.1 GB) to {cache}/seed0-3mm-v" in stopped.output
    monkeypatch.undo()
    cache = _cache(tmp_path, monkeypatch)
    from msbench.datasets.synth_ms import default_root

    shutil.copytree(smoke_phantom, default_root(resolution_mm=3.0))
    reused = runner.invoke(app, [*args, "--results", str(tmp_path / "r2")])
    assert reused.exit_code == 0, reused.output
    assert "writing the synth-ms phantom" not in reused.output
