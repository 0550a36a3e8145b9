"""The leaderboard's figures (matplotlib, Agg): each function takes plain frames and returns a Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: Lesion size bins of the detection plot, in voxels of the reference lesion: (label, low inclusive, high exclusive).
SIZE_BINS = (("< 10", 0, 10), ("10-100", 10, 100), ("100-1000", 100, 1000), ("> 1000", 1000, np.inf))


def _figure(width: float = 7.0, height: float = 3.6) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height), dpi=100, layout="constrained")
    return fig, ax


def dice_distributions(matrix: pd.DataFrame) -> Figure:
    """Per-case Dice per method: a box plot with every case drawn on it."""
    fig, ax = _figure()
    names = list(matrix.columns)
    data = [matrix[n].dropna().to_numpy() for n in names]
    ax.boxplot(data, tick_labels=names, showfliers=False)
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, values.size), values, s=14, alpha=0.7, zorder=3)
    ax.set_ylabel("Dice per case")
    ax.set_ylim(-0.02, 1.02)
    ax.tick_params(axis="x", labelrotation=20)
    return fig


def detection_by_size(lesions: pd.DataFrame, labels: dict[str, str], family: str = "isbi") -> pd.DataFrame:
    """Fraction of reference lesions detected per size bin (voxels) and run, with the number of lesions."""
    ref = lesions[(lesions["source"] == "ref") & (lesions["family"] == family) & lesions["run_id"].isin(labels)]
    rows = []
    for run_id, frame in ref.groupby("run_id"):
        for label, low, high in SIZE_BINS:
            inside = frame[(frame["volume_vox"] >= low) & (frame["volume_vox"] < high)]
            matched = inside["matched"].astype(str).str.lower().isin(("true", "1"))
            rate = float(matched.mean()) if len(inside) else np.nan
            rows.append({"method": labels[run_id], "size bin": label, "lesions": len(inside), "detected": rate})
    return pd.DataFrame(rows, columns=["method", "size bin", "lesions", "detected"])


def detection_plot(rates: pd.DataFrame) -> Figure:
    """Grouped bars: detection rate per size bin and method (bins without a lesion are left empty)."""
    fig, ax = _figure()
    methods = list(dict.fromkeys(rates["method"]))
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(SIZE_BINS))
    for i, method in enumerate(methods):
        frame = rates[rates["method"] == method].set_index("size bin").reindex([b[0] for b in SIZE_BINS])
        ax.bar(x + i * width - 0.4 + width / 2, frame["detected"].fillna(0), width, label=method)
    counts = rates.groupby("size bin")["lesions"].max().reindex([b[0] for b in SIZE_BINS]).fillna(0)
    ax.set_xticks(x, [f"{b[0]} vox\n(n = {int(counts[b[0]])})" for b in SIZE_BINS])
    ax.set_ylabel("reference lesions detected")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
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
    ax.legend(fontsize=8)
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


def cost_plot(points: pd.DataFrame, cost: str, *, lower_cost_is_better: bool, xlabel: str) -> Figure:
    """Mean Dice against one cost column, the Pareto front drawn and its methods marked."""
    fig, ax = _figure(5.0, 3.6)
    x, y = points[cost].to_numpy(float), points["mean Dice"].to_numpy(float)
    ax.scatter(x, y, s=30)
    for xi, yi, name in zip(x, y, points["label"], strict=True):
        ax.annotate(name, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto_front(x, y, lower_cost_is_better=lower_cost_is_better)
    ax.plot(x[front], y[front], color="tab:red", lw=1.5, marker="o", mfc="none", ms=10, label="Pareto front")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean Dice")
    ax.legend(fontsize=8)
    return fig


def curves_plot(curves: pd.DataFrame, labels: dict[str, str], metric: str) -> Figure:
    """One training curve per job: ``metric`` per epoch."""
    fig, ax = _figure()
    frame = curves[(curves["metric"] == metric) & curves["run_id"].isin(labels)]
    for (run_id, job_id), job in frame.groupby(["run_id", "job_id"]):
        job = job.sort_values("epoch")
        ax.plot(job["epoch"], job["value"], marker=".", label=f"{labels[run_id]} {job_id}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    return fig


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
    ax.legend(fontsize=8)
    return fig


def rank_plot(freq: pd.DataFrame) -> Figure:
    """Stacked bars: the share of bootstrap draws in which each method takes each rank."""
    fig, ax = _figure()
    bottom = np.zeros(len(freq))
    for rank in freq.columns:
        ax.bar(freq.index, freq[rank], bottom=bottom, label=f"rank {rank}")
        bottom += freq[rank].to_numpy()
    ax.set_ylabel("share of bootstrap draws")
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", labelrotation=20)
    ax.legend(fontsize=8)
    return fig
