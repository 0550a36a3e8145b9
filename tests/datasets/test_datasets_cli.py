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
