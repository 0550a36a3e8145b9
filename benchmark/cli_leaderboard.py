"""``msbench leaderboard``: serve the Streamlit leaderboard, or export it (``msbench leaderboard export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from msbench import leaderboard  # leaderboard.launch looked up on use: streamlit loads inside it
from msbench.leaderboard.data import load_store

from ._console import err
from ._console import fail as _fail
from .store import check_results_dir

leaderboard_app = typer.Typer(
    help="Serve the Streamlit leaderboard over a results store (or export it: 'msbench leaderboard export').",
    invoke_without_command=True,
)

ResultsOption = Annotated[Path, typer.Option(help="Results store folder written by 'msbench run'.")]


@leaderboard_app.callback()
def serve(
    ctx: typer.Context,
    results: ResultsOption = Path("results"),
    port: Annotated[int, typer.Option(help="Port of the Streamlit server.")] = 8501,
    headless: Annotated[bool, typer.Option(help="Do not open a browser.")] = True,
    address: Annotated[
        str, typer.Option(help="Address to bind: localhost (this machine only), or e.g. 0.0.0.0 for every interface.")
    ] = "localhost",
) -> None:
    """Start the Streamlit leaderboard over a results store; prints its URL. SIGTERM stops the server too."""
    if ctx.invoked_subcommand is not None:
        return

    try:
        check_results_dir(results, write=False)
    except ValueError as error:
        _fail(str(error))
    typer.echo(f"msbench leaderboard at http://{address}:{port} (results store {results})")
    raise typer.Exit(leaderboard.launch(results, port=port, headless=headless, address=address))


@leaderboard_app.command("export")
def export(
    results: ResultsOption = Path("results"),
    format: Annotated[
        str, typer.Option("--format", help="md, csv, latex, html, or challenger (challengeR's long CSV).")
    ] = "md",
    out_file: Annotated[Path | None, typer.Option("--out", help="File to write (default: standard output).")] = None,
) -> None:
    """Export the leaderboard table (or challengeR's task/algorithm/case/metric/value CSV)."""
    # scipy.stats (the board's statistics): about 0.4 s of every 'msbench --help' at the top (python -X importtime)
    from msbench.leaderboard.export import FORMATS, write_export

    if format not in FORMATS:
        _fail(f"--format {format!r}: expected one of {', '.join(FORMATS)}.")
    try:
        check_results_dir(results, write=False)
        text = write_export(load_store(results), format, out_file)
    except (OSError, ValueError) as error:  # StoreError is a ValueError; OSError: --out cannot be written
        _fail(str(error))
        return
    if out_file is None:
        typer.echo(text, nl=False)
    else:
        err.print(f"wrote {out_file}", highlight=False)
