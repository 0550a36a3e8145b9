"""The leaderboard's interactive charts (Vega-Lite through Altair, drawn by Streamlit): values on hover.

Each function takes plain frames and returns an Altair chart; the colours come from :func:`.plots.palette`, so a
method has one colour on every chart of the page.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from .plots import PALETTE, pareto_front


def _colour(colours: dict[str, str], present: pd.Series) -> alt.Color:
    """The page's colour of each label drawn (a label the page's map lacks gets a free palette colour)."""
    names = sorted(set(present))
    spare = iter(c for c in PALETTE if c not in set(colours.values()))
    return alt.Color(
        "label:N",
        scale=alt.Scale(domain=names, range=[colours.get(n) or next(spare, "#7f7f7f") for n in names]),
        legend=alt.Legend(title="method", orient="right"),
    )


def per_case_dice(matrix: pd.DataFrame, colours: dict[str, str]) -> alt.Chart:
    """Per-case Dice per method: a box per method with every scan drawn on it (scan, patient and Dice on hover)."""
    long = matrix.reset_index().melt(id_vars=["patient", "case"], var_name="label", value_name="Dice").dropna()
    order = list(matrix.mean().sort_values(ascending=False).index)
    x = alt.X("label:N", sort=order, title=None, axis=alt.Axis(labelAngle=-20, labelLimit=240))
    y = alt.Y("Dice:Q", scale=alt.Scale(domain=[0, 1]), title="Dice per scan")
    colour = _colour(colours, long["label"])
    boxes = alt.Chart(long).mark_boxplot(extent="min-max", opacity=0.35).encode(x=x, y=y, color=colour)
    points = (
        alt.Chart(long)
        .mark_circle(size=45, opacity=0.85)
        .encode(
            x=x, y=y, color=colour,
            xOffset=alt.XOffset("jitter:Q", scale=alt.Scale(domain=[-1, 1])),
            tooltip=["label:N", "patient:N", "case:N", alt.Tooltip("Dice:Q", format=".3f")],
        )
        .transform_calculate(jitter="random() * 2 - 1")
    )  # fmt: skip
    return (boxes + points).properties(height=320)


def cost_scatter(points: pd.DataFrame, cost: str, title: str, colours: dict[str, str], *, log: bool,
                 lower_cost_is_better: bool) -> alt.Chart:  # fmt: skip
    """Mean Dice against one cost column with the Pareto front; the profile kind is the marker's shape.

    Args:
        points: Rows with ``label``, ``mean Dice``, ``profile`` and ``cost``.
        cost: The cost column.
        title: The x axis title (with its unit).
        colours: Label -> colour.
        log: A log axis (values spanning orders of magnitude).
        lower_cost_is_better: Direction of the cost for the front.
    """
    frame = points[["label", "mean Dice", "profile", cost]].dropna(subset=[cost, "mean Dice"]).reset_index(drop=True)
    x = alt.X(f"{cost}:Q", title=title, scale=alt.Scale(type="log") if log else alt.Scale(zero=False),
              axis=alt.Axis(format=",.3~g"))  # fmt: skip
    y = alt.Y("mean Dice:Q", title="mean Dice", scale=alt.Scale(zero=False), axis=alt.Axis(format=".2f"))
    tooltip = ["label:N", alt.Tooltip("mean Dice:Q", format=".3f"), alt.Tooltip(f"{cost}:Q", format=",.3~g"),
               "profile:N"]  # fmt: skip
    dots = (
        alt.Chart(frame)
        .mark_point(size=90, filled=True)
        .encode(x=x, y=y, color=_colour(colours, frame["label"]),
                shape=alt.Shape("profile:N", legend=alt.Legend(title="profile", orient="bottom", labelLimit=400)),
                tooltip=tooltip)
    )  # fmt: skip
    front = frame.iloc[pareto_front(frame[cost].to_numpy(float), frame["mean Dice"].to_numpy(float),
                                    lower_cost_is_better=lower_cost_is_better)]  # fmt: skip
    line = (
        alt.Chart(front.assign(order=np.arange(len(front))))
        .mark_line(color="#d62728", strokeDash=[4, 3])
        .encode(x=x, y=y, order="order:Q")
    )
    return (line + dots).properties(height=340)
