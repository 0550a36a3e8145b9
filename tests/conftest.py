"""Shared fixtures: one tiny synth-ms phantom per test session, generated at the smoke budget's grid."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SMOKE_RESOLUTION_MM = 3.0


@pytest.fixture(scope="session")
def smoke_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synth-ms phantom on the smoke grid (3 mm), 5 patients, as ``msbench run --budget smoke`` uses it."""
    from msbench.datasets.phantom import generate_synth_ms

    return generate_synth_ms(
        tmp_path_factory.mktemp("synth-ms") / "phantom", seed=0, resolution_mm=SMOKE_RESOLUTION_MM, progress=False
    )


@pytest.fixture(scope="session")
def smoke_cases(smoke_phantom: Path):
    from msbench.datasets import get_dataset

    return get_dataset("synth-ms").load_cases(smoke_phantom)


@pytest.fixture
def tiny_basicunet():
    """The real ``basicunet`` adapter and engine with a two-step recipe (width 4), registered as ``basicunet-tiny``:
    a trainable method cheap enough for the default suite."""
    from dataclasses import replace

    from msbench.methods import get_card, register
    from msbench.methods.registry import _CARDS

    card = get_card("basicunet")
    smoke = card.recipe("smoke")
    overrides = {**smoke.overrides, "base_width": 4}
    tiny = replace(smoke, epochs=2, iterations_per_epoch=1, batch_size=2, overrides=overrides)
    register(replace(card, name="basicunet-tiny", recipes={**card.recipes, "smoke": tiny}))
    yield "basicunet-tiny"
    _CARDS.pop("basicunet-tiny")


def _drop_permission_bypass() -> None:
    """In the child before exec: as root, give up the capabilities that ignore permission bits (DAC override, DAC read
    search, file owner), so the command meets the bits as any user does."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


@pytest.fixture(scope="session")
def as_plain_user(tmp_path_factory: pytest.TempPathFactory):
    """Runs ``python -m msbench.benchmark.cli ARGS`` (or ``python -c CODE``) as a user the permission bits bind.

    Tests run as root in CI containers, where ``chmod a-w`` binds nobody; the command then runs without root's
    bypass capabilities. Skips when that cannot be arranged (root without CAP_SETPCAP).
    """
    import os
    import subprocess
    import sys

    preexec = _drop_permission_bypass if os.geteuid() == 0 else None
    locked = tmp_path_factory.mktemp("locked")
    locked.chmod(0o555)
    try:
        probe = subprocess.run(
            [sys.executable, "-c", f"open({str(locked / 'x')!r}, 'w')"], preexec_fn=preexec, capture_output=True
        ).returncode
    except subprocess.SubprocessError:  # the preexec function failed: prctl refused
        probe = 0
    locked.chmod(0o755)
    if probe == 0:
        pytest.skip("cannot run a command that permission bits bind (root without CAP_SETPCAP)")

    def run(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
        command = [sys.executable, *(("-c", code) if code else ("-m", "msbench.benchmark.cli")), *args]
        env = {**os.environ, "COLUMNS": "200", "MSBENCH_NUM_THREADS": "1"}
        return subprocess.run(command, preexec_fn=preexec, capture_output=True, text=True, env=env, timeout=300)

    return run


FolderState = dict[str, tuple[int, int, int]]


def _folder_state(folder: Path) -> FolderState:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size, p.stat().st_mode) for p in
            sorted(folder.rglob("*"))}  # fmt: skip


@pytest.fixture
def folder_state() -> Callable[[Path], FolderState]:
    """Every file under a folder -> (mtime ns, size, mode): compare two to prove a command changed nothing."""
    return _folder_state


@pytest.fixture
def read_only() -> Callable[[Path], contextmanager]:
    """``with read_only(store) as before:`` the store as a user who may read but not write it finds it.

    No ``-wal``/``-shm`` (as a store no writer has open leaves it) and every write bit off; ``before`` is the
    folder's state then. The write bits come back when the block ends.
    """

    @contextmanager
    def frozen(store: Path) -> Iterator[FolderState]:
        for suffix in ("-wal", "-shm"):
            Path(f"{store}/msbench.sqlite{suffix}").unlink(missing_ok=True)
        for path in (store, *store.rglob("*")):
            path.chmod(path.stat().st_mode & ~0o222)
        try:
            yield _folder_state(store)
        finally:
            for path in (store, *store.rglob("*")):
                path.chmod(path.stat().st_mode | 0o200)

    return frozen
