"""Planning a run, before anything runs: the request, the data and split, and per method its identity and jobs.

``RunRequest`` is what the user asked, ``RunSetup`` the data and split it runs on, and ``RunPlan`` one method's run:
its config and hash (the run id), its manifest and its jobs (fold x seed).

Every check here fails before a job runs; the run's manifest is written once, when the run is first planned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msbench.datasets import Case, DatasetSpec, Split, get_dataset, load_split
from msbench.methods import MethodCard, get_card, resolve_methods

from . import manifest as mf
from . import options
from .fitting import Overrides, fit_settings
from .job import Job, JobInputs, ShiftedInputs
from .metrics import SUITE_VERSION, MetricParams
from .protocol import Budget, get_budget
from .store import MANIFEST_SCHEMA_VERSION, STORE_SCHEMA_VERSION, RunStore, file_lock, read_manifest, write_json

if TYPE_CHECKING:  # the type only: tuning imports plan, and the runner hands plan the loaded parameters
    from .tuning import TunedParams

ALL_FOLDS = "all"


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
        reuse_stale: Keep jobs committed by other code (marked stale in the manifest and index) instead of rerunning.
        executor: ``local`` (one job after another here) or ``ray`` (one Ray task per job).
        ray_address: Address of an existing Ray cluster (None: start a local one).
        cpus_per_job: CPU cores a Ray task asks for when the cluster has no GPU.
        batch_size: Samples per step for every trainable method instead of its recipe's (part of the run's identity).
        tuned: Use each method's best parameters from its finished Optuna study (``msbench tune``); methods without a
            search space run their defaults. Study, trial and parameters join the run's identity and manifest.
        tuning_storage: Where the studies are (default ``RESULTS/tuning/optuna-journal.log``).
        patient_regex: ``--patient-regex``: which cases are one patient's, for a dataset whose case ids do not say
            (``nnunet-raw``); recorded in the manifest.
        tuning_study: ``--tuned``: the study to read (``msbench tune --study NAME``) for the one method named in
            ``methods`` that has a search space (default: each method's default study name).
        test_dataset: Cross-dataset protocol: fit and select on ``dataset``'s folds as always, then also score every
            scan of this registered dataset (``shifted``) beside the fold's test patients (``in-domain``).
        test_data_root: Where ``test_dataset`` lives (default: its environment variable; synth-ms: the cache).
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
    reuse_stale: bool = False
    executor: str = "local"
    ray_address: str | None = None
    cpus_per_job: int = 2
    batch_size: int | None = None
    tuned: bool = False
    tuning_storage: str | None = None
    tuning_study: str | None = None
    patient_regex: str | None = None
    test_dataset: str | None = None
    test_data_root: Path | None = None


SHIFTED_PROTOCOL = "all-scans"
"""The protocol of a cross-dataset run's second data set: every scan is scored, none is trained or selected on."""


@dataclass(frozen=True)
class ShiftedSetup:
    """The second data set of a cross-dataset run (``--test-dataset``)."""

    spec: DatasetSpec
    root: Path
    cases: list[Case]
    data_fingerprint: str

    def describe(self) -> dict[str, Any]:
        """The manifest's ``test_dataset`` entry."""
        return {
            "dataset": self.spec.name,
            "protocol": SHIFTED_PROTOCOL,
            "data_root": str(self.root),
            "data_fingerprint": self.data_fingerprint,
            "reference": self.spec.primary_reference,
            "references": list(self.spec.references),
            "cases": [c.case_id for c in self.cases],
        }


@dataclass
class MethodOutcome:
    """How one method's run ended."""

    method: str
    run_id: str
    status: str
    n_ok: int = 0
    n_failed: int = 0
    n_reused: int = 0
    n_elsewhere: int = 0
    errors: list[str] = field(default_factory=list)
    dice_mean: float | None = None
    baseline_dice: float | None = None
    shifted_dice: float | None = None

    @property
    def beats_baseline(self) -> bool | None:
        if self.dice_mean is None or self.baseline_dice is None:
            return None
        return self.dice_mean > self.baseline_dice


@dataclass(frozen=True)
class RunSetup:
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
    shifted: ShiftedSetup | None = None


def prepare_shifted(request: RunRequest, budget: Budget) -> ShiftedSetup | None:
    """Loads ``--test-dataset`` (every scan; no split), or None without one."""
    if request.test_dataset is None:
        if request.test_data_root is not None:
            raise ValueError("--test-data-root is given without --test-dataset; name the dataset it holds.")
        return None
    spec = get_dataset(request.test_dataset)
    if request.test_data_root is not None and Path(request.test_data_root).is_dir():
        root = spec.resolve_root(request.test_data_root)  # a phantom of any seed or grid is read as it is
    else:
        root = spec.prepare_root(
            request.test_data_root, resolution_mm=budget.synth_resolution_mm, progress=request.progress
        )
    cases = spec.load_cases(root)
    unscored = [c.case_id for c in cases if not c.masks]
    if unscored:
        raise ValueError(
            f"--test-dataset {spec.name}: cases {', '.join(unscored[:5])} in {root} have no reference mask to score "
            "against; a shifted test set needs masks (use 'msbench predict' for scans without them)."
        )
    files = [p for c in cases for p in (*c.images.values(), *c.masks.values())]
    return ShiftedSetup(spec, root, cases, mf.data_fingerprint(files))


def prepare_run(request: RunRequest, *, fingerprint: bool = True) -> RunSetup:
    """The data, split, folds, seeds and device of a request.

    ``fingerprint`` False skips reading every data file (tuning, which must not open the test patients' files);
    ``data_fingerprint`` is then empty.
    """
    spec = get_dataset(request.dataset)
    budget = get_budget(request.budget)
    protocol = request.protocol or spec.default_protocol
    user_file = protocol.endswith(".json")  # a split file the user made (make_kfold_split), e.g. for nnunet-raw
    if not user_file and protocol not in spec.protocols:
        raise ValueError(f"dataset {spec.name!r} has no protocol {protocol!r}; it has {', '.join(spec.protocols)}.")
    root = spec.prepare_root(request.data_root, resolution_mm=budget.synth_resolution_mm, progress=request.progress)
    cases = spec.load_cases(root, patient_regex=request.patient_regex)
    split = load_split(spec.name, Path(protocol) if user_file else protocol, cases)
    protocol = split.protocol
    available = tuple(f.index for f in split.folds)
    if request.folds is None:
        folds = budget.default_folds(available)
    elif isinstance(request.folds, str):
        if request.folds != ALL_FOLDS:
            raise ValueError(f"--folds {request.folds!r}: give fold indices (e.g. 0,2) or {ALL_FOLDS!r}.")
        folds = available
    else:
        folds = request.folds
    known = {f.index for f in split.folds}
    if not set(folds) <= known:
        raise ValueError(
            f"folds {sorted(set(folds) - known)} do not exist in {split.path.name}; it has {sorted(known)}."
        )
    files = [p for c in cases for p in (*c.images.values(), *c.masks.values())]
    return RunSetup(
        spec=spec,
        budget=budget,
        protocol=protocol,
        root=root,
        cases=cases,
        split=split,
        folds=tuple(folds),
        seeds=request.seeds if request.seeds is not None else budget.seeds,
        device=options.resolve_device(request.device),
        data_fingerprint=mf.data_fingerprint(files) if fingerprint else "",
        shifted=prepare_shifted(request, budget),
    )


def run_config(card: MethodCard, request: RunRequest, setup: RunSetup, overrides: Overrides) -> dict[str, Any]:
    """Everything that changes a run's numbers; its hash names the run (a cross-dataset run adds its test set).

    Its ``hparams`` and ``recipe`` are the door's (:func:`~msbench.benchmark.fitting.fit_settings`).
    """
    hparams, recipe = fit_settings(card, setup.budget.name, overrides)
    config = {
        "method": card.name,
        "hparams": hparams,
        "recipe": asdict(recipe),
        "modalities": list(request.modalities or card.modalities),
        "dataset": setup.spec.name,
        "protocol": setup.protocol,
        "budget": setup.budget.name,
        "reference": setup.spec.primary_reference,
        "metric_params": request.metric_params.as_dict(),
        "split_sha256": setup.split.sha256,
        "data_fingerprint": setup.data_fingerprint,
    }
    if setup.shifted is not None:
        config["test_dataset"] = setup.shifted.spec.name
        config["test_protocol"] = SHIFTED_PROTOCOL
        config["test_data_fingerprint"] = setup.shifted.data_fingerprint
    return config


@dataclass
class RunPlan:
    """One method's run: its store, the code hash its jobs must carry, what they share, and their outcome."""

    card: MethodCard
    store: RunStore
    code: str
    inputs: JobInputs
    jobs: list[Job]
    outcome: MethodOutcome


def check_tuning_study(request: RunRequest) -> None:
    """``--study`` names one study: it needs ``--tuned`` and exactly one requested method with a search space.

    Raises:
        ValueError: Either does not hold (says which methods would share the name).
    """
    if request.tuning_study is None:
        return
    if not request.tuned:
        raise ValueError(f"--study {request.tuning_study!r} names a tuning study to run with: add --tuned.")
    tunable = [n for n in resolve_methods(request.methods) if get_card(n).search_space]
    if len(tunable) != 1:
        which = f"methods {', '.join(tunable)} have" if tunable else "no method of --method has"
        raise ValueError(
            f"--study {request.tuning_study!r} names one method's study, and {which} a search space; "
            "give one tunable --method with --study (other runs use their default study names)."
        )


def tuned_params(tuned: TunedParams | None, setup: RunSetup) -> tuple[dict[str, Any], TunedParams | None]:
    """``--tuned``: the study's best parameters and the study's record ({} and None without ``--tuned``).

    ``tuned`` is what the runner loaded from the study (:func:`msbench.benchmark.tuning.load_tuned`).

    Raises:
        ValueError: A run fold whose test patients the study saw as training or validation patients.
    """
    if tuned is None:
        return {}, None
    seen = set(tuned.seen_patients)
    for fold in (f for f in setup.split.folds if f.index in setup.folds):
        leaked = seen & {c.patient_id for c in fold.select(setup.cases, "test")}
        if leaked:
            raise ValueError(
                f"--tuned: study {tuned.study!r} tuned on fold {tuned.fold} with patients {sorted(seen)}, and "
                f"{sorted(leaked)} are test patients of fold {fold.index} of this run; run --tuned with --folds "
                f"{tuned.fold} (a study's parameters are for the folds whose test patients it never saw)."
            )
    return dict(tuned.params), tuned


def plan_run(card: MethodCard, request: RunRequest, setup: RunSetup, tuned: TunedParams | None = None) -> RunPlan:
    """Names the run (config hash), writes its manifest once, and lists its jobs (fold x seed).

    ``tuned``: the best parameters of the method's study (``--tuned``, loaded by the runner), or None.
    """
    params, tuned = tuned_params(tuned, setup)
    overrides = Overrides(params=params, batch_size=request.batch_size)
    config = run_config(card, request, setup, overrides)
    if tuned is not None:  # study, trial and parameters name the run; where the storage lies does not
        config["tuning"] = {"study": tuned.study, "trial": tuned.trial, "params": tuned.params}
    chash = mf.config_hash(config)
    modalities = tuple(config["modalities"])
    mods = "" if modalities == card.modalities else "+" + "-".join(modalities)
    data = setup.spec.name if setup.shifted is None else f"{setup.spec.name}-to-{setup.shifted.spec.name}"
    run_id = f"{card.name}{mods}__{data}__{setup.protocol}__{setup.budget.name}__{chash[:8]}"
    store = RunStore(request.results, run_id)
    code = mf.code_hash(card.adapter, SUITE_VERSION)
    inputs = JobInputs(
        cases=setup.cases,
        split=setup.split,
        device=setup.device,
        budget=setup.budget.name,
        modalities=modalities,
        reference=setup.spec.primary_reference,
        metric_params=request.metric_params,
        progress=request.progress and request.executor == "local",
        dataset=setup.spec.name,
        shifted=None if setup.shifted is None else ShiftedInputs(setup.shifted.spec.name, setup.shifted.cases),
        overrides=overrides,
    )
    with file_lock(store.lock_path):
        if store.manifest_path.is_file():
            read_manifest(store.manifest_path)  # a run of another schema is refused before any job runs
        else:
            manifest = _manifest(card, setup, config, chash, run_id, store)
            manifest["tuning"] = tuned.manifest_entry() if tuned is not None else None
            manifest["patient_regex"] = request.patient_regex  # the board lists the cases again with it
            write_json(store.manifest_path, manifest)
    jobs = [Job(run_id, card.name, fold, seed, code) for fold in setup.folds for seed in setup.seeds]
    return RunPlan(card, store, code, inputs, jobs, MethodOutcome(card.name, run_id, "running"))


def _manifest(
    card: MethodCard, setup: RunSetup, config: dict[str, Any], chash: str, run_id: str, store: RunStore
) -> dict[str, Any]:
    """The run's manifest: what the run is. What each job ran on (commit, versions, device) is in its job.json."""
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "store_schema_version": STORE_SCHEMA_VERSION,
        "run_id": run_id,
        "method": card.name,
        "method_title": card.title,
        "claims": [asdict(claim) for claim in card.claims],  # what the paper reports: the board reads it from here
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
        "modalities": config["modalities"],
        "reference": setup.spec.primary_reference,
        "references": list(setup.spec.references),
        "hparams": config["hparams"],
        "recipe": config["recipe"],
        "metric_params": config["metric_params"],
        "config_hash": chash,
        "config": config,
        "test_dataset": None if setup.shifted is None else setup.shifted.describe(),
        "domains": {
            "in-domain": {"dataset": setup.spec.name, "protocol": setup.protocol},
            **(
                {}
                if setup.shifted is None
                else {"shifted": {"dataset": setup.shifted.spec.name, "protocol": SHIFTED_PROTOCOL}}
            ),
        },
        "created": mf.now_iso(),
        "status": "running",
    }
