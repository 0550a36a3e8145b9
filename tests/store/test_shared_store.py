"""A store a lab can share: readers never write it, every file honours the umask, and every command that takes
``--results`` answers a bad folder or a bad index with one line (exit status 2), never a traceback."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import stat
from collections import namedtuple
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.store import read_index, run_table

runner = CliRunner(env={"COLUMNS": "400"})  # one message, one line: phrases are not cut by wrapping


def _run_args(results: Path, phantom: Path, *extra: str) -> list[str]:
    return [
        "run", "--method", "threshold", "--dataset", "synth-ms", "--data-root", str(phantom), "--results",
        str(results), "--no-progress", "--no-baseline", "--folds", "0", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, smoke_phantom: Path) -> Path:
    """A threshold run's store (never changed by a test: copy it first)."""
    results = tmp_path_factory.mktemp("shared") / "results"
    assert runner.invoke(app, _run_args(results, smoke_phantom)).exit_code == 0
    return results


def _copy(store: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(store, tmp_path / "results"))


def _one_line_error(result, *phrases: str) -> None:
    """Exit status 2, no traceback, and every phrase in the message."""
    cli = hasattr(result, "exit_code")
    text = " ".join((result.output if cli else result.stdout + result.stderr).split())
    assert (result.exit_code if cli else result.returncode) == 2, text
    assert "Traceback" not in text and "error:" in text, text
    for phrase in phrases:
        assert phrase in text, text


# ------------------------------------------------------------------------------------------------ reading, sharing
def test_a_reader_connection_cannot_write_the_index(store):
    with read_index(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("CREATE TABLE written_by_a_reader (a)")


def test_a_read_only_store_is_listed_shown_and_exported_without_a_word_about_damage(
    store, tmp_path, as_plain_user, read_only, folder_state
):
    shared = _copy(store, tmp_path)
    with read_only(shared) as before:
        listed = as_plain_user("runs", "list", "--results", str(shared))
        shown = as_plain_user("runs", "show", "threshold", "--results", str(shared))
        exported = as_plain_user("leaderboard", "export", "--results", str(shared), "--format", "csv")
        run_id = next((shared / "runs").iterdir()).name
        copied = as_plain_user("runs", "export", run_id, "--results", str(shared), "--out", str(tmp_path / "x"))
        writer = as_plain_user(*_run_args(shared, Path("/nonexistent")))
        after = folder_state(shared)
    for result in (listed, shown, exported, copied):
        text = result.stdout + result.stderr
        assert result.returncode == 0, text
        assert "damaged" not in text and "delete" not in text, text
    assert "threshold__synth-ms" in listed.stdout and "fold0-seed0" in shown.stdout
    assert "threshold" in exported.stdout
    assert writer.returncode == 2 and "may not write the folder" in " ".join(writer.stderr.split())
    assert after == before  # not a byte, mode or time changed, no -wal/-shm made


def test_a_read_only_store_without_an_index_asks_its_owner_to_build_one(store, tmp_path, as_plain_user, read_only):
    shared = _copy(store, tmp_path)
    (shared / "msbench.sqlite").unlink()
    with read_only(shared):
        listed = as_plain_user("runs", "list", "--results", str(shared))
        exported = as_plain_user("leaderboard", "export", "--results", str(shared))
    for result in (listed, exported):
        _one_line_error(result, "has no index", "ask the store's owner", "msbench store reindex")


def test_a_damaged_index_is_called_damaged_and_reindex_moves_it_aside(store, tmp_path):
    results = _copy(store, tmp_path)
    index = results / "msbench.sqlite"
    index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    _one_line_error(runner.invoke(app, ["runs", "list", "--results", str(results)]), "is damaged", "store reindex")
    rebuilt = runner.invoke(app, ["store", "reindex", "--results", str(results)])
    assert rebuilt.exit_code == 0, rebuilt.output
    (aside,) = results.glob("msbench.sqlite.damaged-*")
    assert f"moved the damaged index aside to {aside}" in " ".join(rebuilt.output.split())
    assert aside.stat().st_size == index.stat().st_size // 2 or aside.read_bytes()  # kept, not deleted
    assert run_table(results)["method"].unique().tolist() == ["threshold"]


def test_a_foreign_sqlite_file_is_refused_by_readers_and_moved_aside_by_reindex(store, tmp_path):
    results = _copy(store, tmp_path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{results}/msbench.sqlite{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(results / "msbench.sqlite") as conn:
        conn.execute("CREATE TABLE notes (text)")
    _one_line_error(runner.invoke(app, ["runs", "list", "--results", str(results)]), "not an msbench index")
    rebuilt = runner.invoke(app, ["store", "reindex", "--results", str(results)])
    assert rebuilt.exit_code == 0 and "moved the damaged index aside" in rebuilt.output
    (aside,) = results.glob("msbench.sqlite.damaged-*")
    with sqlite3.connect(aside) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]


def test_every_file_of_a_store_honours_the_umask_checkpoints_and_index_included(tmp_path, smoke_phantom):
    from msbench.methods.engine.checkpoint import save_atomic

    old = os.umask(0o002)
    try:
        save_atomic({"version": 1}, tmp_path / "work" / "checkpoint.pt")
        result = runner.invoke(app, _run_args(tmp_path / "results", smoke_phantom))
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((tmp_path / "work" / "checkpoint.pt").stat().st_mode) == 0o664
    files = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert tmp_path / "results" / "msbench.sqlite" in files and len(files) > 10
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert {k: v for k, v in modes.items() if v != "0o664"} == {}


def test_the_files_a_ray_task_sends_back_get_the_umask_too(tmp_path):
    from msbench.benchmark.executors import pack, unpack

    work = tmp_path / "task" / "work"
    work.mkdir(parents=True)
    (work / "checkpoint.pt").write_bytes(b"weights")
    (work / "checkpoint.pt").chmod(0o600)  # as the worker wrote it (another machine, another umask)
    work.chmod(0o700)
    old = os.umask(0o002)
    try:
        unpack(pack(tmp_path / "task"), tmp_path / "committed")
    finally:
        os.umask(old)
    modes = [stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "committed" / "work", *tmp_path.glob("c*/w*/*.pt"))]
    assert modes == [0o775, 0o664]
    assert (tmp_path / "committed" / "work" / "checkpoint.pt").read_bytes() == b"weights"


# --------------------------------------------------------------------------------------- --results on every command
READERS = {
    "runs list": ["runs", "list"],
    "runs show": ["runs", "show", "threshold"],
    "runs export": ["runs", "export", "threshold__synth-ms", "--out", "OUT"],
    "leaderboard": ["leaderboard", "--port", "1"],
    "leaderboard export": ["leaderboard", "export"],
    "gate": ["gate", "--baseline", "OUT/baseline.toml"],
    "predict": ["predict", "scan.nii.gz", "--run", "threshold", "--out", "OUT"],
}
WRITERS = {
    "run": ["run", "--method", "threshold", "--data-root", "PHANTOM", "--no-progress", "--folds", "0"],
    "tune": ["tune", "--method", "basicunet", "--data-root", "PHANTOM", "--trials", "1", "--no-progress"],
    "profile": ["profile", "--method", "threshold"],
    "store reindex": ["store", "reindex"],
}


def _invoke(args: list[str], results: Path, tmp_path: Path, phantom: Path):
    args = [a.replace("OUT", str(tmp_path / "out")).replace("PHANTOM", str(phantom)) for a in args]
    return runner.invoke(app, [*args, "--results", str(results)])


@pytest.mark.parametrize("command", [*READERS, *WRITERS])
def test_results_that_is_a_file_is_one_line(command, tmp_path, smoke_phantom):
    (tmp_path / "results").write_text("not a folder")
    result = _invoke({**READERS, **WRITERS}[command], tmp_path / "results", tmp_path, smoke_phantom)
    _one_line_error(result, "--results", "is a file, not a folder")


@pytest.mark.parametrize("command", [*READERS, "store reindex"])
def test_missing_results_for_a_reader_is_one_line(command, tmp_path, smoke_phantom):
    result = _invoke({**READERS, **WRITERS}[command], tmp_path / "missing", tmp_path, smoke_phantom)
    _one_line_error(result, "--results", "does not exist")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("command", [*(c for c in READERS if c != "predict"), "run", "profile"])
def test_a_damaged_index_is_named_before_the_command_starts(command, store, tmp_path, smoke_phantom):
    """(predict reads the job folders alone: a damaged index does not stop it.)"""
    results = _copy(store, tmp_path)
    index = results / "msbench.sqlite"
    index.write_bytes(index.read_bytes()[:2048])
    result = _invoke({**READERS, **WRITERS}[command], results, tmp_path, smoke_phantom)
    _one_line_error(result, "msbench.sqlite is damaged", "msbench store reindex")


@pytest.mark.parametrize("command", list(WRITERS))
def test_a_full_disk_is_refused_before_anything_is_written(
    command, store, tmp_path, smoke_phantom, monkeypatch, folder_state
):
    from msbench.benchmark.store import checks

    results = _copy(store, tmp_path)
    before = folder_state(results)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda path: usage(2**40, 2**40 - 2**20, 2**20))
    result = _invoke(WRITERS[command], results, tmp_path, smoke_phantom)
    _one_line_error(result, "--results", "1 MiB free", "free some space")
    assert folder_state(results) == before


@pytest.mark.parametrize(
    ("code", "phrases"),
    [
        (errno.ENOSPC, ("the disk is full", "No space left on device", "run the same command again")),
        (errno.EACCES, ("Permission denied", "manifest.json", "check that this user may read and write it")),
    ],
)
def test_a_disk_filling_up_or_a_permission_lost_during_a_run_is_one_line_and_keeps_the_store(
    code, phrases, store, tmp_path, smoke_phantom, monkeypatch
):
    from msbench.benchmark.store import files

    results = _copy(store, tmp_path)
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file() and "jobs" in p.parts}
    real = files.atomic_path

    @contextmanager
    def full(path: Path):
        if path.name == "manifest.json":
            raise OSError(code, os.strerror(code), str(path))
        with real(path) as tmp:
            yield tmp

    monkeypatch.setattr(files, "atomic_path", full)
    result = runner.invoke(app, [*_run_args(results, smoke_phantom)[:-1], "1"])  # fold 1 this time
    _one_line_error(result, *phrases)
    assert [str(p) for p, data in before.items() if p.read_bytes() != data] == []
    # The index and every committed job are as they were.
    assert run_table(results).drop_duplicates("run_id")["n_jobs_ok"].tolist() == [1]


@pytest.mark.parametrize("command", list(WRITERS))
def test_an_unwritable_results_folder_is_one_line(command, store, tmp_path, smoke_phantom, as_plain_user):
    results = _copy(store, tmp_path)
    results.chmod(0o555)
    args = [a.replace("OUT", str(tmp_path / "out")).replace("PHANTOM", str(smoke_phantom)) for a in WRITERS[command]]
    try:
        result = as_plain_user(*args, "--results", str(results))
        inside = as_plain_user(*args, "--results", str(results / "new"))
    finally:
        results.chmod(0o755)
    _one_line_error(result, "--results", "this user may not write the folder")
    if command != "store reindex":  # reindex needs an existing store
        _one_line_error(inside, "may not write", "where the folder would be made")


@pytest.mark.parametrize(("version", "advice"), [(99, "upgrade msbench"), (0, "use a new --results folder")])
def test_a_run_of_another_manifest_schema_is_refused_with_what_to_do(
    store, tmp_path, smoke_phantom, version, advice, folder_state
):
    """The manifest's schema versions are read on open: resuming, exporting and reindexing refuse another one."""
    import json

    results = _copy(store, tmp_path)
    (manifest_path,) = results.glob("runs/threshold__*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["schema_version"] = version
    manifest_path.write_text(json.dumps(manifest))

    def files() -> dict:  # SQLite's -wal and -shm come and go with readers' connections
        return {k: v for k, v in folder_state(results).items() if not k.endswith(("-wal", "-shm"))}

    before = files()
    run_id = manifest["run_id"]
    for args in (
        _run_args(results, smoke_phantom),
        ["runs", "export", run_id, "--results", str(results), "--out", str(tmp_path / "out")],
        ["store", "reindex", "--results", str(results)],
    ):
        _one_line_error(runner.invoke(app, args), "manifest.json: schema_version", advice)
    assert files() == before  # nothing ran, nothing was rewritten
