"""The live board of ``msbench run``: its ETA comes from measured job and epoch times; nnunet2d's epochs show."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from msbench.benchmark.job import epoch_log, epochs_done
from msbench.benchmark.progress import JobBoard, duration


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _history(folder: Path, seconds: list[float]) -> None:
    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"epoch": range(1, len(seconds) + 1), "seconds": seconds}).to_csv(work / "history.csv", index=False)


def _board(clock: Clock) -> JobBoard:
    return JobBoard(Console(file=open("/dev/null", "w"), width=120), live=False, clock=clock)  # noqa: SIM115


def test_nothing_measured_yet_is_said_not_guessed(tmp_path):
    board = _board(Clock())
    for fold in range(3):
        board.add(f"unet__x/fold{fold}", f"unet fold {fold}", tmp_path / f"f{fold}", epochs=8)
    eta = board.eta()
    assert (eta.seconds, eta.untimed) == (0, 3)
    assert eta.describe() == "3 job(s) not yet timed"


def test_a_running_jobs_epoch_times_give_its_remaining_epochs_and_the_queued_jobs_whole_length(tmp_path):
    clock = Clock()
    board = _board(clock)
    for fold in range(2):
        board.add(f"unet__x/fold{fold}", f"unet fold {fold}", tmp_path / f"f{fold}", epochs=8)
    board.add("fsh__x/fold0", "fsh fold 0", tmp_path / "fsh", epochs=None)
    with board:
        board.started("unet__x/fold0")
        clock.now += 25
        _history(tmp_path / "f0", [10.0, 12.0])  # 2 of 8 epochs, 11 s each on average
        eta = board.eta()
        # running: 6 epochs x 11 s; queued unet: 8 x 11 s; fsh: nothing of its run measured yet
        assert eta.seconds == pytest.approx(6 * 11 + 8 * 11) and eta.untimed == 1
        assert "2/8" in _text(board)
        assert f"about {duration(154)} left + 1 job(s) not yet timed" in _text(board)


def test_a_finished_job_times_the_next_jobs_of_its_run_and_other_processes_run_beside_this_one(tmp_path):
    clock = Clock()
    board = _board(clock)
    for fold in range(4):
        board.add(f"thr__x/fold{fold}", f"threshold fold {fold}", tmp_path / f"t{fold}", epochs=None)
    with board:
        board.started("thr__x/fold0")
        clock.now += 30
        board.finished("thr__x/fold0", "ok")
        board.started("thr__x/fold1")
        clock.now += 10
        board.elsewhere("thr__x/fold3")
        eta = board.eta()
        # fold 1: 30 - 10 s left; fold 2 queued: 30 s; fold 3 in another process (no start known here): 30 s
        assert eta.seconds == pytest.approx(20 + 30) and eta.untimed == 0
        board.finished("thr__x/fold1", "ok")
        board.finished("thr__x/fold2", "reused")
        # only the other process's job is left; jobs of its run took 30 s and 10 s here
        assert board.eta().seconds == pytest.approx(20)


def test_duration_is_written_at_a_planning_precision():
    assert [duration(s) for s in (42, 150, 3 * 3600 + 1800)] == ["42 s", "2 min", "3.5 h"]


def test_nnunet2d_writes_a_per_epoch_log_the_board_and_resume_read(tmp_path):
    pytest.importorskip("nnunetv2")
    from msbench.methods.nnunet2d._trainer import write_epoch_log

    class Logger:  # nnU-Net's logger: values per key and epoch, restored from its checkpoint on resume
        values = {
            "epoch_start_timestamps": [100.0, 130.0, 165.0],
            "epoch_end_timestamps": [130.0, 165.0, 205.0],
            "train_losses": [0.9, 0.8, 0.7],
        }

        def get_value(self, key: str, step: int):
            return self.values[key][step]

    fold = tmp_path / "work" / "nnunet" / "results" / "Dataset001" / "fold_0"
    fold.mkdir(parents=True)
    write_epoch_log(fold, Logger(), 3)
    assert epochs_done(tmp_path / "work") == 3
    assert epoch_log(fold / "history.csv") == [30.0, 35.0, 40.0]
    clock = Clock()
    board = _board(clock)
    board.add("nnunet2d__x/fold0", "nnunet2d fold 0", tmp_path, epochs=8)
    with board:
        board.started("nnunet2d__x/fold0")
        assert "3/8" in _text(board)
        assert board.eta().seconds == pytest.approx(5 * 35)


def _text(board: JobBoard) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(board.render())
    return " ".join(console.export_text().split())  # the title wraps at the table's width
