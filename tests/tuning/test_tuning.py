"""Tuning: validation patients only, equal budgets, pruning, resume, and the --tuned run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import replace

import nibabel as nib
import optuna
import pandas as pd
import pytest
from nibabel.arrayproxy import ArrayProxy

from msbench.benchmark import tuning
from msbench.benchmark.plan import RunRequest
from msbench.benchmark.runner import run_benchmark
from msbench.benchmark.store import study_table, trial_table
from msbench.benchmark.tuning import TuneRequest, default_storage, load_tuned, open_storage, tune
from msbench.datasets.case import Case
from msbench.datasets.splits import load_split
from msbench.methods import get_card, register
from msbench.methods.card import CategoricalParam, FloatParam, IntParam
from msbench.methods.registry import _CARDS

pytestmark = pytest.mark.usefixtures("one_thread")
STUDY = "threshold__synth-ms__isbi2015__smoke"


def _request(results, root, method="threshold", **kwargs) -> TuneRequest:
    return TuneRequest(method, "synth-ms", results, data_root=root, device="cpu", **kwargs)


def _load(results, name=STUDY) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(default_storage(results)))


def test_search_space_becomes_optuna_distributions():
    space = {"lr": FloatParam(1e-5, 1e-3, log=True), "n": IntParam(1, 9, step=2), "c": CategoricalParam((8, 16))}
    d = tuning.distributions(space)
    assert d["lr"] == optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True)
    assert d["n"] == optuna.distributions.IntDistribution(1, 9, step=2)
    assert d["c"] == optuna.distributions.CategoricalDistribution((8, 16))


def test_tuning_opens_no_test_patient_of_the_tuned_fold(smoke_phantom, smoke_cases, tiny_basicunet, tmp_path,
                                                        monkeypatch):  # fmt: skip
    """Listing the dataset reads every scan's header (shape, affine: the grid check); beyond that, no voxel of a
    test patient is read, no test case is loaded, and no test file is opened while the trials run."""
    fold = load_split("synth-ms", "isbi2015", smoke_cases).folds[0]
    opened: set[str] = set()
    for name in ("load_image", "load_images", "load_mask", "load_brain"):
        original = getattr(Case, name)

        def spy(self, *args, _original=original, **kwargs):
            opened.add(self.case_id)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Case, name, spy)
    voxels: set[str] = set()  # every NIfTI whose voxels are read, whoever reads them
    get_scaled = ArrayProxy._get_scaled
    monkeypatch.setattr(ArrayProxy, "_get_scaled", lambda self, *a, **k: voxels.add(str(self.file_like))
                        or get_scaled(self, *a, **k))  # fmt: skip
    files: set[str] = set()  # every file opened (raw or by nibabel) while a trial runs
    in_trial: list[int] = []
    run_trial = tuning.study._run_trial

    def trial_spy(*args, **kwargs):
        in_trial.append(1)
        try:
            return run_trial(*args, **kwargs)
        finally:
            in_trial.pop()

    monkeypatch.setattr(tuning.study, "_run_trial", trial_spy)
    nib_load, real_open = nib.load, open
    monkeypatch.setattr(nib, "load", lambda p, *a, **k: (in_trial and files.add(str(p))) or nib_load(p, *a, **k))
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: (in_trial and files.add(str(p))) or real_open(p, *a, **k))
    test_files = {str(p) for c in fold.select(smoke_cases, "test") for p in (*c.images.values(), *c.masks.values())}
    train_val_files = {str(p) for c in smoke_cases if c.case_id not in fold.test for p in c.images.values()}
    tune(_request(tmp_path, smoke_phantom, trials=2))
    tune(_request(tmp_path, smoke_phantom, method=tiny_basicunet, trials=1))
    assert opened and not opened & set(fold.test), f"test cases opened: {sorted(opened & set(fold.test))}"
    assert set(fold.val) <= opened <= set(fold.train) | set(fold.val)
    assert voxels and not voxels & test_files, f"test voxels read: {sorted(voxels & test_files)}"
    assert files & train_val_files and not files & test_files, (
        f"test files opened in a trial: {sorted(files & test_files)}"
    )
    study = _load(tmp_path)
    assert study.user_attrs["fold"] == 0 and study.user_attrs["val_cases"] == sorted(fold.val)
    assert not set(study.user_attrs["seen_patients"]) & {c.patient_id for c in fold.select(smoke_cases, "test")}


def test_budget_is_recorded_and_resume_adds_only_missing_trials(smoke_phantom, tmp_path):
    first = tune(_request(tmp_path, smoke_phantom))
    assert first.n_added == 2 and first.n_trials_budget == 2  # the smoke budget's tuning_trials
    assert tune(_request(tmp_path, smoke_phantom)).n_added == 0
    # a worker killed mid-trial left a RUNNING trial: it must neither block the budget nor be counted
    study = _load(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = study.ask()
    orphan.set_user_attr("worker", f"{socket.gethostname()}:{dead.pid}")
    third = tune(_request(tmp_path, smoke_phantom, trials=3))
    assert third.n_added == 1 and third.n_complete == 3
    trials = _load(tmp_path).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert trials[orphan.number].user_attrs[tuning.NOT_COUNTED].startswith("stale")
    remote = _load(tmp_path).ask()  # a worker on another machine that stopped sending heartbeats
    remote.set_user_attr("worker", "another-host:1")
    remote.set_user_attr("heartbeat", time.time())
    assert tuning.reap_stale(_load(tmp_path)) == []
    assert tuning.reap_stale(_load(tmp_path), now=time.time() + tuning.STALE_AFTER_S + 1) == [remote.number]
    assert tune(_request(tmp_path, smoke_phantom, trials=3)).n_added == 0
    studies = study_table(tmp_path).set_index("study")
    row = studies.loc[STUDY]
    assert row.n_trials_budget == 3 and row.n_complete == 3 and row.n_failed == 0
    assert json.loads(row.per_trial_budget) == {"epochs": 0, "batch_size": 1, "iterations_per_epoch": None,
                                                 "patience": None, "overrides": {}}  # fmt: skip
    assert set(json.loads(row.search_space)) == {"low", "high"} and row.pruner.startswith("MedianPruner")
    table = trial_table(tmp_path, STUDY)
    assert list(table.number) == [0, 1, 2, 3, 4] and table.value.iloc[0] == pytest.approx(trials[0].value)
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
    assert row.best_trial == best.number and json.loads(row.best_params) == best.params


def test_a_bad_parameter_value_is_pruned_and_counted(smoke_phantom, tiny_basicunet, tmp_path):
    card = get_card(tiny_basicunet)  # threshold 0: every voxel lesion (Dice > 0); 1.01: nothing (Dice 0)
    register(replace(card, name="basicunet-prune", search_space={"threshold": CategoricalParam((0.0, 1.01))}))
    try:
        name = "basicunet-prune__synth-ms__isbi2015__smoke"
        study = optuna.create_study(study_name=name, storage=open_storage(default_storage(tmp_path)),
                                    direction="maximize")  # fmt: skip
        study.enqueue_trial({"threshold": 0.0})
        study.enqueue_trial({"threshold": 1.01})
        outcome = tune(_request(tmp_path, smoke_phantom, method="basicunet-prune"))
    finally:
        _CARDS.pop("basicunet-prune")
    trials = _load(tmp_path, name).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED"], [t.user_attrs for t in trials]
    assert trials[0].intermediate_values[1] > 0 and trials[1].intermediate_values == {1: 0.0}  # stopped at epoch 1
    assert outcome.n_pruned == 1 and outcome.n_complete == 1 and outcome.n_added == 2  # the pruned trial counted
    assert study_table(tmp_path).set_index("study").loc[name].n_pruned == 1


def test_tuned_run_uses_the_best_parameters_and_names_them(smoke_phantom, tmp_path, monkeypatch):
    request = RunRequest("threshold", "synth-ms", tmp_path, data_root=smoke_phantom, device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"run `msbench tune --method threshold --dataset synth-ms --budget smoke "
                                         rf"--results {tmp_path}` first"):  # fmt: skip
        run_benchmark(replace(request, tuned=True))
    from msbench.methods.threshold.adapter import ThresholdAdapter

    calls = []
    original = ThresholdAdapter.fit

    def interrupted(self, *args):  # the second trial's worker is stopped (Ctrl-C) in the middle of its fit
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(ThresholdAdapter, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tune(_request(tmp_path, smoke_phantom))
    monkeypatch.setattr(ThresholdAdapter, "fit", original)
    assert _load(tmp_path).get_trials()[1].user_attrs[tuning.NOT_COUNTED].startswith("interrupted")
    with pytest.raises(ValueError, match=r"not finished \(1 of 2 trials.*run `msbench tune --method threshold"):
        run_benchmark(replace(request, tuned=True))
    tune(_request(tmp_path, smoke_phantom))
    best = load_tuned("threshold", "synth-ms", "isbi2015", "smoke", tmp_path)
    (plain,) = run_benchmark(request)
    (tuned,) = run_benchmark(replace(request, tuned=True))
    assert tuned.run_id != plain.run_id and tuned.status == "ok"
    manifest = json.loads((tmp_path / "runs" / tuned.run_id / "manifest.json").read_text())
    untuned = json.loads((tmp_path / "runs" / plain.run_id / "manifest.json").read_text())
    assert manifest["config_hash"] != untuned["config_hash"] and untuned["tuning"] is None
    assert manifest["tuning"] == best.manifest_entry() and manifest["tuning"]["study"] == STUDY
    assert manifest["config"]["tuning"] == {"study": STUDY, "trial": best.trial, "params": best.params}
    assert {k: manifest["hparams"][k] for k in best.params} == best.params
    with pytest.raises(ValueError, match=r"test patients of fold 1 of this run; run --tuned with --folds 0"):
        run_benchmark(replace(request, tuned=True, folds=(1,)))


def test_tune_cli_shows_progress_and_a_missing_study_names_the_command(smoke_phantom, tmp_path):
    from typer.testing import CliRunner

    from msbench.benchmark.cli import app

    runner = CliRunner()
    args = ["--dataset", "synth-ms", "--results", str(tmp_path), "--data-root", str(smoke_phantom)]
    result = runner.invoke(app, ["run", "--method", "threshold", "--tuned", "--no-baseline", "--no-progress", *args])
    assert result.exit_code == 2 and "run `msbench tune --method threshold" in " ".join(result.output.split())
    result = runner.invoke(app, ["tune", "--method", "threshold", "--no-progress", "--device", "cpu", *args])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "threshold: trial 1 of 2 COMPLETE" in text and "trial 2 of 2" in text and "best so far" in text
    result = runner.invoke(app, ["tune", "--method", "threshold", "--study", "x", "--trials", "3", "--fold", "0",
                                 "--no-progress", "--device", "cpu", *args])  # fmt: skip
    assert result.exit_code == 0 and "trial 3 of 3" in " ".join(result.output.split())
    studies, trials = study_table(tmp_path), trial_table(tmp_path)
    assert list(studies.study) == [STUDY, "x"] and len(trials) == 5
    result = runner.invoke(app, ["store", "reindex", "--results", str(tmp_path)])  # the journal rebuilds the cache
    assert result.exit_code == 0 and "2 tuning studies" in result.output
    pd.testing.assert_frame_equal(study_table(tmp_path), studies)
    pd.testing.assert_frame_equal(trial_table(tmp_path), trials)


def test_the_seed_of_a_study_seeds_every_trial_fit_too(smoke_phantom, tmp_path, monkeypatch):
    """``msbench tune --seed N`` repeats a study: the sampler and every fit take N (every fit took seed 0)."""
    from msbench.benchmark import fitting

    seeds: list[int] = []
    original = fitting.build_adapter

    def spy(card, context):
        seeds.append(context.seed)
        return original(card, context)

    monkeypatch.setattr(fitting, "build_adapter", spy)  # every fit goes through the one door
    tune(_request(tmp_path, smoke_phantom, trials=1, seed=3))
    assert seeds == [3]


def test_a_study_named_by_tune_study_is_the_one_run_tuned_study_uses(smoke_phantom, tmp_path):
    """``msbench tune --study NAME`` made a study ``msbench run --tuned`` could not name: ``--study`` names it."""
    from typer.testing import CliRunner

    from msbench.benchmark.cli import app

    runner = CliRunner()
    args = ["--dataset", "synth-ms", "--results", str(tmp_path), "--data-root", str(smoke_phantom), "--no-progress"]
    tuned = runner.invoke(app, ["tune", "--method", "threshold", "--study", "mine", "--device", "cpu", *args])
    assert tuned.exit_code == 0, tuned.output
    run = ["run", "--method", "threshold", "--no-baseline", "--device", "cpu", *args]
    result = runner.invoke(app, [*run, "--tuned", "--study", "mine"])
    assert result.exit_code == 0, result.output
    (manifest_path,) = tmp_path.glob("runs/threshold__*/manifest.json")
    assert json.loads(manifest_path.read_text())["tuning"]["study"] == "mine"
    missing_tuned = runner.invoke(app, [*run, "--study", "mine"])
    assert missing_tuned.exit_code == 2 and "add --tuned" in missing_tuned.output
    several = runner.invoke(app, [*run[:2], "threshold,basicunet", *run[3:], "--tuned", "--study", "mine"])
    assert several.exit_code == 2 and "names one method's study" in " ".join(several.output.split())
