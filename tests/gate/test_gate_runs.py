"""`msbench gate` end to end on real runs of the smoke phantom: pass on an unchanged run, fail on a broken one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.gate import FAIL, MISMATCH, check_gate
from msbench.benchmark.gate_baseline import load_baseline
from msbench.methods import Adapter, FitReport, MethodCard, Prediction, get_card, register
from msbench.methods.registry import _CARDS

runner = CliRunner()


class NothingAdapter(Adapter):
    """Predicts no lesion anywhere: a broken method (an inverted threshold, a dead output head)."""

    def fit(self, train: Sequence, val: Sequence) -> FitReport:
        return FitReport()

    def predict(self, case) -> Prediction:
        return Prediction(mask=np.zeros(case.shape, dtype=bool))


def _card(adapter: str) -> MethodCard:
    """``candidate``: the threshold method's card with another adapter (a method that changed)."""
    from dataclasses import replace

    return replace(get_card("threshold"), name="candidate", adapter=adapter)


@pytest.fixture
def candidate_good():
    register(_card(get_card("threshold").adapter))
    yield "candidate"
    _CARDS.pop("candidate")


@pytest.fixture
def candidate_nothing():
    register(_card(f"{__name__}:NothingAdapter"))
    yield "candidate"
    _CARDS.pop("candidate")


def _run(results: Path, phantom: Path, methods: str, seeds: str = "0", *extra: str) -> None:
    folds = extra or ("--folds", "0")
    args = ["run", "--method", methods, "--dataset", "synth-ms", "--budget", "smoke", "--seeds", seeds,
            "--results", str(results), "--data-root", str(phantom), "--no-progress", *folds]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


def _gate(baseline: Path, results: Path, *extra: str):
    return runner.invoke(app, ["gate", "--baseline", str(baseline), "--results", str(results), *extra])


@pytest.fixture(scope="module")
def reference(tmp_path_factory, smoke_phantom) -> tuple[Path, Path]:
    """A store of threshold, inter-rater and a threshold-like ``candidate`` over seeds 0 and 1, and its baseline."""
    results = tmp_path_factory.mktemp("reference")
    register(_card(get_card("threshold").adapter))
    try:
        _run(results, smoke_phantom, "threshold,inter-rater,candidate", seeds="0,1")
    finally:
        _CARDS.pop("candidate")
    baseline = results / "baseline.toml"
    result = _gate(baseline, results, "--update")
    assert result.exit_code == 0, result.output
    text = baseline.read_text()
    text = text.replace('budget = "smoke"', 'budget = "smoke"\nthreshold_fraction = 0.7', 1)
    baseline.write_text(text)
    return results, baseline


def test_update_records_the_noise_floor_and_an_unchanged_run_passes(reference, tmp_path, smoke_phantom, candidate_good):
    results, baseline = reference
    gated = load_baseline(baseline)
    assert set(gated.methods) == {"threshold", "inter-rater", "candidate"}
    for entry in gated.methods.values():  # training-free: identical over seeds, so judged both ways
        assert entry.n_seeds == 2 and entry.noise_sd == 0.0 and entry.two_sided
        assert len(entry.seed_dice) == 2 and entry.reference_dice == pytest.approx(entry.seed_dice[0], abs=1e-4)
        assert {"ltpr", "hd95_mm"} <= set(entry.bounds)
    assert _gate(baseline, results).exit_code == 0
    # the same methods run again into another store, one seed only: still passes
    _run(tmp_path, smoke_phantom, "inter-rater,candidate")
    result = _gate(baseline, tmp_path)
    assert result.exit_code == 0, result.output
    assert "gate passed" in result.output and "FAIL" not in result.output


def test_a_run_predicting_nothing_fails(reference, tmp_path, smoke_phantom, candidate_nothing):
    _, baseline = reference
    _run(tmp_path, smoke_phantom, "inter-rater,candidate")
    result = _gate(baseline, tmp_path)
    assert result.exit_code == 1, result.output
    assert "gate FAILED" in result.output
    failed = {c.metric for c in check_gate(load_baseline(baseline), tmp_path) if c.verdict == FAIL}
    assert failed >= {"dice >= 0.7 x threshold", "dice change (two-sided)", "ltpr"}


def test_a_method_that_does_not_learn_fails(reference, tmp_path, smoke_phantom, tiny_basicunet):
    """A real fit too short to learn, judged by an entry with a learned method's numbers (the first measured trained
    row of the committed CI baseline)."""
    _, baseline = reference
    committed = load_baseline(Path(__file__).resolve().parents[2] / ".ci" / "smoke-baseline.toml")
    learned = next(e for e in committed.methods.values() if not (e.two_sided or e.floor_only))
    sections = baseline.read_text().split("\n[methods.")
    kept = [sections[0]] + [t for t in sections[1:] if not t.startswith("candidate]")]  # no candidate run here
    text = "\n[methods.".join(kept) + (
        f"\n[methods.{tiny_basicunet}]\nreference_dice = {learned.reference_dice}\nnoise_sd = {learned.noise_sd}\n"
    )
    text = text.replace("machine_tolerance = 0.0", f"machine_tolerance = {committed.machine_tolerance}")
    not_learning = tmp_path / "not-learning.toml"
    not_learning.write_text(text)
    _run(tmp_path, smoke_phantom, f"inter-rater,{tiny_basicunet}")
    result = _gate(not_learning, tmp_path)
    checks = [c for c in check_gate(load_baseline(not_learning), tmp_path) if c.method == tiny_basicunet]
    assert result.exit_code == 1, result.output
    assert {c.metric: c.verdict for c in checks} == {"dice >= 0.7 x threshold": FAIL, "dice drop": FAIL}


def test_a_metric_bug_fails(reference, tmp_path, smoke_phantom, candidate_good, monkeypatch):
    """Dice computed as TP / (TP + FP + FN) (the Jaccard index): training-free rows move, the gate fails."""
    from msbench.benchmark.metrics import _case

    original = _case.voxel_scores

    def jaccard_as_dice(*args, **kwargs):
        scores = original(*args, **kwargs)
        return {**scores, "dice": scores["jaccard"]}

    monkeypatch.setattr(_case, "voxel_scores", jaccard_as_dice)
    _, baseline = reference
    _run(tmp_path, smoke_phantom, "inter-rater,candidate")
    monkeypatch.undo()
    assert _gate(baseline, tmp_path).exit_code == 1
    failed = {(c.method, c.metric) for c in check_gate(load_baseline(baseline), tmp_path) if c.verdict == FAIL}
    assert {(m, "dice change (two-sided)") for m in ("threshold", "inter-rater", "candidate")} <= failed


def _notes(baseline: Path, results: Path) -> list[str]:
    return [c.note for c in check_gate(load_baseline(baseline), results) if c.verdict == MISMATCH]


def test_mismatches_exit_2(reference, tmp_path):
    results, baseline = reference
    text = baseline.read_text()
    other_budget = tmp_path / "quick.toml"
    other_budget.write_text(text.replace('budget = "smoke"', 'budget = "quick"', 1))
    assert _gate(other_budget, results).exit_code == 2
    assert "no run of 'candidate' on synth-ms/isbi2015/quick; its runs are on synth-ms/isbi2015/smoke" in _notes(
        other_budget, results
    )
    missing = tmp_path / "missing.toml"
    missing.write_text(text + "\n[methods.fsh]\nmin_dice = 0.3\n")
    assert _gate(missing, results).exit_code == 2
    assert _notes(missing, results) == ["no run of 'fsh' in the store"]
    protocol = tmp_path / "protocol.toml"
    protocol.write_text(text.replace('protocol = "isbi2015"', 'protocol = "rondinella2023"', 1))
    assert _gate(protocol, results).exit_code == 2
    assert len(_notes(protocol, results)) == 3  # one per method
    (run_id,) = [r.name for r in (results / "runs").iterdir() if r.name.startswith("candidate__")]
    result = _gate(protocol, results, "--run", run_id[:12])
    assert result.exit_code == 2 and "gate could not judge every method" in result.output


def test_update_needs_two_seeds(tmp_path, smoke_phantom):
    _run(tmp_path, smoke_phantom, "inter-rater")
    result = _gate(tmp_path / "b.toml", tmp_path, "--update")
    assert result.exit_code == 2 and "at least two seeds" in result.output
    assert not (tmp_path / "b.toml").exists()


def test_the_paired_test_fails_a_run_predicting_nothing_and_passes_an_unchanged_one(tmp_path, smoke_phantom):
    """drop_test = "wilcoxon" over every fold's test patient (5 patients, the fewest a one-sided test at 0.05 needs):
    per-patient means of Dice paired with the reference run's."""
    good, broken = tmp_path / "good", tmp_path / "broken"
    folds = ("--folds", "0,1,2,3,4", "--no-baseline")
    register(_card(get_card("threshold").adapter))
    try:
        _run(good, smoke_phantom, "candidate", "0,1", *folds)
        _run(tmp_path / "again", smoke_phantom, "candidate", "0", *folds)
    finally:
        _CARDS.pop("candidate")
    baseline = tmp_path / "paired.toml"
    assert _gate(baseline, good, "--update").exit_code == 0
    # One-sided (a drop only): the phantom's 5 patients are one short of what a two-sided test needs to reach 0.05.
    text = baseline.read_text().replace('drop_test = "noise"', 'drop_test = "wilcoxon"')
    baseline.write_text(text.replace("two_sided = true", "two_sided = false"))
    assert len(load_baseline(baseline).methods["candidate"].reference_cases) >= 5
    again = _gate(baseline, tmp_path / "again")
    assert again.exit_code == 0, again.output
    register(_card(f"{__name__}:NothingAdapter"))
    try:
        _run(broken, smoke_phantom, "candidate", "0", *folds)
    finally:
        _CARDS.pop("candidate")
    (check,) = [c for c in check_gate(load_baseline(baseline), broken) if "Wilcoxon" in c.metric]
    assert check.verdict == FAIL and "over 5 patients" in check.note
    assert _gate(baseline, broken).exit_code == 1


def test_the_paired_test_on_two_patients_cannot_judge(tmp_path, smoke_phantom, candidate_good):
    """Two folds' test patients (8 scans): per scan the test could reach 0.05, on 2 per-patient means it cannot."""
    _run(tmp_path, smoke_phantom, "candidate", "0,1", "--folds", "0,1", "--no-baseline")
    baseline = tmp_path / "paired.toml"
    assert _gate(baseline, tmp_path, "--update").exit_code == 0
    baseline.write_text(baseline.read_text().replace('drop_test = "noise"', 'drop_test = "wilcoxon"'))
    (check,) = [c for c in check_gate(load_baseline(baseline), tmp_path) if "Wilcoxon" in c.metric]
    assert check.verdict == MISMATCH and "2 patients (8 paired cases)" in check.note
    assert "smallest attainable p 0.5" in check.note
    assert _gate(baseline, tmp_path).exit_code == 2
