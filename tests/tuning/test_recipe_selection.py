"""Recipe selection, the ``--candidates`` mode of ``msbench tune``: a fixed study on the validation patient only."""

from __future__ import annotations

import dataclasses
import json

import nibabel as nib
import pytest
from typer.testing import CliRunner

from msbench.benchmark import recipe_selection
from msbench.benchmark.cli import app
from msbench.benchmark.manifest import git_state
from msbench.benchmark.recipe_selection import run_selection
from msbench.benchmark.tuning import TuneRequest
from msbench.datasets.case import Case
from msbench.datasets.splits import load_split
from msbench.methods import get_card
from msbench.methods.selection import load_record, recipe_from_dict
from msbench.methods.show import record_lines

pytestmark = pytest.mark.usefixtures("one_thread")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_selection_opens_only_training_and_validation_cases(smoke_phantom, smoke_cases, tmp_path, monkeypatch):
    fold = load_split("synth-ms", "isbi2015", smoke_cases).folds[0]
    opened: set[str] = set()
    for name in ("load_image", "load_images", "load_mask"):
        original = getattr(Case, name)

        def spy(self, *args, _original=original, **kwargs):
            opened.add(self.case_id)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Case, name, spy)
    files: set[str] = set()  # every NIfTI file read while the tool fits and scores, whoever reads it
    fitting = []
    nib_load = nib.load

    def load_spy(path, *args, **kwargs):
        if fitting:
            files.add(str(path))
        return nib_load(path, *args, **kwargs)

    monkeypatch.setattr(nib, "load", load_spy)
    select = recipe_selection.select_recipe
    monkeypatch.setattr(recipe_selection, "select_recipe", lambda *a, **k: fitting.append(1) or select(*a, **k))
    test_files = {str(p) for c in fold.select(smoke_cases, "test") for p in (*c.images.values(), *c.masks.values())}
    card = get_card("basicunet").recipe("smoke")  # one cheap candidate: one step, windows without overlap
    tiny = {
        "card": dataclasses.replace(card, epochs=1, iterations_per_epoch=1, overrides={**card.overrides, "stride": 32})
    }
    out = tmp_path / "basicunet.json"
    request = TuneRequest("basicunet", "synth-ms", tmp_path / "results", data_root=smoke_phantom, device="cpu")
    record = run_selection(request, tiny, out=out)
    assert opened and not opened & set(fold.test), f"test cases opened: {sorted(opened & set(fold.test))}"
    assert set(fold.val) <= opened <= set(fold.train) | set(fold.val)
    assert fitting and files and not files & test_files, f"test files read: {sorted(files & test_files)}"
    assert json.loads(out.read_text()) == json.loads(json.dumps(record))
    assert record["val_patients"] == ["training02"] and record["val_cases"] == sorted(fold.val)
    assert [c["name"] for c in record["candidates"]] == list(tiny)
    assert set(record["candidates"][0]["val_dice_per_case"]) == set(fold.val)
    assert 0.0 <= record["threshold_val_dice"] <= 1.0 and record["seed"] == 0
    assert not (tmp_path / "results").exists()  # the study is in memory: the results store is not touched


def test_tune_candidates_runs_a_fixed_study_of_the_cards_candidates_and_writes_the_record(
    tiny_basicunet, smoke_phantom, tmp_path, monkeypatch
):
    fitted: list[tuple[str, str]] = []
    fit = recipe_selection._fit_and_score
    monkeypatch.setattr(
        recipe_selection, "_fit_and_score", lambda method, *a: fitted.append((method, str(a[3]))) or fit(method, *a)
    )
    args = ["tune", "--method", tiny_basicunet, "--candidates", "smoke", "--data-root", str(smoke_phantom)]
    result = CliRunner().invoke(app, [*args, "--record-dir", str(tmp_path), "--seed", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    path = tmp_path / f"{tiny_basicunet}.json"
    record = load_record(tiny_basicunet, path)
    card = get_card(tiny_basicunet)
    names = ["card", *card.smoke_candidates]
    assert [c["name"] for c in record["candidates"]] == names == ["card", "positive_fraction 1.0"]
    recipes = [recipe_from_dict(c["recipe"]) for c in record["candidates"]]
    assert recipes == list(card.smoke_candidate_recipes().values())
    assert sorted(w.rsplit("/", 1)[-1] for m, w in fitted if m == tiny_basicunet) == ["candidate0", "candidate1"]
    assert [m for m, _ in fitted].count("threshold") == 1  # the baseline, fitted once after the study
    best = max(c["val_dice"] for c in record["candidates"])
    assert record["chosen"] == next(c["name"] for c in record["candidates"] if c["val_dice"] == best)
    assert record["record_version"] == 2 and record["seed"] == 3 and "GridSampler" in record["sampler"]
    state = git_state()
    assert record["commit"] == state["commit"] + ("-dirty" if state["dirty"] else "")
    text = _flat(result.output)
    assert f"{tiny_basicunet} [positive_fraction 1.0]: validation Dice" in text and "chosen" in text
    shown = "\n".join(record_lines(card, record, path))
    assert f"chosen: {record['chosen']!r}, validation Dice {record['chosen_val_dice']:.3f}" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "fsh", "--candidates", "best"], "--candidates 'best': expected one of: smoke"),
        (["--method", "threshold", "--candidates", "smoke"], "'threshold' declares no smoke_candidates"),
        (["--method", "fsh", "--candidates", "smoke", "--trials", "3"], "--trials: not used with --candidates"),
        (["--method", "fsh", "--candidates", "smoke", "--budget", "quick"], "--budget 'quick' has no candidates"),
    ],
)
def test_bad_candidates_requests_fail_in_one_line_before_any_fit(args, message, tmp_path, monkeypatch):
    monkeypatch.setattr(recipe_selection, "_fit_and_score", lambda *a: pytest.fail("a fit ran"))
    result = CliRunner().invoke(app, ["tune", *args, "--record-dir", str(tmp_path)])
    assert result.exit_code == 2 and message in _flat(result.output) and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def test_recorded_candidates_without_a_record_name_the_command_that_makes_it(tiny_basicunet, tmp_path):
    result = CliRunner().invoke(app, ["tune", "--method", tiny_basicunet, "--candidates", "recorded"])
    text = _flat(result.output)
    assert result.exit_code == 2 and f"Make it with `msbench tune --method {tiny_basicunet} --candidates smoke`" in text
