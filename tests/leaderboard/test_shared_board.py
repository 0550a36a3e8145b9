"""The leaderboard over a shared store: served from a read-only folder, bound to localhost unless told otherwise,
naming the store by its folder's name, never by where it lives on the server."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from msbench.benchmark.cli import app as cli
from msbench.leaderboard import streamlit_command

from .helpers import app_on, copy_store

#: The page as ``msbench leaderboard`` serves it, rendered by AppTest in a process of its own; prints what it shows.
SERVE = textwrap.dedent(
    """
    import sys
    from streamlit.testing.v1 import AppTest
    from msbench.leaderboard import APP

    sys.argv = ["app.py", "--results", sys.argv[1]]
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    for page in ("Leaderboard", "Statistics", "Cost", "Shift"):
        at.sidebar.radio(key="page").set_value(page).run()
        print("page", page, "exceptions", len(at.exception), "errors", [e.value for e in at.error])
    print("caption", [c.value for c in at.caption])
    """
)


def _texts(at) -> list[str]:
    elements = [*at.title, *at.caption, *at.markdown, *at.error, *at.info, *at.warning, *at.subheader]
    return [str(e.value) for e in elements]


def test_a_store_in_a_read_only_folder_is_served_and_exported(
    board_store, tmp_path, as_plain_user, read_only, folder_state
):
    shared = copy_store(board_store, tmp_path)
    with read_only(shared) as before:
        served = as_plain_user(str(shared), code=SERVE)
        exported = as_plain_user("leaderboard", "export", "--results", str(shared))
        after = folder_state(shared)
    assert served.returncode == 0, served.stderr[-3000:]
    lines = served.stdout.splitlines()
    assert [line for line in lines if line.startswith("page")] == [
        f"page {page} exceptions 0 errors []" for page in ("Leaderboard", "Statistics", "Cost", "Shift")
    ], served.stdout
    assert "results store: results" in served.stdout
    assert exported.returncode == 0 and "| threshold |" in exported.stdout, exported.stderr
    assert "damaged" not in exported.stdout + exported.stderr
    assert after == before  # not a byte, mode or time changed, no -wal/-shm made


def test_the_page_names_the_store_by_its_folder_not_its_path(board_store, tmp_path, monkeypatch):
    at = app_on(board_store, monkeypatch)
    assert not at.exception and "results store: results" in [c.value for c in at.caption]
    assert not [t for t in _texts(at) if str(board_store.resolve()) in t or str(board_store.parent) in t]
    broken = copy_store(board_store, tmp_path)
    (broken / "msbench.sqlite").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{broken}/msbench.sqlite{suffix}").unlink(missing_ok=True)
    at = app_on(broken, monkeypatch)
    (error,) = [e.value for e in at.error]
    assert "results/msbench.sqlite is damaged" in error and str(tmp_path) not in error
    assert "delete" not in error


def test_the_leaderboard_binds_localhost_unless_an_address_is_given(board_store, monkeypatch):
    command = streamlit_command(board_store)
    assert command[command.index("--server.address") + 1] == "localhost"
    calls = []
    monkeypatch.setattr("msbench.leaderboard.launch", lambda results, **kwargs: calls.append(kwargs) or 0)
    default = CliRunner().invoke(cli, ["leaderboard", "--results", str(board_store), "--port", "8600"])
    given = CliRunner().invoke(cli, ["leaderboard", "--results", str(board_store), "--address", "0.0.0.0"])
    assert default.exit_code == 0 and given.exit_code == 0, default.output + given.output
    assert [c["address"] for c in calls] == ["localhost", "0.0.0.0"]
    assert "http://localhost:8600" in default.output


def test_engine_checkpoints_get_the_mode_of_every_other_file(board_store):
    umask = os.umask(0o022)
    os.umask(umask)
    checkpoints = sorted(board_store.glob("runs/*/jobs/*/work/**/checkpoint.pt"))
    assert checkpoints  # the store's trained method keeps its model there
    expected = 0o666 & ~umask  # the umask the session's store was written under
    assert {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in checkpoints} == {
        str(p): oct(expected) for p in checkpoints
    }
