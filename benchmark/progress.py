"""The live job table of ``msbench run``: every job's state, its current epoch, elapsed time and the run's ETA.

In a terminal it redraws in place (rich ``Live``); elsewhere (a CI log, ``--no-progress``) it prints one line when a
job starts and one when it ends, so a log still shows where a long run is.

The ETA is built from what was measured in this run: a job of a method that already finished here is expected to
take as long again; otherwise a trainable job's epochs are timed from its per-epoch log (``seconds`` per epoch, the
engine's and nnunet2d's), so the estimate moves as soon as the first epoch of a method ends. Jobs with neither are
counted as "not yet timed" rather than guessed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .job import epoch_log, find_epoch_log

LOG_LOOKUP_S = 5.0
"""How often a running job's folder is searched for its per-epoch log until one appears (nnU-Net's folder is big)."""

ELSEWHERE = "other process"
"""The state of a job another process is running: this one waits for it at the end."""


@dataclass
class _Row:
    label: str
    group: str
    folder: Path
    epochs: int | None
    state: str = "queued"
    started: float | None = None
    finished: float | None = None
    note: str = ""
    log: Path | None = None
    looked: float = float("-inf")
    epoch_seconds: list[float] = field(default_factory=list)

    def read_epochs(self, now: float) -> list[float]:
        """Seconds of each epoch the job's log holds so far (re-read on every call once the log is found)."""
        if self.log is None and now - self.looked >= LOG_LOOKUP_S and (self.folder / "work").exists():
            self.looked = now
            try:
                self.log = find_epoch_log(self.folder / "work")
            except OSError:  # the folder was committed (renamed) while it was searched
                self.log = None
        if self.log is not None:
            self.epoch_seconds = epoch_log(self.log) or self.epoch_seconds
        return self.epoch_seconds


@dataclass(frozen=True)
class Eta:
    """Seconds left for the jobs that could be timed, and how many could not be (no job or epoch measured yet)."""

    seconds: float
    untimed: int

    def describe(self) -> str:
        left = f"about {duration(self.seconds)} left" if self.seconds or not self.untimed else ""
        untimed = f"{self.untimed} job(s) not yet timed" if self.untimed else ""
        return " + ".join(part for part in (left, untimed) if part)


def duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.5 h``: a wall time at the precision a reader plans with."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class JobBoard:
    """Tracks the jobs of one ``msbench run`` and shows them; use as a context manager."""

    console: Console
    live: bool = True
    rows: dict[str, _Row] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _display: Live | None = None
    _t0: float | None = None

    def __enter__(self) -> JobBoard:
        self._t0 = self._now()
        if self.live and self.console.is_terminal and self.rows:
            self._display = Live(
                console=self.console, get_renderable=self.render, refresh_per_second=2, transient=False
            )
            self._display.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._display is not None:
            self._display.__exit__(*exc)  # type: ignore[arg-type]

    def _now(self) -> float:
        return self.clock()

    def add(self, key: str, label: str, folder: Path, epochs: int | None, group: str = "") -> None:
        """A job of the run; ``group`` (the run id) is what its duration is estimated from."""
        self.rows[key] = _Row(label, group or key.split("/")[0], folder, epochs)

    def started(self, key: str) -> None:
        row = self.rows[key]
        row.state, row.started, row.note = "running", self._now(), ""
        if self._display is None:
            self._line(f"{row.label}: started")

    def finished(self, key: str, status: str, note: str = "", *, here: bool = True) -> None:
        """The job ended: here (``note`` is its error, if any), in another process (``here`` False) or reused."""
        row = self.rows[key]
        row.state, row.finished, row.note = status, self._now(), note if here else "in another process"
        if self._display is not None or status == "reused":
            return
        if not here:
            self._line(f"{row.label}: {status} in another process")
            return
        took = f" in {duration(row.finished - row.started)}" if row.started is not None else ""
        self._line(f"{row.label}: {status}{took}{' - ' + note if note else ''}")

    def elsewhere(self, key: str) -> None:
        """Another process holds the job's lock: it runs there, and this process will wait for it."""
        row = self.rows[key]
        if row.state != ELSEWHERE and self._display is None:
            self._line(f"{row.label}: running in another process")
        row.state = ELSEWHERE

    def note(self, text: str) -> None:
        """One line about the run as a whole (e.g. what it waits for), above the live table or in the log."""
        self._line(text)

    def _line(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)  # one log line, never re-wrapped

    def eta(self) -> Eta:
        """Time left for this process's running and queued jobs, and for the jobs it waits for in other processes.

        A job is expected to take the mean duration of its run's jobs finished here; without one, its epochs times
        the mean measured epoch of its run (so a running job's remaining epochs count, not its whole length). This
        process's jobs run one after another (their times add up); other processes' run beside them (the longest
        counts).
        """
        now = self._now()
        took: dict[str, list[float]] = {}
        per_epoch: dict[str, list[float]] = {}
        for row in self.rows.values():
            if row.started is not None and row.finished is not None and row.state in ("ok", "failed"):
                took.setdefault(row.group, []).append(row.finished - row.started)
            if row.epochs:
                active = row.state in ("running", ELSEWHERE)
                seconds = row.read_epochs(now) if active else row.epoch_seconds
                per_epoch.setdefault(row.group, []).extend(s for s in seconds if s == s)  # NaN: not timed
        own, others, untimed = 0.0, 0.0, 0
        for row in self.rows.values():
            if row.state not in ("queued", "running", ELSEWHERE):
                continue
            left = _left(row, took.get(row.group), per_epoch.get(row.group), now)
            if left is None:
                untimed += 1
            elif row.state == ELSEWHERE:
                others = max(others, left)
            else:
                own += left
        return Eta(max(own, others), untimed)

    def render(self) -> Table:
        now = self._now()
        states = ("ok", "reused", "running", "failed", "queued", ELSEWHERE)
        counts = {s: sum(r.state == s for r in self.rows.values()) for s in states}
        eta = self.eta().describe()
        title = (
            f"msbench run: {counts['ok'] + counts['reused']} done, {counts['running']} running, "
            f"{counts['failed']} failed, {counts['queued']} queued"
            + (f", {counts[ELSEWHERE]} in another process" if counts[ELSEWHERE] else "")
            + f"; {duration(now - (self._t0 or now))} elapsed"
            + (f", {eta}" if eta else "")
        )
        table = Table(title=title, title_justify="left")
        table.add_column("job", overflow="fold")
        for column in ("state", "epoch", "elapsed", "note"):
            table.add_column(column)
        colours = {"ok": "green", "reused": "green", "failed": "red", "running": "yellow", ELSEWHERE: "cyan"}
        for row in self.rows.values():
            epoch = "-"
            if row.state in ("running", ELSEWHERE) and row.epochs:
                epoch = f"{len(row.read_epochs(now))}/{row.epochs}"
            end = row.finished or now
            elapsed = duration(end - row.started) if row.started is not None else ""
            state = f"[{colours.get(row.state, 'white')}]{row.state}[/]"
            table.add_row(row.label, state, epoch, elapsed, row.note)
        return table


def _left(row: _Row, took: list[float] | None, per_epoch: list[float] | None, now: float) -> float | None:
    """Seconds a queued or running job still needs, from its run's measured jobs and epochs (None: none measured).

    A running job needs the larger of its remaining epochs' time and a whole job's time less its elapsed time (the
    epochs leave out prediction and scoring). A job in another process has no start time here: its epochs decide.
    """
    mean_job = sum(took) / len(took) if took else None
    mean_epoch = sum(per_epoch) / len(per_epoch) if per_epoch else None
    if row.state == "queued":
        if mean_job is not None:
            return mean_job
        return row.epochs * mean_epoch if row.epochs and mean_epoch is not None else None
    by_epochs = None
    if row.epochs and mean_epoch is not None:
        by_epochs = max(row.epochs - len(row.epoch_seconds), 0) * mean_epoch
    by_job = None
    if mean_job is not None and (row.started is not None or by_epochs is None):
        by_job = max(mean_job - (now - row.started if row.started is not None else 0.0), 0.0)
    known = [v for v in (by_epochs, by_job) if v is not None]
    return max(known) if known else None
