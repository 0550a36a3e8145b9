"""The install: four folders as msbench.*, a console script, nothing installed as a bare top-level `datasets`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from msbench.benchmark.cli import app

REPO = Path(__file__).resolve().parents[1]


def test_four_folders_import_as_msbench_subpackages():
    import msbench.benchmark
    import msbench.datasets
    import msbench.leaderboard
    import msbench.methods

    for module, folder in [
        (msbench.benchmark, "benchmark"),
        (msbench.methods, "methods"),
        (msbench.datasets, "datasets"),
        (msbench.leaderboard, "leaderboard"),
    ]:
        installed = Path(module.__file__)  # the checkout (editable install) or site-packages (tox's wheel)
        assert installed.parent.name == folder and installed.parent.parent.name in ("msbench", REPO.name)
        assert installed.read_bytes() == (REPO / folder / "__init__.py").read_bytes()


def test_no_bare_top_level_datasets_package(tmp_path):
    code = "import importlib.util as u; s = u.find_spec('datasets'); print(s.origin if s else None)"
    origin = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert str(REPO) not in origin


def test_test_helpers_and_dead_modules_do_not_ship():
    import importlib.util

    # browser helpers live in tests/leaderboard; the case iterator had no caller (issue #24)
    for name in ("msbench.leaderboard.browser", "msbench.methods.engine.testing", "msbench.datasets.iteration"):
        assert importlib.util.find_spec(name) is None, name


def test_committed_splits_ship_as_package_data():
    from msbench.datasets.splits import SPLITS_DIR

    assert (SPLITS_DIR / "synth-ms__isbi2015.json").is_file()


def test_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "evaluate", "leaderboard", "datasets", "methods"):
        assert command in result.output
    sub = CliRunner().invoke(app, ["datasets", "--help"])
    for command in ("list", "info", "synth", "realism"):
        assert command in sub.output
