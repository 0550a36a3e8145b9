"""Fixtures of the tuning tests: one thread per fit, a throwaway PostgreSQL server."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch):
    """Tiny fits run fastest on one thread (``MSBENCH_NUM_THREADS`` reaches the engine, also in subprocesses)."""
    monkeypatch.setenv("MSBENCH_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def postgres_url():
    """A PostgreSQL server started for the test in a temporary folder (Unix socket only); its SQLAlchemy URL.

    Skipped, with the reason, when the driver, the server binaries or an unprivileged user to run them is missing.
    """
    pytest.importorskip("psycopg2", reason="no PostgreSQL driver: pip install psycopg2-binary (the dev extra has it)")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql (.ci/run does)")
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="msbench-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        runuser = shutil.which("runuser")
        if user is None or runuser is None:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip("running as root without a 'postgres' or 'nobody' user and runuser to start PostgreSQL")
        shutil.chown(folder, user=user)
        prefix = [runuser, "-u", user, "--"]
    data, port = folder / "data", _free_port()
    log = folder / "server.log"
    try:
        subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "msbench"], check=True,
                       capture_output=True, timeout=120)  # fmt: skip
        options = f"-k {folder} -p {port} -c listen_addresses=''"
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"],
                       check=True, capture_output=True, timeout=90)  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        detail = getattr(error, "stderr", b"") or b""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {error} {detail.decode(errors='replace')[-300:]}")
    try:
        yield f"postgresql+psycopg2://msbench@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
