"""The benchmark runner: every requested method under one protocol, fold by fold, resumable, failures recorded.

For each method it builds the adapter from the card, fits on the fold's training patients (the validation patient
is the only data a method may use for model selection), predicts the test patient's scans, writes the predictions on
the reference grid, scores them against every reference with the metric suite, and aggregates over patients.
A fold that already finished (``status.json`` says ``ok``) is reused; a failing method is recorded and the run goes on.
"""

from __future__ import annotations

import random
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from msbench.datasets import Case, DatasetSpec, Split, get_dataset, load_split
from msbench.methods import FitContext, MethodCard, Prediction, build_adapter, get_card, resolve_methods

from . import manifest as mf
from .metrics import (
    MetricParams,
    evaluate_case,
    evaluate_case_with_lesions,
    isbi_challenge_score,
    pooled_dice,
    summarize,
)
from .protocol import Budget, get_budget
from .store import RunStore, read_json, rebuild_index, write_csv, write_json

console = Console(stderr=True)


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for (the CLI's ``msbench run`` options).

    Attributes:
        methods: ``all``, a comma-separated list or fnmatch patterns of registered methods.
        dataset: Registered dataset name.
        results: The results store folder.
        budget: ``smoke``, ``quick`` or ``paper``.
        protocol: Named split protocol (default: the dataset's first).
        data_root: Where the dataset lives (default: its environment variable; synth-ms: the cache).
        folds: Fold indices to run, or ``"all"`` (default: the budget's, see ``Budget.n_folds``: the first fold on
            smoke, all on quick and paper).
        seeds: Seeds per (method, fold) (default: the budget's).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        modalities: Input modalities for every method (default: each card's own).
        progress: Show progress bars.
        metric_params: Metric settings stored with the results.
        baseline: Also run the ``threshold`` baseline when it was not asked for.
    """

    methods: str
    dataset: str
    results: Path
    budget: str = "smoke"
    protocol: str | None = None
    data_root: Path | None = None
    folds: tuple[int, ...] | str | None = None
    seeds: tuple[int, ...] | None = None
    device: str = "auto"
    modalities: tuple[str, ...] | None = None
    progress: bool = True
    metric_params: MetricParams = field(default_factory=MetricParams)
    baseline: bool = True


@dataclass
class MethodOutcome:
    """How one method's run ended."""

    method: str
    run_id: str
    status: str
    n_ok: int = 0
    n_failed: int = 0
    n_reused: int = 0
    errors: list[str] = field(default_factory=list)
    dice_mean: float | None = None
    baseline_dice: float | None = None

    @property
    def beats_baseline(self) -> bool | None:
        if self.dice_mean is None or self.baseline_dice is None:
            return None
        return self.dice_mean > self.baseline_dice


@dataclass(frozen=True)
class _Setup:
    spec: DatasetSpec
    budget: Budget
    protocol: str
    root: Path
    cases: list[Case]
    split: Split
    folds: tuple[int, ...]
    seeds: tuple[int, ...]
    device: str
    data_fingerprint: str


def run_benchmark(request: RunRequest) -> list[MethodOutcome]:
    """Runs every requested method; returns one outcome per method (never raises for a method's own failure).

    With ``request.baseline`` the training-free ``threshold`` baseline runs first when it was not asked for (about a
    second per fold), so that every method's manifest records whether it beat it on the same folds.
    """
    names = resolve_methods(request.methods)
    if request.baseline and BASELINE not in names:
        names = [BASELINE, *names]
    setup = _prepare(request)
    outcomes = []
    with _progress(request.progress) as progress:
        total = len(names) * len(setup.folds) * len(setup.seeds)
        task = progress.add_task("benchmark", total=total)
        for name in names:
            outcomes.append(_run_method(get_card(name), request, setup, progress, task))
    _record_baseline(outcomes, request.results)
    rebuild_index(request.results)
    return outcomes


BASELINE = "threshold"
ALL_FOLDS = "all"


def _record_baseline(outcomes: list[MethodOutcome], results: Path) -> None:
    """When the training-free baseline ran in the same run, each method's manifest records whether it beat it."""
    baseline = next((o for o in outcomes if o.method == BASELINE and o.dice_mean is not None), None)
    if baseline is None:
        return
    for outcome in outcomes:
        if outcome is baseline:
            continue
        outcome.baseline_dice = baseline.dice_mean
        store = RunStore(results, outcome.run_id)
        manifest = read_json(store.manifest_path)
        manifest["baseline"] = {
            "method": BASELINE,
            "run_id": baseline.run_id,
            "dice_mean": baseline.dice_mean,
            "method_dice_mean": outcome.dice_mean,
            "beats_baseline": outcome.beats_baseline,
        }
        write_json(store.manifest_path, manifest)


def _prepare(request: RunRequest) -> _Setup:
    spec = get_dataset(request.dataset)
    budget = get_budget(request.budget)
    protocol = request.protocol or spec.default_protocol
    user_file = protocol.endswith(".json")  # a split file the user made (make_kfold_split), e.g. for nnunet-raw
    if not user_file and protocol not in spec.protocols:
        raise ValueError(f"dataset {spec.name!r} has no protocol {protocol!r}; it has {', '.join(spec.protocols)}.")
    root = spec.prepare_root(request.data_root, resolution_mm=budget.synth_resolution_mm, progress=request.progress)
    cases = spec.load_cases(root)
    split = load_split(spec.name, Path(protocol) if user_file else protocol, cases)
    protocol = split.protocol
    available = tuple(f.index for f in split.folds)
    if request.folds is None:
        folds = budget.default_folds(available)
    elif request.folds == ALL_FOLDS:
        folds = available
    else:
        folds = request.folds
    known = {f.index for f in split.folds}
    if not set(folds) <= known:
        raise ValueError(
            f"folds {sorted(set(folds) - known)} do not exist in {split.path.name}; it has {sorted(known)}."
        )
    files = [p for c in cases for p in (*c.images.values(), *c.masks.values())]
    return _Setup(
        spec=spec,
        budget=budget,
        protocol=protocol,
        root=root,
        cases=cases,
        split=split,
        folds=tuple(folds),
        seeds=request.seeds if request.seeds is not None else budget.seeds,
        device=resolve_device(request.device),
        data_fingerprint=mf.data_fingerprint(files),
    )


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; explicit CUDA without a GPU is an error."""
    try:
        import torch
    except ImportError:
        return "cpu"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device} asked for, but torch sees no CUDA device; use --device cpu.")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


def run_config(card: MethodCard, request: RunRequest, setup: _Setup) -> dict[str, Any]:
    """Everything that changes a run's numbers; its hash names the run."""
    return {
        "method": card.name,
        "hparams": card.hparams(setup.budget.name),
        "recipe": asdict(card.recipe(setup.budget.name)),
        "modalities": list(request.modalities or card.modalities),
        "dataset": setup.spec.name,
        "protocol": setup.protocol,
        "budget": setup.budget.name,
        "seeds": list(setup.seeds),
        "reference": setup.spec.primary_reference,
        "metric_params": request.metric_params.as_dict(),
        "split_sha256": setup.split.sha256,
        "data_fingerprint": setup.data_fingerprint,
    }


def _run_method(card: MethodCard, request: RunRequest, setup: _Setup, progress: Progress, task: Any) -> MethodOutcome:
    config = run_config(card, request, setup)
    chash = mf.config_hash(config)
    modalities = tuple(config["modalities"])
    mods = "" if modalities == card.modalities else "+" + "-".join(modalities)
    run_id = f"{card.name}{mods}__{setup.spec.name}__{setup.protocol}__{setup.budget.name}__{chash[:8]}"
    store = RunStore(request.results, run_id)
    manifest = _manifest(card, request, setup, config, chash, run_id, store)
    write_json(store.manifest_path, manifest)
    outcome = MethodOutcome(card.name, run_id, "running")
    for fold in setup.folds:
        for seed in setup.seeds:
            progress.update(task, description=f"{card.name} fold {fold} seed {seed}")
            if store.fold_complete(fold, seed):
                outcome.n_reused += 1
            else:
                error = _run_fold(card, request, setup, store, fold, seed, modalities)
                if error is None:
                    outcome.n_ok += 1
                else:
                    outcome.n_failed += 1
                    outcome.errors.append(f"fold {fold} seed {seed}: {error}")
                    console.print(f"[red]{card.name} fold {fold} seed {seed} failed:[/red] {error}")
            progress.advance(task)
    outcome.status = (
        "failed"
        if outcome.n_failed and not (outcome.n_ok + outcome.n_reused)
        else ("partial" if outcome.n_failed else "ok")
    )
    outcome.dice_mean = _aggregate(store, setup, request.metric_params)
    manifest.update(
        status=outcome.status,
        n_folds_ok=outcome.n_ok + outcome.n_reused,
        n_folds_failed=outcome.n_failed,
        errors=outcome.errors,
        updated=mf.now_iso(),
    )
    write_json(store.manifest_path, manifest)
    return outcome


def _manifest(
    card: MethodCard,
    request: RunRequest,
    setup: _Setup,
    config: dict[str, Any],
    chash: str,
    run_id: str,
    store: RunStore,
) -> dict[str, Any]:
    previous = store.manifest_path.is_file()
    return {
        "schema_version": mf.MANIFEST_SCHEMA_VERSION,
        "run_id": run_id,
        "method": card.name,
        "method_title": card.title,
        "dataset": setup.spec.name,
        "data_root": str(setup.root),
        "data_fingerprint": setup.data_fingerprint,
        "protocol": setup.protocol,
        "split": {
            "file": setup.split.path.name,
            "sha256": setup.split.sha256,
            "case_fingerprint": setup.split.case_fingerprint,
            "leaks_timepoints": setup.split.leaks_timepoints,
        },
        "budget": setup.budget.name,
        "folds": list(setup.folds),
        "seeds": list(setup.seeds),
        "modalities": config["modalities"],
        "reference": setup.spec.primary_reference,
        "references": list(setup.spec.references),
        "hparams": config["hparams"],
        "recipe": config["recipe"],
        "metric_params": config["metric_params"],
        "config_hash": chash,
        "config": config,
        "git": mf.git_state(),
        "versions": mf.library_versions(),
        "device": mf.device_info(setup.device),
        "command": mf.command_line(),
        "created": mf.now_iso() if not previous else _created(store),
        "updated": mf.now_iso(),
        "status": "running",
    }


def _created(store: RunStore) -> str:
    try:
        return str(read_json(store.manifest_path).get("created", mf.now_iso()))
    except ValueError:
        return mf.now_iso()


def _run_fold(
    card: MethodCard,
    request: RunRequest,
    setup: _Setup,
    store: RunStore,
    fold: int,
    seed: int,
    modalities: tuple[str, ...],
) -> str | None:
    """Fits and scores one (fold, seed); returns None when it succeeded, else the error text (also stored)."""
    fold_dir = store.fold_dir(fold, seed)
    split_fold = setup.split.folds[[f.index for f in setup.split.folds].index(fold)]
    train, val, test = (split_fold.select(setup.cases, role) for role in ("train", "val", "test"))
    context = FitContext(
        workdir=fold_dir / "work",
        seed=seed,
        device=setup.device,
        budget=setup.budget.name,
        recipe=card.recipe(setup.budget.name),
        hparams=card.hparams(setup.budget.name),
        modalities=modalities,
        reference=setup.spec.primary_reference,
        progress=request.progress,
    )
    started = mf.now_iso()
    t0 = time.perf_counter()
    try:
        context.workdir.mkdir(parents=True, exist_ok=True)
        seed_everything(seed)
        adapter = build_adapter(card, context)
        report = adapter.fit(train, val)
        fit_s = time.perf_counter() - t0
        cases_rows, lesion_rows, predict_s = [], [], 0.0
        for case in test:
            t1 = time.perf_counter()
            prediction = adapter.predict(case)
            predict_s += time.perf_counter() - t1
            _check_prediction(card.name, case, prediction)
            _save_prediction(fold_dir, case, prediction)
            rows, lesions = _score(case, prediction, request.metric_params)
            ids = {"method": card.name, "fold": fold, "seed": seed}
            cases_rows += [{**ids, **row} for row in rows]
            lesion_rows += [{**ids, **row} for row in lesions]
        write_json(fold_dir / "fit.json", {**asdict(report), "history": None})
        if report.history:
            write_csv(fold_dir / "train_log.csv", pd.DataFrame(report.history))
        write_csv(fold_dir / "lesions.csv", pd.DataFrame(lesion_rows))
        write_csv(fold_dir / "cases.csv", pd.DataFrame(cases_rows))
        status: dict[str, Any] = {
            "status": "ok",
            "fit_seconds": round(fit_s, 3),
            "predict_seconds": round(predict_s, 3),
            "n_test_cases": len(test),
            "train_cases": [c.case_id for c in train],
            "val_cases": [c.case_id for c in val],
            "test_cases": [c.case_id for c in test],
        }
        error = None
    except Exception as err:  # a method's failure is recorded, never fatal to the run
        error = f"{type(err).__name__}: {err}"
        status = {"status": "failed", "error": error, "traceback": traceback.format_exc()}
    status.update(started=started, finished=mf.now_iso(), wall_seconds=round(time.perf_counter() - t0, 3))
    write_json(fold_dir / "status.json", status)
    return error


def _check_prediction(method: str, case: Case, prediction: Prediction) -> None:
    mask = prediction.mask
    if not isinstance(mask, np.ndarray) or mask.dtype != bool or mask.shape != case.shape:
        got = f"{type(mask).__name__} {getattr(mask, 'dtype', '?')} {getattr(mask, 'shape', '?')}"
        raise ValueError(f"method {method!r} returned {got} for {case.case_id}; expected a bool array of {case.shape}.")
    prob = prediction.probability
    if prob is not None and (prob.shape != case.shape or not np.isfinite(prob).all()):
        raise ValueError(
            f"method {method!r}: probability map for {case.case_id} has shape {prob.shape} or non-finite values."
        )


def _save_prediction(fold_dir: Path, case: Case, prediction: Prediction) -> None:
    """Writes the mask (and probability map) in the orientation and affine of the case's input files."""
    import nibabel as nib

    from .store import atomic_path

    items = [("predictions", prediction.mask.astype(np.uint8))]
    if prediction.probability is not None:
        items.append(("probabilities", prediction.probability.astype(np.float32)))
    for folder, data in items:
        path = fold_dir / folder / f"{case.case_id}.nii.gz"
        with atomic_path(path) as tmp:
            nib.save(case.to_nifti(data), str(tmp))


def _score(case: Case, prediction: Prediction, params: MetricParams) -> tuple[list[dict], list[dict]]:
    rows, lesion_rows = [], []
    ids = {"case": case.case_id, "patient": case.patient_id, "timepoint": case.timepoint}
    for reference in case.masks:
        if reference == prediction.copied_reference:
            continue
        record, lesions = evaluate_case_with_lesions(
            prediction.mask, case.load_mask(reference), case.spacing_mm, params=params
        )
        rows.append({**ids, "reference": reference, **record})
        lesion_rows += [{**ids, "reference": reference, **row} for row in lesions]
    return rows, lesion_rows


def _aggregate(store: RunStore, setup: _Setup, params: MetricParams) -> float | None:
    """Writes the run's cases, lesions and summary tables from its completed folds; returns mean Dice (rater 1)."""
    cases = store.fold_tables("cases.csv")
    if cases.empty:
        return None
    write_csv(store.root / "cases.csv", cases)
    write_csv(store.root / "lesions.csv", store.fold_tables("lesions.csv"))
    summary = summarize(cases, patient_col="patient", group_cols=("reference",))
    extra = [_pooled_rows(cases), _challenge_rows(cases, setup, params)]
    write_csv(store.root / "summary.csv", pd.concat([summary, *extra], ignore_index=True))
    primary = summary[(summary["reference"] == setup.spec.primary_reference) & (summary["metric"] == "dice")]
    return float(primary["mean"].iloc[0]) if not primary.empty else None


def _pooled_rows(cases: pd.DataFrame) -> pd.DataFrame:
    pooled = pooled_dice(cases, group_cols=("reference",))
    return pooled.rename(columns={"dice_pooled": "mean"}).assign(metric="dice_pooled")


RATERS = ("mask1", "mask2")


def _challenge_rows(cases: pd.DataFrame, setup: _Setup, params: MetricParams) -> pd.DataFrame:
    """ISBI 2015 challenge score over both raters, normalised by rater 2 vs rater 1 on the same scans."""
    if not set(RATERS) <= set(setup.spec.references):
        return pd.DataFrame()
    scored = cases[cases["reference"].isin(RATERS)]
    by_id = {c.case_id: c for c in setup.cases}
    inter = pd.DataFrame(
        [
            {
                "case": cid,
                **evaluate_case(
                    by_id[cid].load_mask("mask2"), by_id[cid].load_mask("mask1"), by_id[cid].spacing_mm, params=params
                ),
            }
            for cid in sorted(set(scored["case"]))
        ]
    )
    inter_raw = isbi_challenge_score(inter, rater_col=None).raw
    score = isbi_challenge_score(scored, inter_rater_raw=inter_raw)
    n = score.n_valid
    return pd.DataFrame(
        [
            {"reference": "+".join(RATERS), "metric": "isbi_score_raw", "mean": score.raw, "n_valid": n},
            {"reference": "+".join(RATERS), "metric": "isbi_score_normalised", "mean": score.normalised, "n_valid": n},
            {"reference": "mask1", "metric": "isbi_score_inter_rater_raw", "mean": inter_raw, "n_valid": len(inter)},
        ]
    )


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
    )
