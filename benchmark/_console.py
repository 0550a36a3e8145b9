"""The CLI's consoles and its one way to fail on a user error (exit status 2, message printed verbatim)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)


def fail(message: str) -> None:
    """Prints ``error: message`` (no markup is read from it: ``[ray]`` stays ``[ray]``) and exits with status 2."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(2)
