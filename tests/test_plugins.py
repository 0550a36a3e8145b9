"""User methods and datasets registered the way plugins are elsewhere: Python entry points, or the registry's API."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = textwrap.dedent(
    '''
    """An installed plugin: one method (a renamed threshold card) and one dataset (synth-ms under another name)."""
    from dataclasses import replace

    from msbench.datasets import get_dataset, register_dataset
    from msbench.methods import get_card, register

    register(replace(get_card("threshold"), name="my-threshold"))
    register_dataset(replace(get_dataset("synth-ms"), name="my-phantom", env_var="MY_PHANTOM_ROOT"))
    '''
)
ENTRY_POINTS = """\
[msbench.methods]
mine = msbench_demo_plugin

[msbench.datasets]
mine = msbench_demo_plugin
"""


def _install(site: Path, entry_points: str = ENTRY_POINTS, module: str = PLUGIN) -> dict[str, str]:
    """A distribution on ``site`` as pip leaves one: the module and a dist-info folder with its entry points."""
    (site / "msbench_demo_plugin.py").write_text(module)
    info = site / "msbench_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: msbench-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    return {**os.environ, "PYTHONPATH": str(site)}


def _msbench(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "msbench.benchmark.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_an_installed_plugin_registers_its_method_and_dataset_through_entry_points(tmp_path):
    env = _install(tmp_path)
    methods = _msbench(env, "methods", "list")
    assert methods.returncode == 0, methods.stderr
    assert "my-threshold" in methods.stdout and "unet3d" in methods.stdout
    datasets = _msbench(env, "datasets", "list")
    assert datasets.returncode == 0, datasets.stderr
    assert "my-phantom" in datasets.stdout and "synth-ms" in datasets.stdout and "isbi2015" in datasets.stdout


def test_a_broken_plugin_is_named_in_one_line_not_a_traceback(tmp_path):
    env = _install(tmp_path, module="raise RuntimeError('half-installed')\n")
    result = _msbench(env, "methods", "list")
    assert result.returncode != 0
    assert "msbench-demo-plugin" in result.stderr and "half-installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dataset_registered_before_the_first_lookup_hides_no_built_in_one():
    script = textwrap.dedent(
        """
        from dataclasses import replace
        from msbench.datasets import registry
        from msbench.datasets.registry import DatasetSpec, get_dataset, list_datasets, register_dataset

        assert not registry._LOADED  # nothing has looked a dataset up yet in this process
        register_dataset(DatasetSpec(name="mine", title="my scans", layout="<root>/*.nii.gz", env_var="MINE",
                                     protocols=(), references=(), loader="mine:load"))
        names = list_datasets()
        assert {"mine", "synth-ms", "isbi2015", "lesjak-3dms"} <= set(names), names
        assert get_dataset("synth-ms").name == "synth-ms"
        try:
            register_dataset(replace(get_dataset("isbi2015")))
        except ValueError as err:
            assert "registered twice" in str(err)
        else:
            raise AssertionError("a second isbi2015 was accepted")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
