"""A job's code hash covers every module that can change its numbers: editing one marks an old job stale."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.manifest import code_hash
from msbench.benchmark.metrics import SUITE_VERSION
from msbench.methods import get_card

# one file of each part that can change a job's numbers
NUMBER_CHANGING = (
    "msbench.methods.unet3d.adapter",  # the method
    "msbench.methods.engine.loop",  # fitting
    "msbench.methods.adapter",  # the contract every fit goes through
    "msbench.benchmark.fitting",  # the one door: hparams from card and overrides, seed, training grid, scoring
    "msbench.benchmark.job",  # the job's records and files
    "msbench.benchmark.predict",  # the training grid and the resampling back
    "msbench.benchmark.metrics._lesions",  # the metric code
    "msbench.datasets.nifti",  # how masks are read
    "msbench.datasets.preprocessing",  # what the network sees
)


def _edited(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """As if ``module``'s file had one more line on disk."""
    target = Path(importlib.util.find_spec(module).origin).resolve()
    read_bytes = Path.read_bytes

    def read(path: Path) -> bytes:
        data = read_bytes(path)
        return data + b"\n# edited\n" if path.resolve() == target else data

    monkeypatch.setattr(Path, "read_bytes", read)


@pytest.mark.parametrize("module", NUMBER_CHANGING)
def test_editing_any_module_that_changes_numbers_changes_the_code_hash(module, monkeypatch):
    adapter = get_card("unet3d").adapter
    before = code_hash(adapter, SUITE_VERSION)
    _edited(monkeypatch, module)
    assert code_hash(adapter, SUITE_VERSION) != before


def test_a_job_committed_before_an_edit_of_the_predict_module_is_run_again(tmp_path, smoke_phantom, monkeypatch):
    args = ["run", "--method", "threshold", "--dataset", "synth-ms", "--budget", "smoke", "--results", str(tmp_path),
            "--data-root", str(smoke_phantom), "--no-progress", "--no-baseline"]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 0
    (record_path,) = tmp_path.glob("runs/threshold__*/jobs/fold0-seed0/job.json")
    first = json.loads(record_path.read_text())
    _edited(monkeypatch, "msbench.benchmark.predict")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    second = json.loads(record_path.read_text())
    assert second["code_hash"] != first["code_hash"]  # run again by the edited code, not reused
