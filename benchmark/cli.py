"""The ``msbench`` command line: a thin layer over the Python API (every command calls one function).

A command imports inside its body only what ``msbench --help`` should not pay for, each with its reason: the harness
behind ``run``, ``evaluate``, ``predict``, ``profile``, ``tune`` and ``store reindex`` loads numba (the metric
kernels, through the fitting door); ``gate`` and ``leaderboard export`` load scipy.stats and ``datasets synth`` and
``realism`` the phantom generator (each about 0.2-0.4 s, measured with ``python -X importtime``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from msbench.datasets import DatasetNotFoundError, get_dataset
from msbench.datasets.info import dataset_info, describe_datasets
from msbench.datasets.nnunet_raw import check_patient_regex
from msbench.datasets.registry import PluginError
from msbench.datasets.splits import make_kfold_split
from msbench.methods import get_card, list_methods
from msbench.methods.show import describe_method

from ._console import err, out, print_table
from ._console import fail as _fail
from .cli_datasets_fetch import datasets_fetch
from .cli_gate import gate as _gate
from .cli_leaderboard import leaderboard_app
from .cli_profile import profile
from .cli_store import runs_app, store_app
from .cli_tune import tune as _tune_command
from .metrics import SUITE_VERSION
from .store import check_results_dir, store_writes

app = typer.Typer(
    help="msbench: one protocol for MS lesion segmentation methods.", no_args_is_help=True, add_completion=False
)
datasets_app = typer.Typer(help="List, inspect and generate datasets.", no_args_is_help=True)
methods_app = typer.Typer(help="List and inspect registered methods.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(methods_app, name="methods")
app.add_typer(store_app, name="store")
app.add_typer(runs_app, name="runs")
app.add_typer(leaderboard_app, name="leaderboard")
app.command("tune")(_tune_command)
app.command("profile")(profile)
datasets_app.command("fetch")(datasets_fetch)
app.command(name="gate")(_gate)


def _csv_ints(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _csv_strs(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(v.strip() for v in text.split(",") if v.strip())


@app.command()
def run(
    method: Annotated[str, typer.Option(help="'all', a comma-separated list, or patterns like 'fcdensenet*'.")],
    dataset: Annotated[str, typer.Option(help="Registered dataset (see 'msbench datasets list').")] = "synth-ms",
    budget: Annotated[str, typer.Option(help="smoke, quick or paper.")] = "smoke",
    results: Annotated[Path, typer.Option(help="Results store folder.")] = Path("results"),
    data_root: Annotated[Path | None, typer.Option(help="Dataset folder (else its MSBENCH_*_ROOT variable).")] = None,
    protocol: Annotated[str | None, typer.Option(help="Split protocol (default: the dataset's first).")] = None,
    folds: Annotated[
        str | None,
        typer.Option(help="Comma-separated fold indices or 'all' (default: the budget's: first on smoke, else all)."),
    ] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds (default: the budget's).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    modalities: Annotated[str | None, typer.Option(help="e.g. flair or flair,t1,t2 (default: each method's).")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    baseline: Annotated[
        bool, typer.Option(help="Also run the 'threshold' baseline (a second per fold) and record who beats it.")
    ] = True,
    reuse_stale: Annotated[
        bool,
        typer.Option(help="Keep jobs committed by other code (marked stale) instead of running them again."),
    ] = False,
    executor: Annotated[
        str, typer.Option(help="local (one job after another) or ray (one Ray task per job; pip install '.[ray]').")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray: address of an existing cluster (default: start a local one).")
    ] = None,
    cpus_per_job: Annotated[int, typer.Option(help="Ray: CPU cores per job when the cluster has no GPU.")] = 2,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Samples per step for every trainable method instead of its recipe's (a new run id)."),
    ] = None,
    patient_regex: Annotated[
        str | None,
        typer.Option(help="nnunet-raw: regex over case ids whose group 'patient' (else group 1) is the patient."),
    ] = None,
    tuned: Annotated[
        bool,
        typer.Option(help="Use each method's best parameters from its finished 'msbench tune' study (a new run id)."),
    ] = False,
    tuning_storage: Annotated[
        str | None, typer.Option(help="--tuned: the studies' storage (default RESULTS/tuning/optuna-journal.log).")
    ] = None,
    study: Annotated[
        str | None,
        typer.Option(help="--tuned: the study of the one tunable --method (a name given to 'msbench tune --study')."),
    ] = None,
    test_dataset: Annotated[
        str | None,
        typer.Option(help="Cross-dataset: also score every scan of this dataset with each fold's model (shifted)."),
    ] = None,
    test_data_root: Annotated[
        Path | None, typer.Option(help="Folder of --test-dataset (else its MSBENCH_*_ROOT variable).")
    ] = None,
) -> None:
    """Run methods under one protocol; resumable (finished folds are reused), failures recorded."""
    from .plan import ALL_FOLDS, RunRequest  # numba: on use (module docstring)
    from .run_report import next_commands, outcome_table, work_summary
    from .runner import RunInterrupted, interruptible, run_benchmark

    request = RunRequest(
        methods=method,
        dataset=dataset,
        results=results,
        budget=budget,
        protocol=protocol,
        data_root=data_root,
        folds=ALL_FOLDS if folds == ALL_FOLDS else _csv_ints(folds),
        seeds=_csv_ints(seeds),
        device=device,
        modalities=_csv_strs(modalities),
        progress=progress,
        baseline=baseline,
        reuse_stale=reuse_stale,
        executor=executor,
        ray_address=address,
        cpus_per_job=cpus_per_job,
        batch_size=batch_size,
        tuned=tuned,
        tuning_storage=tuning_storage,
        tuning_study=study,
        patient_regex=patient_regex,
        test_dataset=test_dataset,
        test_data_root=test_data_root,
    )
    try:
        check_patient_regex(dataset, patient_regex)
        with interruptible(), store_writes(results):
            outcomes = run_benchmark(request)
    except RunInterrupted as stop:
        err.print(stop.message, highlight=False)
        raise typer.Exit(stop.exit_status) from None
    except (DatasetNotFoundError, KeyError, ValueError) as error:
        _fail(str(error).strip("'\""))
        return
    title = dataset if test_dataset is None else f"trained on {dataset}, also tested on {test_dataset}"
    print_table(outcome_table(outcomes, f"msbench run: {title}, budget {budget}", test_dataset))
    stored = f"results: {results / 'runs'} ({', '.join(o.run_id for o in outcomes)})"
    for line in (stored, work_summary(outcomes), *next_commands(results)):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    failed = [o for o in outcomes if o.errors]
    for o in failed:
        for line in o.errors:
            err.print(f"[red]{o.method}[/red] {escape(line)}", highlight=False)
    if failed:
        raise typer.Exit(1)


_EVALUATE_HELP = "\n\n".join(
    (
        "Score predictions against references with the same metric code the runner uses. Every row stores "
        "suite_version and every metric parameter.",
        "HD95 is the larger of the two directed 95th percentiles (MONAI, MetricsReloaded); medpy pools both "
        "directions, so its hd95 is equal or lower. ASSD pools both directions (as medpy and MONAI).",
        "Empty masks: an empty prediction on a scan with lesions gets the worst value of every score it leaves "
        "undefined (PPV, lesion precision, Anima PPVL 0; LFPR 1; F1 0; HD, HD95, ASSD the field-of-view "
        "diagonal in mm), so it never drops out of a mean. An empty reference gives NaN for recall-type scores. "
        "Both empty: scores NaN, flagged both_empty and counted apart. Specificity, NPV, accuracy, extra "
        "fraction, VD and their slice versions reward an empty prediction: never rank on them.",
        "nDSC = 2TP / (k FP + 2TP + FN) with k = (1 - r)|G| / (r (N - |G|)); N is the voxel count of --domain "
        "(a brain mask) or else of the whole volume (domain_voxels and domain_is_mask in the table).",
    )
)


@app.command(help=_EVALUATE_HELP)
def evaluate(
    pred: Annotated[Path, typer.Argument(help="Predicted mask (NIfTI) or folder of masks.")],
    ref: Annotated[Path, typer.Argument(help="Reference mask (NIfTI) or folder, matched by file name.")],
    out_csv: Annotated[Path, typer.Option("--out", help="Per-case metric table (CSV).")],
    lesions_out: Annotated[Path | None, typer.Option(help="Per-lesion table (CSV).")] = None,
    connectivity: Annotated[
        int, typer.Option(help="Lesion connectivity of the ISBI 2015 family: 6, 18 or 26 (stored per row).")
    ] = 18,
    ndsc_reference_load: Annotated[
        float,
        typer.Option(help="nDSC's r, the reference lesion load in (0, 1): 0.001 as in Shifts 2.0 (stored per row)."),
    ] = 0.001,
    domain: Annotated[
        Path | None,
        typer.Option(
            help="Brain mask (NIfTI) or folder of brain masks matched by file name: nDSC's N and the balanced "
            "slice negatives. Default: the whole volume."
        ),
    ] = None,
) -> None:
    """Score predictions against references with the same metric code the runner uses."""
    from .evaluate import evaluate_to_csv  # numba: on use (module docstring)

    try:
        table = evaluate_to_csv(
            pred,
            ref,
            out_csv,
            lesions_out=lesions_out,
            connectivity=connectivity,
            ndsc_reference_load=ndsc_reference_load,
            domain=domain,
        )
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
        return
    cols = [c for c in ("case", "dice", "ppv", "sensitivity", "hd95_mm", "ltpr", "lfpr") if c in table.columns]
    out.print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"), soft_wrap=True)

    written = f"wrote {out_csv}" + (f" and {lesions_out}" if lesions_out else "")
    out.print(f"{written} (metric suite {SUITE_VERSION}, lesion connectivity {connectivity})", highlight=False)


@app.command()
def predict(
    images: Annotated[
        list[str], typer.Argument(help="NIfTI scans; for a multi-modal run 'flair=A.nii.gz,t1=B.nii.gz' per scan.")
    ],
    run: Annotated[str, typer.Option(help="Run id in the store (a unique prefix is enough; see 'msbench runs list').")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for <scan>_mask.nii.gz and _probability.nii.gz.")],
    results: Annotated[Path, typer.Option(help="Results store folder.")] = Path("results"),
    fold: Annotated[int | None, typer.Option(help="Use this fold's model (needed when the run has several).")] = None,
    ensemble: Annotated[bool, typer.Option(help="Average the models of every finished job of the run.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Segment your own scans with a model trained in the store (mask and probability on each scan's own grid)."""
    from .predict import predict_scans  # numba: on use (module docstring)

    if fold is not None and ensemble:
        _fail("--fold and --ensemble exclude each other: one fold's model, or all of them.")
    try:
        check_results_dir(results, write=False, index=False)  # the job folders hold the models
        written = predict_scans(results, run, images, out_dir, fold=fold, ensemble=ensemble, device=device)
    except (FileNotFoundError, KeyError, ValueError) as error:
        _fail(str(error).strip("'\""))
        return
    for path in written:
        out.print(f"wrote {path}", highlight=False)


@datasets_app.command("list")
def datasets_list() -> None:
    """List the registered datasets, their layouts' variables and protocols."""
    table = Table()
    frame = describe_datasets()
    columns = [c for c in ("name", "env_var", "protocols", "references", "root_status") if c in frame]
    for column in columns:
        table.add_column(column, no_wrap=column in ("name", "env_var"))
    for _, row in frame.iterrows():
        table.add_row(*(str(row[c]) for c in columns))
    print_table(table)


@datasets_app.command("info")
def datasets_info(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    root: Annotated[Path | None, typer.Option(help="Dataset folder (else its environment variable).")] = None,
    masks_only: Annotated[bool, typer.Option(help="Read reference masks only (datasets without images).")] = False,
    connectivity: Annotated[int, typer.Option(help="Lesion connectivity for the counts: 6, 18 or 26.")] = 18,
    patient_regex: Annotated[
        str | None,
        typer.Option(help="nnunet-raw: regex over case ids whose group 'patient' (else group 1) is the patient."),
    ] = None,
) -> None:
    """Cases, patients, time points, modalities, shape, spacing, lesion count and load per case."""
    try:
        check_patient_regex(name, patient_regex)
        table = dataset_info(
            name, root, connectivity=connectivity, masks_only=masks_only, progress=True, patient_regex=patient_regex
        )
    except (FileNotFoundError, KeyError, ValueError) as error:
        _fail(str(error).strip("'\""))
        return
    out.print(table.to_string(index=False), soft_wrap=True)


@datasets_app.command("split")
def datasets_split(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the split file into.")],
    root: Annotated[Path | None, typer.Option(help="Dataset folder (else its environment variable).")] = None,
    k: Annotated[int, typer.Option(help="Number of folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the patient shuffle.")] = 0,
    patient_regex: Annotated[
        str | None,
        typer.Option(help="nnunet-raw: regex over case ids whose group 'patient' (else group 1) is the patient."),
    ] = None,
) -> None:
    """Write a seeded patient-level K-fold split of the cases on disk (use it with --protocol FILE.json)."""
    try:
        check_patient_regex(name, patient_regex)
        spec = get_dataset(name)
        cases = spec.load_cases(root, patient_regex=patient_regex)
        path = make_kfold_split(name, cases, k=k, seed=seed, out=out_dir)
    except (FileNotFoundError, KeyError, ValueError) as error:
        _fail(str(error).strip("'\""))
        return
    out.print(f"split written to {path}; run with --protocol {path}")


@datasets_app.command("synth")
def datasets_synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the phantom into.")],
    seed: Annotated[int, typer.Option(help="Phantom seed (same seed, same bytes).")] = 0,
    resolution: Annotated[float, typer.Option(help="Voxel size in mm (1 = the ISBI 2015 grid).")] = 1.0,
    patients: Annotated[int, typer.Option(help="Number of patients.")] = 5,
) -> None:
    """Write the synth-ms phantom in the ISBI 2015 training layout."""
    # scipy, nibabel, nilearn (the phantom generator): about 0.2-0.3 s of every 'msbench --help' (importtime)
    from msbench.datasets.phantom import generate_synth_ms

    try:
        root = generate_synth_ms(out_dir, seed=seed, resolution_mm=resolution, n_patients=patients, progress=True)
    except (TypeError, ValueError) as error:
        _fail(str(error))
        return
    out.print(f"synth-ms written to {root}")


@datasets_app.command("realism")
def datasets_realism(
    root: Annotated[Path | None, typer.Option(help="A generated phantom (default: generate one).")] = None,
    real: Annotated[
        Path | None, typer.Option(help="Folder of real masks (default: ../shared/data/open_ms_data).")
    ] = None,
    png: Annotated[Path, typer.Option(help="Where to write the figure.")] = Path("synth-ms-realism.png"),
    seed: Annotated[int, typer.Option(help="Seed of the phantom generated when --root is not given.")] = 0,
) -> None:
    """Compare the phantom's lesion statistics with the reference figures and real masks."""
    # scipy, nibabel, nilearn (the phantom generator): about 0.2-0.3 s of every 'msbench --help' (importtime)
    from msbench.datasets.phantom import realism_report

    report = realism_report(root, real_dir=real, seed=seed)
    out.print(report.to_text(), soft_wrap=True, markup=False, highlight=False)
    out.print(f"figure: {report.write_png(png)}")


@methods_app.command("list")
def methods_list() -> None:
    """List registered methods with their input kind, modalities and paper."""
    table = Table()
    for column in ("name", "input", "modalities", "trainable", "title"):
        table.add_column(column)
    for name in list_methods():
        card = get_card(name)
        table.add_row(name, card.input_kind, ",".join(card.modalities), "yes" if card.trainable else "no", card.title)
    print_table(table)


@methods_app.command("show")
def methods_show(name: Annotated[str, typer.Argument(help="Method name.")]) -> None:
    """Print a method's card: citation, claims, defaults, search space, recipes, choices, parameter count."""
    try:
        text = describe_method(name)
    except KeyError as error:
        _fail(str(error).strip("'\""))
        return
    out.print(text, highlight=False)


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="msbench")
    except PluginError as error:  # raised wherever a registry is first read, whichever command that is
        try:
            _fail(str(error))
        except typer.Exit as exit_:
            sys.exit(exit_.exit_code)


if __name__ == "__main__":
    main()
