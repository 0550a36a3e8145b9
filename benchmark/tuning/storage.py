"""Where studies live: the store's journal file by default, or any Optuna / SQLAlchemy storage URL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from ..store import file_lock

if TYPE_CHECKING:
    import optuna


TUNING_DIR = "tuning"
JOURNAL_NAME = "optuna-journal.log"


def default_storage(results: Path) -> str:
    """The journal file every local worker of a results store shares."""
    return str(Path(results) / TUNING_DIR / JOURNAL_NAME)


def is_url(storage: str) -> bool:
    return "://" in storage


def display_storage(storage: str) -> str:
    """The storage as it is recorded (manifest, index): a URL without its password."""
    if not is_url(storage):
        return str(Path(storage).resolve())
    from sqlalchemy.engine import make_url

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (redis://): keep it, it has no password part we know of
        return storage


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """A journal file path (default) or an Optuna / SQLAlchemy URL as an Optuna storage.

    Several workers may open a new RDB storage at once: Optuna's table creation then races, so a failed first open
    is retried once after the other worker made the tables.
    """
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if not is_url(storage):
        path = Path(storage)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if storage.startswith(("redis://", "rediss://")):
        return optuna.storages.get_storage(storage)
    for attempt in range(3):
        try:
            return RDBStorage(storage)
        except Exception as error:  # a driver missing, a server down, a malformed URL, a table-creation race
            if attempt == 2:
                raise ValueError(
                    f"--storage {display_storage(storage)}: cannot open this Optuna storage ({error})."
                ) from None
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


@contextmanager
def _ask_lock(storage: str) -> Iterator[None]:
    """Makes "count, then ask" atomic between the local workers of a journal file (a no-op for URLs)."""
    lock = nullcontext() if is_url(storage) else file_lock(Path(f"{storage}.msbench-ask.lock"))
    with lock:
        yield
