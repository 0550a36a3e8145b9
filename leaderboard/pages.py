"""The leaderboard's pages: each ``render_*`` draws one page from a :class:`~.data.StoreData` and the filters."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from msbench.benchmark.statistics import ALPHA, TEST_STATEMENT, min_patients, no_significance_reason

from . import charts, plots
from .data import StoreData
from .display import DEFAULT_GROUPS, GROUPS, row_height_px, styled, with_scans
from .export import run_label
from .overlays import best_slices, case_files, load_case, overlay_figure, prediction_file
from .shift import shift_table
from .statistics import STATEMENT, dice_matrix, rank_stability, wilcoxon_matrix
from .table import COST_COLUMNS, SECTIONS, filter_table, not_ranked_reasons

PAGES = (
    "Leaderboard", "Statistics", "Per-case Dice", "Lesions", "Volumes", "Cost", "Training", "Tuning", "Shift",
    "Overlays",
)  # fmt: skip
_HIDDEN = ("run_id", "section", "ranking", "dataset", "reference")


@dataclass(frozen=True)
class Filters:
    """What the sidebar chose: one dataset and reference, the protocols and modality sets to show."""

    dataset: str
    reference: str
    protocols: list[str]
    modalities: list[str]


def sidebar_filters(table: pd.DataFrame) -> Filters:
    """The sidebar's filters over the main table (dataset, reference, protocol, modality set)."""
    datasets = sorted(table["dataset"].unique())
    dataset = st.sidebar.selectbox("Dataset", datasets, key="dataset")
    rows = table[table["dataset"] == dataset]
    references = sorted(rows["reference"].dropna().unique())
    default = references.index("mask1") if "mask1" in references else 0
    reference = st.sidebar.selectbox("Reference (rater)", references, index=default, key="reference")
    protocols = sorted(rows["protocol"].unique())
    chosen = st.sidebar.multiselect("Protocols", protocols, default=protocols, key="protocols")
    modality_sets = sorted(rows["modalities"].unique())
    mods = st.sidebar.multiselect("Modality sets", modality_sets, default=modality_sets, key="modalities")
    return Filters(dataset, reference, chosen, mods)


def shown_rows(table: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    return filter_table(
        table,
        dataset=[filters.dataset],
        reference=[filters.reference],
        protocol=filters.protocols,
        modalities=filters.modalities,
    )


def _labels(rows: pd.DataFrame) -> dict[str, str]:
    """Run id -> label: method and modality set; the protocol, then the run's hash, added where two look the same."""
    labels = {}
    for run_id, method, mods, protocol in zip(
        rows["run_id"], rows["method"], rows["modalities"], rows["protocol"], strict=True
    ):
        labels[run_id] = run_label(method, mods)
        if sum(run_label(m, x) == labels[run_id] for m, x in zip(rows["method"], rows["modalities"], strict=True)) > 1:
            labels[run_id] += f" {protocol}"
    counts = pd.Series(list(labels.values())).value_counts()
    return {r: f"{v} {r[-8:]}" if counts[v] > 1 else v for r, v in labels.items()}


def render_leaderboard(data: StoreData, table: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The main table: the methods (numbered only where the run supports a ranking), and the rows shown apart."""
    rows = shown_rows(table, filters)
    reasons = not_ranked_reasons(rows)
    for key, reason in reasons.items():
        st.warning(f"{' / '.join(key)}: {reason} Methods are ordered by mean Dice, not numbered.")
    groups = st.multiselect("Column groups", list(GROUPS), default=list(DEFAULT_GROUPS), key="column-groups")
    shown = {c for g in groups for c in GROUPS[g]} | {"method"}
    titles = {
        "methods": "Methods, ordered by mean Dice" if reasons else "Ranked methods (by mean Dice)",
        "human reference": "Human reference: raters scored against the reference (inter-rater: the second rater)",
        "leaking protocol": "Leaking protocol (time points of one patient on both sides): not ranked with the rest",
        "failed or partial": "Failed or partial runs: never ranked",
    }
    for section in SECTIONS:
        part = rows[rows["section"] == section]
        if part.empty and section != "methods":
            continue
        st.subheader(titles[section])
        if section == "failed or partial":
            part = _with_errors(data, part)
        else:
            part = with_scans(part)
            keep = [c for c in part.columns if c in shown and c not in _HIDDEN]
            if "rank" in keep and (section != "methods" or part["rank"].isna().all()):
                keep.remove("rank")
            part = part[keep]
        st.dataframe(
            styled(part), hide_index=True, key=f"table-{section}", height=row_height_px(len(part)),
            column_config={"method": st.column_config.Column(pinned=True, width="medium")},  # whole names
        )  # fmt: skip
    st.caption(
        "Mean Dice over the run's scored scans; 95 % CI by bootstrap over patients ('n = 1': one tested patient, no "
        f"interval). {TEST_STATEMENT} Methods are numbered only where their test patients let such a test reach "
        f"p < {ALPHA:g} (at least {min_patients()} patients). ISBI score (normalised so the inter-rater row scores "
        "90 on the same scans) and volume r are built on a volume correlation over the scans in brackets: shown with "
        "that n, never used to order. 'stale': the method's code or the metric suite changed since the run. Paper "
        "Dice: the method card's claim, with its data. '—': no value (a cost column: the run was not profiled)."
    )
    return rows


def _with_errors(data: StoreData, rows: pd.DataFrame) -> pd.DataFrame:
    jobs = data.jobs[data.jobs["run_id"].isin(rows["run_id"])]
    errors = jobs.groupby("run_id")["error"].apply(lambda e: "; ".join(sorted({str(x) for x in e.dropna()})))
    failed = jobs.groupby("run_id")["status"].apply(lambda s: f"{(s != 'ok').sum()} of {len(s)} jobs failed")
    out = rows[["method", "modalities", "protocol", "budget", "status", "cases"]].copy()
    out["jobs"] = rows["run_id"].map(failed).fillna("no job committed")
    out["error"] = rows["run_id"].map(errors).fillna("")
    return out


def _ranked_matrix(data: StoreData, rows: pd.DataFrame, key: str) -> tuple[pd.DataFrame, list[str]] | None:
    """Per-case Dice of the ranked (and human reference) runs of one protocol and budget, chosen on the page.

    Returns:
        (the matrix, one column per run; the columns of the human reference runs, which are compared, never ranked).
    """
    usable = rows[rows["section"].isin(("methods", "human reference"))]
    if usable.empty:
        st.info("No finished run of a method matches the filters.")
        return None
    groups = sorted({f"{p} / {b}" for p, b in zip(usable["protocol"], usable["budget"], strict=True)})
    group = st.selectbox("Protocol / budget", groups, key=f"group-{key}")
    protocol, budget = group.split(" / ")
    chosen = usable[(usable["protocol"] == protocol) & (usable["budget"] == budget)]
    labels = _labels(chosen)
    matrix = dice_matrix(data.wide_cases(reference=rows["reference"].iloc[0]), labels)
    human = [labels[r] for r in chosen.loc[chosen["section"] == "human reference", "run_id"] if labels[r] in matrix]
    return matrix, human


def render_statistics(data: StoreData, table: pd.DataFrame, filters: Filters) -> None:
    """Paired Wilcoxon matrix on per-patient means (Holm) and bootstrap rank stability, or why no test can tell."""
    found = _ranked_matrix(data, shown_rows(table, filters), "stats")
    if found is None:
        return
    matrix, human = found
    if matrix.shape[1] < 2:
        st.info("Statistics need two methods on the same cases.")
        return
    tests = wilcoxon_matrix(matrix)
    n_pairs = matrix.shape[1] * (matrix.shape[1] - 1) // 2
    n_max = int(np.nan_to_num(tests["n"].to_numpy(float)).max())
    st.subheader("Paired Wilcoxon signed-rank on per-patient means, Holm-corrected p values")
    reason = no_significance_reason(n_max, n_pairs)
    if reason is not None:
        st.warning(f"{reason} No p value is shown: each would be 1 or too large to mean anything.")
    else:
        st.dataframe(styled(tests["p_holm"]), key="wilcoxon-holm")
    st.caption(STATEMENT)
    with st.expander("Uncorrected p values, patients per pair, median per-patient difference (row - column)"):
        if reason is None:
            st.dataframe(styled(tests["p"]), key="wilcoxon-raw")
        st.dataframe(styled(tests["n"]), key="wilcoxon-n")
        st.dataframe(styled(tests["median_diff"]), key="wilcoxon-diff")
    st.subheader("Rank stability (bootstrap over patients, 1000 draws)")
    methods = matrix.drop(columns=human)  # the human reference is compared above, never ranked
    if methods.shape[1] < 2:
        st.info("Rank stability needs two methods, not counting the human reference, on the same cases.")
        return
    n_patients = methods.dropna().index.get_level_values("patient").nunique()
    if n_patients < 2:
        st.info(
            f"n = {n_patients} patient: every bootstrap draw is the same patient, so the ranks cannot vary and say "
            "nothing about their stability; no rank stability is drawn."
        )
        return
    freq = rank_stability(methods)
    st.dataframe(styled(freq), key="rank-stability")
    if human:
        st.caption(f"Ranks among the methods only: {', '.join(human)} (human reference) is not ranked.")
    _show(plots.rank_plot(freq))


def _show(fig: plots.Figure) -> None:
    """The figure at 100 px per inch (stretched to the page, its text would grow past the page's), drawn at 2x."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=200, bbox_inches="tight")
    plots.plt.close(fig)
    st.image(buffer.getvalue(), width=int(fig.get_figwidth() * 100))


def _colours(table: pd.DataFrame, filters: Filters) -> dict[str, str]:
    """One colour per run label of the dataset, from the sorted labels: the same on every chart of every page."""
    rows = table[(table["dataset"] == filters.dataset) & (table["reference"] == filters.reference)]
    return plots.palette(list(_labels(rows).values()))


def render_per_case(data: StoreData, table: pd.DataFrame, filters: Filters) -> None:
    found = _ranked_matrix(data, shown_rows(table, filters), "cases")
    if found is None:
        return
    matrix, _ = found
    st.subheader("Per-case Dice")
    st.altair_chart(charts.per_case_dice(matrix, _colours(table, filters)), width="stretch")
    st.caption("One point per scan (patient, scan and Dice on hover), boxes over the scans of each method.")
    st.dataframe(styled(matrix.reset_index()), hide_index=True, key="per-case")


def render_lesions(data: StoreData, table: pd.DataFrame, filters: Filters) -> None:
    rows = shown_rows(table, filters)
    rows = rows[rows["section"] != "failed or partial"]
    family = st.radio("Lesion matching", ("isbi", "anima"), horizontal=True, key="family")
    lesions = data.lesions[data.lesions["reference"] == filters.reference]
    voxel_mm3 = _voxel_mm3(lesions)
    rates = plots.detection_by_size(lesions, _labels(rows), voxel_mm3, family)
    if rates.empty:
        st.info("No lesion table for these runs.")
        return
    st.subheader("Reference lesions detected, by lesion size (mm³)")
    st.caption(
        f"Scored on a grid of {voxel_mm3:.3g} mm³ voxels ({np.cbrt(voxel_mm3):.2g} mm if isotropic): a lesion's size "
        "is its voxels times that volume; the voxel range of each bin is under its label."
    )
    _show(plots.detection_plot(rates, _colours(table, filters)))
    st.dataframe(styled(rates), hide_index=True, key="detection")


def _voxel_mm3(lesions: pd.DataFrame) -> float:
    """The scoring grid's voxel volume, from the lesion table's volumes in mm³ and in voxels."""
    if "volume_mm3" not in lesions or lesions.empty:
        return 1.0
    ratio = lesions["volume_mm3"].astype(float) / lesions["volume_vox"].astype(float)
    ratio = ratio[np.isfinite(ratio)]
    return float(ratio.median()) if not ratio.empty else 1.0


def render_volumes(data: StoreData, table: pd.DataFrame, filters: Filters) -> None:
    rows = shown_rows(table, filters)
    rows = rows[rows["section"] != "failed or partial"]
    if rows.empty:
        st.info("No finished run matches the filters.")
        return
    labels = _labels(rows)
    label = st.selectbox("Method", list(labels.values()), key="ba-method")
    run_id = next(r for r, v in labels.items() if v == label)
    cases = data.wide_cases(run_id, filters.reference)
    cases = cases.groupby("case")[["vol_pred_ml", "vol_ref_ml"]].mean()
    st.subheader("Volume agreement (Bland-Altman)")
    _show(plots.bland_altman(cases, f"{label} vs {filters.reference}"))


#: The cost charts: column -> (axis title, log axis, lower is better).
COST_CHARTS = {
    "train peak GiB": ("training peak memory (GiB)", False, True),
    "volumes/hour": ("inference throughput (volumes/hour, log scale)", True, False),
}


def render_cost(data: StoreData, table: pd.DataFrame, filters: Filters) -> None:
    rows = shown_rows(table, filters)
    rows = rows[rows["section"] == "methods"].copy()
    profiled = rows[rows["profile"] != ""]
    if profiled.empty:
        st.info("not profiled: no run here has a profile yet ('msbench profile' fills the profiles table).")
        return
    profiled = profiled.assign(label=list(_labels(profiled).values()))
    colours = _colours(table, filters)
    kinds = sorted(set(profiled["profile"]))
    if len(kinds) > 1:
        st.caption(
            "Profiles of two kinds, told apart by the marker: " + "; ".join(kinds) + ". Job-time timings are taken "
            "once, cold, under whatever load the machine had; compare like with like."
        )
    for column, (title, log, lower) in COST_CHARTS.items():
        points = profiled.dropna(subset=[column])
        left_off = sorted(set(profiled["label"]) - set(points["label"]))
        st.subheader(f"Mean Dice against {title}")
        if not points.empty:
            chart = charts.cost_scatter(points, column, title, colours, log=log, lower_cost_is_better=lower)
            st.altair_chart(chart, width="stretch")
        if left_off and column == "train peak GiB":
            st.caption(
                f"Left off: {', '.join(left_off)}: no training peak measured (a training-free method, or one that "
                "trains in a worker process the profiler does not see); an inference peak is not comparable."
            )
        elif left_off:
            st.caption(f"Left off: {', '.join(left_off)}: no {title} in their profile.")
    st.dataframe(styled(profiled[["label", "mean Dice", *COST_COLUMNS, "profile"]]), hide_index=True, key="cost-table")


def render_training(data: StoreData, table: pd.DataFrame, filters: Filters) -> None:
    rows = shown_rows(table, filters)
    labels = _labels(rows)
    curves = data.curves[data.curves["run_id"].isin(labels)]
    if curves.empty:
        st.info("No training curve: the runs shown train nothing (baselines) or logged no epoch.")
        return
    metrics = sorted(set(curves["metric"]) - {"seconds", "lr"})
    metric = st.selectbox("Curve", metrics, index=metrics.index("loss") if "loss" in metrics else 0, key="curve")
    st.subheader(f"Training curves: {metric}")
    if "loss" in metric:
        st.caption("Each method trains on its own loss function: one panel per method, never one shared axis.")
    _show(plots.curves_plot(curves, labels, metric, _colours(table, filters)))


def render_tuning(data: StoreData, table: pd.DataFrame, filters: Filters) -> None:
    trials, studies = data.table("trials"), data.table("studies")
    rows = shown_rows(table, filters)
    st.dataframe(rows[["method", "modalities", "protocol", "tuning"]], hide_index=True, key="tuning-runs")
    if trials.empty:
        st.info("untuned: this store has no tuning study ('msbench tune' fills the studies and trials tables).")
        return
    names = sorted(trials["study"].unique())
    study = st.selectbox("Study", names, key="study")
    if not studies.empty:
        st.dataframe(studies[studies["study"] == study], hide_index=True, key="study-row")
    _show(plots.tuning_plot(trials, study))


SHIFT_COLUMNS = (
    "method", "protocol", "budget", "test_dataset", "metric", "in_domain", "shifted", "drop", "relative_drop",
    "n_in_domain", "n_shifted", "reference", "test_reference",
)  # fmt: skip


def render_shift(data: StoreData, table: pd.DataFrame, filters: Filters) -> None:
    """Cross-dataset runs: in-domain (the training data set's test patients) and shifted (another data set)."""
    shift = shift_table(data.results)
    if not shift.empty:
        shift = shift[shift["dataset"] == filters.dataset]
    if shift.empty:
        st.info(
            f"No cross-dataset run trained on {filters.dataset}: 'msbench run --method M --dataset "
            f"{filters.dataset} --test-dataset B' also scores every scan of B with each fold's model."
        )
        return
    st.subheader(f"Trained and selected on {filters.dataset}; in-domain and shifted side by side")
    st.caption(
        "in_domain: mean over the training data set's test patients (its primary reference); shifted: mean over "
        "every scan of the test data set (its own primary reference); drop = in_domain - shifted (for distances a "
        "negative drop is the loss)."
    )
    metric = st.selectbox("Metric", sorted(shift["metric"].unique()), key="shift-metric")
    rows = shift[shift["metric"] == metric]
    st.dataframe(rows[[c for c in SHIFT_COLUMNS if c in rows]], hide_index=True, key="shift-table")
    chart = rows.assign(label=[f"{m} -> {t}" for m, t in zip(rows["method"], rows["test_dataset"], strict=True)])
    st.bar_chart(chart.set_index("label")[["in_domain", "shifted"]], stack=False)


def render_overlays(data: StoreData, table: pd.DataFrame, filters: Filters) -> None:
    """FLAIR slices of one case with reference and prediction outlines for two methods side by side."""
    rows = shown_rows(table, filters)
    rows = rows[rows["section"] != "failed or partial"]
    labels = _labels(rows)
    if not labels:
        st.info("No finished run matches the filters.")
        return
    cases = data.wide_cases(reference=filters.reference)
    cases = cases[cases["run_id"].isin(labels)]
    case_ids = sorted(cases["case"].unique())
    case_id = st.selectbox("Case", case_ids, key="overlay-case")
    names = list(labels.values())
    picks = st.multiselect("Two methods", names, default=names[:2], max_selections=2, key="overlay-methods")
    panels = []
    for label in picks:
        run_id = next(r for r, v in labels.items() if v == label)
        jobs = cases.loc[(cases["run_id"] == run_id) & (cases["case"] == case_id), "job_id"]
        if jobs.empty:
            st.warning(f"{label} did not score {case_id}.")
            continue
        try:
            flair, ref = case_files(data.manifests[run_id], case_id, filters.reference)
            pred = prediction_file(data.results, run_id, sorted(jobs)[0], case_id)
            panels.append((label, load_case(flair, ref, pred)))
        except (FileNotFoundError, ValueError, KeyError) as error:
            st.warning(f"{label}: {error}")
    if panels:
        _show(overlay_figure(panels, best_slices(panels[0][1].reference, panels[0][1].prediction)))


RENDERERS = {
    "Leaderboard": render_leaderboard,
    "Statistics": render_statistics,
    "Per-case Dice": render_per_case,
    "Lesions": render_lesions,
    "Volumes": render_volumes,
    "Cost": render_cost,
    "Training": render_training,
    "Tuning": render_tuning,
    "Shift": render_shift,
    "Overlays": render_overlays,
}
