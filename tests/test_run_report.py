"""The end of ``msbench run``: methods by Dice, the reference rows apart and unjudged, then the next commands."""

from __future__ import annotations

from rich.console import Console
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.plan import MethodOutcome
from msbench.benchmark.run_report import outcome_table

runner = CliRunner()


def _outcome(method: str, dice: float | None, baseline: float | None = 0.4) -> MethodOutcome:
    return MethodOutcome(method, f"{method}__run", "ok", n_ok=1, dice_mean=dice, baseline_dice=baseline)


def _lines(table) -> list[str]:
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text().splitlines()


def test_methods_are_ordered_by_dice_and_the_reference_rows_stand_apart_unjudged():
    outcomes = [
        _outcome("threshold", 0.4, None),
        _outcome("b-net", 0.5),
        _outcome("inter-rater", 0.7),  # the human ceiling: above the baseline, but no contender
        _outcome("no-dice", None),
        _outcome("a-net", 0.6),
        _outcome("weak-net", 0.3),
    ]
    lines = _lines(outcome_table(outcomes, "msbench run"))
    rows = [line for line in lines if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == [
        "a-net",
        "b-net",
        "weak-net",
        "no-dice",
        "inter-rater",
        "threshold",
    ]
    rule = next(i for i, line in enumerate(lines) if line.startswith("├"))  # the rule between methods and references
    assert lines[rule - 1].startswith("│ no-dice") and lines[rule + 1].startswith("│ inter-rater")
    inter_rater, threshold = rows[-2], rows[-1]
    assert "human ceiling" in inter_rater and "beats" not in inter_rater
    assert "baseline" in threshold
    assert "beats" in rows[0] and "below" in rows[2]
    assert all(len(line) <= 80 for line in lines)


def test_a_run_ends_with_the_table_and_the_commands_to_run_next(tmp_path, smoke_phantom):
    results = tmp_path / "results"
    result = runner.invoke(
        app,
        [
            "run",
            "--method",
            "inter-rater",
            "--data-root",
            str(smoke_phantom),
            "--results",
            str(results),
            "--folds",
            "0",
            "--no-progress",
        ],  # fmt: skip
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    inter_rater = next(line for line in result.output.splitlines() if line.startswith("│ inter-rater"))
    assert "human ceiling" in inter_rater and "beats" not in inter_rater
    assert f"next: msbench leaderboard --results {results}" in result.output
    assert f"msbench gate --baseline FILE --results {results}" in result.output
    assert result.output.rstrip().endswith("(pass/fail against a baseline file)")


def test_in_a_narrow_terminal_the_reference_rows_stay_apart():
    import io

    from msbench.benchmark._console import print_table

    outcomes = [_outcome("threshold", 0.4, None), _outcome("inter-rater", 0.7), _outcome("a-net", 0.6)]
    buffer = io.StringIO()
    print_table(
        outcome_table(outcomes, "msbench run"), Console(file=buffer, width=40, force_terminal=True, color_system=None)
    )
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    firsts = [i for i, line in enumerate(lines) if line.startswith("method: ")]
    rule = next(i for i, line in enumerate(lines) if set(line) == {"─"})
    assert [lines[i] for i in firsts] == ["method: a-net", "method: inter-rater", "method: threshold"]
    assert firsts[0] < rule < firsts[1]
