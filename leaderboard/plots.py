"""The leaderboard's figures (matplotlib, Agg): each function takes plain frames and returns a Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: Lesion size bins of the detection plot, in mm³ of the reference lesion: (label, low inclusive, high exclusive).
SIZE_BINS_MM3 = (("< 30", 0, 30), ("30-300", 30, 300), ("300-3000", 300, 3000), ("> 3000", 3000, np.inf))
#: 20 distinct colours (tab20, dark shades first): one per series, never two series in one colour.
_TAB20 = [plt.get_cmap("tab20")(i) for i in range(20)]  # the 20 listed colours, in order
PALETTE = tuple(matplotlib.colors.to_hex(c) for c in (*_TAB20[0::2], *_TAB20[1::2]))


def palette(names: list[str]) -> dict[str, str]:
    """Name -> colour from the sorted names: the same series has the same colour on every chart of the page."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(names)))}


def _figure(width: float = 7.0, height: float = 3.6) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height), dpi=100, layout="constrained")
    return fig, ax


def _legend_outside(ax: plt.Axes) -> None:
    """The legend right of the axes, never over the data."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def detection_by_size(
    lesions: pd.DataFrame, labels: dict[str, str], voxel_mm3: float, family: str = "isbi"
) -> pd.DataFrame:
    """Fraction of reference lesions detected per size bin (mm³, from voxels x ``voxel_mm3``) and run."""
    ref = lesions[(lesions["source"] == "ref") & (lesions["family"] == family) & lesions["run_id"].isin(labels)]
    rows = []
    for run_id, frame in ref.groupby("run_id"):
        volume_mm3 = frame["volume_vox"].astype(float) * voxel_mm3
        for label, low, high in SIZE_BINS_MM3:
            inside = frame[(volume_mm3 >= low) & (volume_mm3 < high)]
            matched = inside["matched"].astype(str).str.lower().isin(("true", "1"))
            rate = float(matched.mean()) if len(inside) else np.nan
            voxels = (
                f"{low / voxel_mm3:.3g}-{high / voxel_mm3:.3g}" if np.isfinite(high) else f"> {low / voxel_mm3:.3g}"
            )
            rows.append({"method": labels[run_id], "size bin (mm³)": label, "voxels": voxels, "lesions": len(inside),
                         "detected": rate})  # fmt: skip
    return pd.DataFrame(rows, columns=["method", "size bin (mm³)", "voxels", "lesions", "detected"])


def detection_plot(rates: pd.DataFrame, colours: dict[str, str]) -> Figure:
    """Grouped bars: detection rate per size bin and method (bins without a lesion are left empty)."""
    fig, ax = _figure()
    methods = list(dict.fromkeys(rates["method"]))
    width = 0.8 / max(len(methods), 1)
    bins = [b[0] for b in SIZE_BINS_MM3]
    x = np.arange(len(bins))
    for i, method in enumerate(methods):
        frame = rates[rates["method"] == method].set_index("size bin (mm³)").reindex(bins)
        ax.bar(x + i * width - 0.4 + width / 2, frame["detected"].fillna(0), width, label=method,
               color=colours.get(method))  # fmt: skip
    counts = rates.groupby("size bin (mm³)")["lesions"].max().reindex(bins).fillna(0)
    voxels = rates.drop_duplicates("size bin (mm³)").set_index("size bin (mm³)")["voxels"].reindex(bins)
    ax.set_xticks(x, [f"{b} mm³\n({voxels[b]} vox)\nn = {int(counts[b])}" for b in bins], fontsize=8)
    ax.set_ylabel("reference lesions detected")
    ax.set_ylim(0, 1.05)
    _legend_outside(ax)
    return fig


def bland_altman(cases: pd.DataFrame, label: str) -> Figure:
    """Predicted minus reference lesion volume (ml) against their mean, with the bias and 95 % limits."""
    fig, ax = _figure(5.0, 3.6)
    mean = (cases["vol_pred_ml"] + cases["vol_ref_ml"]) / 2
    diff = cases["vol_pred_ml"] - cases["vol_ref_ml"]
    ax.scatter(mean, diff, s=18)
    bias, sd = float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")
    ax.axhline(bias, color="k", lw=1, label=f"bias {bias:.2f} ml")
    if np.isfinite(sd):
        for sign in (-1, 1):
            ax.axhline(bias + sign * 1.96 * sd, color="grey", ls="--", lw=1)
        ax.plot([], [], color="grey", ls="--", label=f"bias ± 1.96 SD ({1.96 * sd:.2f} ml)")
    ax.set_xlabel("mean of predicted and reference volume (ml)")
    ax.set_ylabel("predicted - reference (ml)")
    ax.set_title(label, fontsize=10)
    _legend_outside(ax)
    return fig


def pareto_front(cost: np.ndarray, score: np.ndarray, *, lower_cost_is_better: bool = True) -> np.ndarray:
    """Indices of the points no other point beats on both cost and score, ordered by cost."""
    sign = 1.0 if lower_cost_is_better else -1.0
    order = np.lexsort((-score, sign * cost))
    front, best = [], -np.inf
    for i in order:
        if score[i] > best:
            front.append(i)
            best = score[i]
    return np.array(front, dtype=int)


def curves_plot(curves: pd.DataFrame, labels: dict[str, str], metric: str, colours: dict[str, str]) -> Figure:
    """``metric`` per epoch, one line per job.

    A loss is the method's own loss function (Dice, cross-entropy, their sums, ...): values of two methods are not on
    one scale, so a loss gets one panel per method; any other metric (validation Dice) shares one axis.
    """
    frame = curves[(curves["metric"] == metric) & curves["run_id"].isin(labels)]
    runs = sorted(frame["run_id"].unique(), key=lambda r: labels[r])
    per_method = "loss" in metric and len(runs) > 1
    # at most CURVE_COLUMNS panels a row, so that each keeps a readable width and no title runs into the next
    columns = min(len(runs), CURVE_COLUMNS) if per_method else 1
    rows = -(-len(runs) // columns) if per_method else 1
    size = (3.4 * columns, 2.9 * rows) if per_method else (7.0, 3.6)
    fig, grid = plt.subplots(rows, columns, figsize=size, dpi=100, layout="constrained", squeeze=False)
    axes = list(grid.flat)
    for (run_id, job_id), job in frame.groupby(["run_id", "job_id"]):
        ax = axes[runs.index(run_id) if per_method else 0]
        job = job.sort_values("epoch")
        ax.plot(job["epoch"], job["value"], marker=".", color=colours.get(labels[run_id]),
                label=f"{labels[run_id]} {job_id}")  # fmt: skip
        if per_method:
            ax.set_title(labels[run_id], fontsize=9)
    for ax in axes[len(runs) if per_method else 1 :]:
        ax.set_visible(False)  # the last row's empty places
    for ax in axes:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric if not per_method else f"{metric} (own scale)")
    if not per_method:
        _legend_outside(axes[0])
    return fig


CURVE_COLUMNS = 4


def tuning_plot(trials: pd.DataFrame, study: str) -> Figure:
    """Objective per trial (by state) and the best value so far."""
    fig, ax = _figure()
    frame = trials[trials["study"] == study].sort_values("number")
    for state, part in frame.groupby("state"):
        ax.scatter(part["number"], part["value"], s=20, label=state)
    done = frame[frame["state"] == "COMPLETE"]
    if not done.empty:
        ax.step(done["number"], done["value"].cummax(), where="post", color="k", lw=1, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective")
    ax.set_title(study, fontsize=10)
    _legend_outside(ax)
    return fig


def rank_plot(freq: pd.DataFrame) -> Figure:
    """Stacked bars: the share of bootstrap draws in which each method takes each rank (ranks in one sequential map)."""
    fig, ax = _figure()
    bottom = np.zeros(len(freq))
    shades = plt.cm.viridis(np.linspace(0.0, 0.9, max(len(freq.columns), 1)))
    for shade, rank in zip(shades, freq.columns, strict=False):
        ax.bar(freq.index, freq[rank], bottom=bottom, label=f"rank {rank}", color=shade)
        bottom += freq[rank].to_numpy()
    ax.set_ylabel("share of bootstrap draws")
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", labelrotation=20)
    _legend_outside(ax)
    return fig
