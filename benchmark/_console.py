"""The CLI's consoles, its way to print a table whole, and its one way to fail on a user error (exit status 2)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

out = Console()
err = Console(stderr=True)


def fail(message: str) -> None:
    """Prints ``error: message`` (no markup is read from it: ``[ray]`` stays ``[ray]``) and exits with status 2."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def print_table(table: Table, console: Console | None = None) -> None:
    """Prints a table so that no header or id is cut, folded or replaced by "…".

    A table that fits the console is printed as it is. Piped into a file or a log (not a terminal) it is printed at its
    own natural width, one line per row however long. In a terminal too narrow for it, each row becomes a block: its
    first cell (the row's id) on a line of its own, then ``header: value`` pairs.
    """
    console = console or out
    natural = Measurement.get(console, console.options.update_width(100_000), table).maximum
    if natural <= console.width:
        console.print(table)
    elif not console.is_terminal:
        Console(file=console.file, width=natural, color_system=None, highlight=False).print(table)
    else:
        _print_blocks(table, console)


def _print_blocks(table: Table, console: Console) -> None:
    """Each row as ``header: id``, then indented ``header: value`` pairs packed into lines, none split."""
    for part in (table.title, table.caption):
        if part:
            console.print(part, highlight=False)
    columns = [(str(c.header), list(c.cells)) for c in table.columns]
    for i in range(table.row_count):
        pairs = [Text.assemble(f"{header}: ", Text.from_markup(str(cells[i]))) for header, cells in columns if cells[i]]
        if not pairs:
            continue
        console.print(pairs[0], highlight=False)
        line = Text("  ")
        for pair in pairs[1:]:
            if len(line) > 2 and len(line) + 2 + len(pair) > console.width:
                console.print(line, highlight=False)
                line = Text("  ")
            line += Text("; ") + pair if len(line) > 2 else pair
        if len(line) > 2:
            console.print(line, highlight=False)
        if table.rows[i].end_section and i + 1 < table.row_count:
            console.rule(style="dim")  # the table's section rule (e.g. methods above, reference rows below)
