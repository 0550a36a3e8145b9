"""Several ``msbench tune`` processes on one study: a journal file locally, a real PostgreSQL server elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest

from msbench.benchmark.store import study_table, trial_table
from msbench.benchmark.tuning import NOT_COUNTED, TuneRequest, default_storage, load_tuned, open_storage, tune

pytestmark = pytest.mark.usefixtures("one_thread")
STUDY = "threshold__synth-ms__isbi2015__smoke"

# A worker: waits until every worker is up (so they really run at once), slows each threshold fit to 0.3 s (so the
# trials interleave), then runs the real CLI: `msbench tune ...` with the arguments it was given.
WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    barrier, n = Path(sys.argv[1]), int(sys.argv[2])
    from msbench.benchmark.cli import app
    from msbench.methods.threshold.adapter import ThresholdAdapter
    fit = ThresholdAdapter.fit
    ThresholdAdapter.fit = lambda self, *a: time.sleep(0.3) or fit(self, *a)
    (barrier / f"ready-{len(list(barrier.iterdir()))}-{id(app)}").touch()
    while len(list(barrier.iterdir())) < n:
        time.sleep(0.05)
    app(["tune", *sys.argv[3:]], prog_name="msbench")
    """
)


def _workers(n: int, args: list[str], tmp: Path) -> list[subprocess.CompletedProcess]:
    barrier = tmp / "barrier"
    barrier.mkdir()
    env = {**os.environ, "MSBENCH_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(barrier), str(n), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for _ in range(n)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), p.stdout.read(), "") for p in procs]


def _check_shared(study: optuna.Study, n_trials: int) -> None:
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(n_trials)), "a trial is missing, duplicated or surplus"
    assert all(t.state.name == "COMPLETE" and NOT_COUNTED not in t.user_attrs for t in trials)
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2, f"both workers should have run trials: {workers}"


def test_two_tune_processes_share_one_journal_study(smoke_phantom, tmp_path):
    results = tmp_path / "results"
    args = ["--method", "threshold", "--trials", "8", "--results", str(results), "--data-root", str(smoke_phantom),
            "--device", "cpu", "--no-progress"]  # fmt: skip
    start = time.monotonic()
    done = _workers(2, args, tmp_path)
    assert all(p.returncode == 0 for p in done), [p.stdout[-2000:] for p in done]
    study = optuna.load_study(study_name=STUDY, storage=open_storage(default_storage(results)))
    _check_shared(study, 8)
    table = trial_table(results, STUDY)
    assert list(table.number) == list(range(8)) and set(table.state) == {"COMPLETE"}
    assert study_table(results).set_index("study").loc[STUDY].n_complete == 8
    assert time.monotonic() - start < 240


def test_postgresql_storage_holds_both_workers_trials(postgres_url, smoke_phantom, tmp_path):
    results = tmp_path / "results"
    args = ["--method", "threshold", "--trials", "4", "--results", str(results), "--data-root", str(smoke_phantom),
            "--storage", postgres_url, "--device", "cpu", "--no-progress"]  # fmt: skip
    done = _workers(2, args, tmp_path)
    assert all(p.returncode == 0 for p in done), [p.stdout[-2000:] for p in done]
    study = optuna.load_study(study_name=STUDY, storage=open_storage(postgres_url))
    counted = [t for t in study.get_trials() if NOT_COUNTED not in t.user_attrs]
    assert len(counted) == 4 and {t.state.name for t in counted} == {"COMPLETE"}
    assert len({t.user_attrs["worker"] for t in counted}) == 2
    again = tune(TuneRequest("threshold", "synth-ms", results, data_root=smoke_phantom, trials=4, device="cpu",
                             storage=postgres_url))  # fmt: skip
    assert again.n_added == 0 and again.storage.startswith("postgresql+psycopg2://msbench@/postgres")
    best = load_tuned("threshold", "synth-ms", "isbi2015", "smoke", results, storage=postgres_url)
    assert best.value == max(t.value for t in counted)
    assert study_table(results).set_index("study").loc[STUDY].storage == again.storage


def test_a_worker_opening_the_study_mid_record_sees_no_conflict(tmp_path, monkeypatch):
    # The race CI hit: worker A creates the study and writes its record one attribute at a time; worker B opens the
    # study between two writes. B must not read A's half-written record as "made for other settings".
    from msbench.benchmark import tuning

    storage = default_storage(tmp_path)
    attrs = {"study_version": 1, "method": "threshold", "dataset": "synth-ms", "protocol": "isbi2015",
             "budget": "smoke", "fold": 0, "per_trial_budget": {"epochs": 1}, "search_space": {}, "seed": 0,
             "n_trials_budget": 4}  # fmt: skip
    seen: list[str] = []
    write = optuna.Study.set_user_attr

    def write_then_second_worker_opens(study, key, value):
        write(study, key, value)
        seen.append(key)
        monkeypatch.setattr(optuna.Study, "set_user_attr", write)  # B writes normally
        tuning.study._open_study(STUDY, storage, attrs, optuna.pruners.NopPruner())
        monkeypatch.setattr(optuna.Study, "set_user_attr", write_then_second_worker_opens)

    monkeypatch.setattr(optuna.Study, "set_user_attr", write_then_second_worker_opens)
    tuning.study._open_study(STUDY, storage, attrs, optuna.pruners.NopPruner())
    assert seen and seen[-1] == "method"
    stored = optuna.load_study(study_name=STUDY, storage=open_storage(storage)).user_attrs
    assert stored == attrs
