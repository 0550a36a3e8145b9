"""``msbench store`` and ``msbench runs``: the results store's index, its runs and their jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from msbench.leaderboard.data import load_index
from msbench.methods import get_card

from . import manifest as mf
from ._console import fail as _fail
from ._console import out, print_table
from .metrics.specs import SUITE_VERSION
from .options import INTER_RATER
from .store import check_results_dir, check_store, export_run, find_run, job_table, reindex, run_table, store_writes

store_app = typer.Typer(help="The results store's SQLite index.", no_args_is_help=True)
runs_app = typer.Typer(help="List and inspect the runs of a results store.", no_args_is_help=True)


ResultsOption = Annotated[Path, typer.Option(help="Results store folder.")]


def _check_results(results: Path, *, index: bool = True) -> None:
    try:
        check_results_dir(results, write=False, index=index)
    except ValueError as error:
        _fail(str(error))


@store_app.command("reindex")
def store_reindex(results: ResultsOption = Path("results")) -> None:
    """Rebuild the SQLite index (msbench.sqlite) from the committed job folders."""
    # numba: the tuning package imports the fitting door and its metric kernels (cli.py's docstring)
    from .tuning import index_journal

    _check_results(results, index=False)
    set_aside = lambda path: out.print(f"moved the damaged index aside to {path}", highlight=False)  # noqa: E731
    try:
        with store_writes(results, index=False):
            counts = reindex(results, on_set_aside=set_aside)
            if (results / "tuning").is_dir():  # the store rebuilds from its own files; the journal holds the studies
                counts["studies"] = index_journal(results)
    except ValueError as error:
        _fail(str(error))
        return
    rows = ", ".join(
        f"{counts[key]} {name}"
        for key, name in (
            ("case_metrics", "scored cases"),
            ("shifted_case_metrics", "shifted scored cases"),
            ("lesions", "lesions"),
            ("profiles", "profiles"),
            ("studies", "tuning studies"),
        )
        if key in counts
    )
    out.print(f"indexed {counts['runs']} runs and {counts['jobs']} jobs into {results / 'msbench.sqlite'} ({rows})")


@store_app.command("check")
def store_check(results: ResultsOption = Path("results")) -> None:
    """Compare every run and job file with the index: say what is out of date or damaged and what to run."""
    _check_results(results)
    try:
        problems = check_store(results, rater_methods=(INTER_RATER,))
        code, notes = ([], []) if problems else code_problems(results)  # damaged files first: the index may not read
        problems += code
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
        return
    for line in (*problems, *notes):
        out.print(line, highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    out.print(f"{results}: every run and job file matches the index.", highlight=False)


def code_problems(results: Path) -> tuple[list[str], list[str]]:
    """Runs whose jobs ran other code of their method than this checkout's (the code hash a job would get now).

    Returns:
        The problems, and notes for runs of a method this installation does not register (a plugin that is not
        installed): their code cannot be checked, which is not counted as a problem.
    """
    methods = run_table(results).drop_duplicates("run_id").set_index("run_id")["method"]
    jobs = job_table(results)
    problems, notes = [], []
    for run_id, method in methods.sort_index().items():
        try:
            current = mf.code_hash(get_card(method).adapter, SUITE_VERSION)
        except KeyError:
            notes.append(f"note: run {run_id}: method {method!r} is not registered here; its code is unchecked.")
            continue
        run_jobs = jobs[jobs["run_id"] == run_id]
        other = sorted(run_jobs.loc[run_jobs["code_hash"] != current, "job_id"])
        if other:
            problems.append(
                f"run {run_id}: jobs {', '.join(other)} ran other code of {method!r} than this checkout's (code hash "
                f"{current}); 'msbench run' with the run's options reruns them."
            )
    return problems, notes


@runs_app.command("list")
def runs_list(results: ResultsOption = Path("results")) -> None:
    """One line per run: method, dataset, protocol, budget, status, jobs, mean Dice (primary reference)."""
    _check_results(results)
    try:
        index = load_index(results)
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
        return
    primary = index.drop_duplicates("run_id")
    table = Table()
    for column in ("run", "status", "jobs ok", "failed", "mean Dice", "updated (UTC)"):
        table.add_column(column, no_wrap=True)
    for _, row in primary.iterrows():
        dice = index[(index["run_id"] == row["run_id"]) & (index["reference"] == row["reference"])]["dice_mean"]
        shown = "-" if dice.isna().all() else f"{dice.iloc[0]:.3f} ({row['reference']})"
        table.add_row(
            row["run_id"],
            row["status"],
            str(row["n_jobs_ok"]),
            str(row["n_jobs_failed"]),
            shown,
            _minute(row["updated"]),
        )
    print_table(table)


def _minute(stamp: object) -> str:
    """``2026-12-07T20:58:10+00:00`` as ``2026-12-07 20:58`` (the store writes UTC; a reader plans in minutes)."""
    text = str(stamp or "")
    return text[:16].replace("T", " ") if len(text) >= 16 and text[10] == "T" else text


@runs_app.command("show")
def runs_show(
    run: Annotated[str, typer.Argument(help="Run id (see 'msbench runs list'); a unique prefix is enough.")],
    results: ResultsOption = Path("results"),
) -> None:
    """A run's jobs: status, resume, timings, errors, code hash."""
    _check_results(results)
    try:
        run_id = find_run(results, run).run_id
        jobs = job_table(results, run_id)
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
        return
    table = Table(title=run_id)
    for column in ("job", "status", "stale", "resumed at epoch", "fit s", "wall s", "code hash", "error"):
        table.add_column(column, no_wrap=column != "error")
    for _, job in jobs.iterrows():
        table.add_row(
            job["job_id"],
            job["status"],
            "yes" if job["stale"] else "",
            str(job["resumed_from"] or ""),
            f"{job['fit_seconds']:.1f}" if job["fit_seconds"] == job["fit_seconds"] else "-",
            f"{job['wall_seconds']:.1f}",
            str(job["code_hash"]),
            str(job["error"] or ""),
        )
    print_table(table)


@runs_app.command("export")
def runs_export(
    run: Annotated[str, typer.Argument(help="Run id (see 'msbench runs list').")],
    out_dir: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the files.")],
    results: ResultsOption = Path("results"),
) -> None:
    """Plain CSV tables of a run (cases, lesions, summary, jobs) and one prediction CSV per job."""
    _check_results(results)
    try:
        written = export_run(results, run, out_dir)
    except (OSError, ValueError) as error:  # OSError: --out cannot be written
        _fail(str(error))
        return
    out.print(f"wrote {len(written)} files to {out_dir}")
