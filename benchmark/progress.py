"""The live job table of ``msbench run``: every job's state, its current epoch, elapsed time and the run's ETA.

In a terminal it redraws in place (rich ``Live``); elsewhere (a CI log, ``--no-progress``) it prints one line when a
job starts and one when it ends, so a log still shows where a long run is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .job import epochs_done


@dataclass
class _Row:
    label: str
    folder: Path
    epochs: int | None
    state: str = "queued"
    started: float | None = None
    finished: float | None = None
    note: str = ""


@dataclass
class JobBoard:
    """Tracks the jobs of one ``msbench run`` and shows them; use as a context manager."""

    console: Console
    live: bool = True
    rows: dict[str, _Row] = field(default_factory=dict)
    _display: Live | None = None
    _t0: float = field(default_factory=time.monotonic)

    def __enter__(self) -> JobBoard:
        if self.live and self.console.is_terminal and self.rows:
            self._display = Live(
                console=self.console, get_renderable=self.render, refresh_per_second=2, transient=False
            )
            self._display.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._display is not None:
            self._display.__exit__(*exc)  # type: ignore[arg-type]

    def add(self, key: str, label: str, folder: Path, epochs: int | None, state: str = "queued") -> None:
        self.rows[key] = _Row(label, folder, epochs, state)

    def started(self, key: str) -> None:
        row = self.rows[key]
        row.state, row.started = "running", time.monotonic()
        if self._display is None:
            self.console.print(f"{row.label}: started", highlight=False)

    def finished(self, key: str, status: str, note: str = "") -> None:
        row = self.rows[key]
        row.state, row.finished, row.note = status, time.monotonic(), note
        if self._display is None:
            took = f" in {row.finished - (row.started or row.finished):.0f} s" if row.started else ""
            self.console.print(f"{row.label}: {status}{took}{' - ' + note if note else ''}", highlight=False)

    def eta_seconds(self) -> float | None:
        """Remaining time: mean duration of the jobs run so far times the jobs still queued or running."""
        durations = [r.finished - r.started for r in self.rows.values() if r.finished and r.started]
        left = sum(r.state in ("queued", "running") for r in self.rows.values())
        return sum(durations) / len(durations) * left if durations and left else None

    def render(self) -> Table:
        now = time.monotonic()
        counts = {s: sum(r.state == s for r in self.rows.values()) for s in ("ok", "running", "failed", "queued")}
        eta = self.eta_seconds()
        title = (
            f"msbench run: {counts['ok']} done, {counts['running']} running, {counts['failed']} failed, "
            f"{counts['queued']} queued; {now - self._t0:.0f} s elapsed"
            + (f", about {eta:.0f} s left" if eta is not None else "")
        )
        table = Table(title=title, title_justify="left")
        for column in ("job", "state", "epoch", "elapsed", "note"):
            table.add_column(column)
        colours = {"ok": "green", "reused": "green", "failed": "red", "running": "yellow"}
        for row in self.rows.values():
            epoch = "-"
            if row.state == "running" and row.epochs:
                epoch = f"{epochs_done(row.folder / 'work') if row.folder.exists() else 0}/{row.epochs}"
            end = row.finished or now
            elapsed = f"{end - row.started:.0f} s" if row.started else ""
            state = f"[{colours.get(row.state, 'white')}]{row.state}[/]"
            table.add_row(row.label, state, epoch, elapsed, row.note)
        return table
