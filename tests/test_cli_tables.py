"""The CLI's tables read whole at 80 columns and piped into a log: no header split, no id cut, no lone "…"."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

from msbench.benchmark import _console
from msbench.benchmark.cli import app
from msbench.benchmark.cli_profile import profile_rich_table

runner = CliRunner()

RUNS_HEADERS = ("run", "status", "jobs ok", "failed", "mean Dice", "updated (UTC)")
PROFILE_HEADERS = (
    "method", "batch x input", "params", "FLOPs fwd", "train peak MiB", "infer peak MiB", "train samples/s",
    "train voxels/s", "latency p50 s", "p95 s", "volumes/h", "note",
)  # fmt: skip
PROFILE = {
    "device": "cpu", "device_name": "x86_64", "memory_kind": "process RSS", "method": "fcdensenet_clstm",
    "input_shape": [2, 3, 64, 64], "params_total": 1.2e6, "flops_forward": 3.4e9, "peak_train_bytes": 2**30,
    "peak_infer_bytes": 2**29, "train_samples_per_s": 12.5, "train_voxels_per_s": 5.1e4, "latency_p50_s": 0.51,
    "latency_p95_s": 0.62, "volumes_per_hour": 7000.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory, smoke_phantom):
    results = tmp_path_factory.mktemp("tables") / "results"
    args = ["run", "--method", "threshold", "--data-root", str(smoke_phantom), "--results", str(results), "--folds",
            "0", "--no-progress", "--no-baseline"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    (run,) = (results / "runs").iterdir()
    return results, run.name


def _terminal(monkeypatch: pytest.MonkeyPatch, width: int = 80) -> io.StringIO:
    """The CLI's console as an 80-column terminal; returns what it prints."""
    buffer = io.StringIO()
    monkeypatch.setattr(_console, "out", Console(file=buffer, width=width, force_terminal=True, color_system=None))
    return buffer


def _whole(text: str, words: tuple[str, ...]) -> None:
    flat = " ".join(text.split())
    for word in words:
        assert word in flat, f"{word!r} is cut or split in:\n{text}"
    assert "…" not in text, text


def test_runs_list_piped_at_80_columns_keeps_every_header_and_run_id_whole(store):
    results, run_id = store
    listed = runner.invoke(app, ["runs", "list", "--results", str(results)], env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    _whole(listed.output, (*RUNS_HEADERS, run_id))
    assert any(run_id in line and "ok" in line for line in listed.output.splitlines())  # one line per run


def test_runs_list_in_an_80_column_terminal_shows_each_run_whole_within_80_columns(store, monkeypatch):
    results, run_id = store
    printed = _terminal(monkeypatch)
    assert runner.invoke(app, ["runs", "list", "--results", str(results)]).exit_code == 0
    text = printed.getvalue()
    _whole(text, (*(f"{h}:" for h in RUNS_HEADERS[1:]), run_id))
    assert all(len(line) <= 80 for line in text.splitlines()), text


def test_runs_show_piped_keeps_the_job_ids_and_headers_whole(store):
    results, run_id = store
    shown = runner.invoke(app, ["runs", "show", run_id, "--results", str(results)], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    _whole(shown.output, ("fold0-seed0", "resumed at epoch", "code hash", run_id))


@pytest.mark.parametrize("terminal", [False, True])
def test_profile_table_headers_stay_whole_piped_and_in_an_80_column_terminal(terminal):
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=terminal, color_system=None)
    _console.print_table(profile_rich_table([PROFILE]), console)
    text = buffer.getvalue()
    _whole(text, (*PROFILE_HEADERS[:-1], "fcdensenet_clstm", "3.4 G"))
    if terminal:
        assert all(len(line) <= 80 for line in text.splitlines()), text
