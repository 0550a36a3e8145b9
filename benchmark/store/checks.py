"""Checks of a ``--results`` folder: one before every command that takes one, one while a command writes the store.

:func:`check_results_dir` refuses a folder the command cannot use; :func:`store_writes` also turns the operating
system's refusals mid-write (a full disk, a permission lost) into one line.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._db import INDEX_NAME, open_index, read_index

#: Below this much free space a writing command is refused before it starts: a job's files (predictions, checkpoint,
#: tables) take tens of MiB on the smoke grid, and a command stopped by a full disk wastes the work it did.
MIN_FREE_BYTES = 200 * 2**20
_FULL = (errno.ENOSPC, errno.EDQUOT)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def check_results_dir(results: Path, *, write: bool, index: bool = True) -> Path:
    """Refuses a ``--results`` folder the command cannot use, before it reads or writes anything.

    Args:
        results: The ``--results`` folder.
        write: The command writes the store (run, tune, profile, reindex): the folder, or the nearest existing folder
            above it, must be writable with ``MIN_FREE_BYTES`` free. Readers need an existing, readable store (a
            ``runs/`` folder or an index).
        index: Also open an existing index (read-only for readers) so a damaged one is named now, not after hours of
            training; ``store reindex``, which repairs it, passes False.

    Returns:
        ``results`` as a Path.

    Raises:
        ValueError: One line naming the option, the problem and what to do.
    """
    results = Path(results)
    option = f"--results {results}"
    if results.exists() and not results.is_dir():
        raise ValueError(f"{option} is a file, not a folder; pass the results folder (a new folder for a first run).")
    if write:
        _check_writable(results, option)
    elif not results.exists():
        raise ValueError(f"{option} does not exist; pass the folder 'msbench run' wrote, or run it there first.")
    elif not os.access(results, os.R_OK | os.X_OK):
        raise ValueError(f"{option}: this user may not read the folder; ask its owner for read access.")
    elif not (results / "runs").is_dir() and not (results / INDEX_NAME).is_file():
        raise ValueError(
            f"{option} holds no msbench results (no runs/ folder, no {INDEX_NAME}); run 'msbench run ... "
            f"--results {results}' first, or pass the folder 'msbench run' wrote."
        )
    if index and (results / INDEX_NAME).is_file():
        try:
            with open_index(results) if write else read_index(results):
                pass
        except FileNotFoundError:  # removed meanwhile: a writer makes it again
            pass
    return results


def _check_writable(results: Path, option: str) -> None:
    existing = next(p for p in (results.absolute(), *results.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"{option}: {existing} is a file, so the folder cannot be made there; pass another folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "the folder" if existing == results.absolute() else f"{existing}, where the folder would be made"
        raise ValueError(
            f"{option}: this user may not write {where}; pass a folder you can write (reading commands such as "
            "'msbench runs list' and 'msbench leaderboard' need no write access)."
        )
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise ValueError(
            f"{option}: the disk holding it has {free / 2**20:.0f} MiB free, msbench needs at least "
            f"{MIN_FREE_BYTES / 2**20:.0f} MiB to write results; free some space or pass a folder on another disk."
        )


@contextmanager
def store_writes(results: Path, *, index: bool = True) -> Iterator[None]:
    """Checks ``results`` for writing, then turns the OS refusing a write during the block into one ValueError line.

    A full disk or a permission lost mid-run is the user's to fix, not a traceback: what was committed stays (jobs
    commit by one rename), and the same command resumes once the disk has room. ``index``: as in
    :func:`check_results_dir`.
    """
    check_results_dir(results, write=True, index=index)
    try:
        yield
    except OSError as error:
        if error.errno in _FULL:
            raise ValueError(
                f"the disk is full ({error}); what --results {results} holds is kept: free some space and run the "
                "same command again to resume."
            ) from error
        if error.errno in _DENIED:  # the store, or a file the command reads (data, a scratch folder)
            raise ValueError(f"{error}; check that this user may read and write it.") from error
        raise
