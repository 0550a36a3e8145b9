"""The Streamlit leaderboard: ``streamlit run app.py -- --results DIR`` (``msbench leaderboard`` does this)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

from msbench.leaderboard.data import leaderboard_table, load_index


@st.cache_data(ttl=30)
def _index(results: str) -> pd.DataFrame:
    return load_index(Path(results))


def results_dir(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", default=os.environ.get("MSBENCH_RESULTS", "results"))
    args, _ = parser.parse_known_args(argv)
    return Path(args.results)


def render_table(index: pd.DataFrame) -> pd.DataFrame:
    references = sorted(index["reference"].dropna().unique()) if "reference" in index else []
    default = references.index("mask1") if "mask1" in references else 0
    reference = st.selectbox("Reference", references, index=default) if references else None
    table = leaderboard_table(index, reference)
    shown = table.rename(
        columns={"dice_mean": "mean Dice", "dice_ci": "bootstrap 95 % CI", "n_patients": "patients", "n_seeds": "seeds"}
    )
    columns = ["method", "modalities", "dataset", "protocol", "budget", "mean Dice", "bootstrap 95 % CI"]
    st.dataframe(shown[[*columns, "patients", "n_cases", "seeds", "status"]], hide_index=True)
    if table["leaks_timepoints"].fillna(False).astype(bool).any():
        st.caption(
            "Rows on a protocol that leaks time points (rondinella2023) are not comparable to patient-level rows."
        )
    return table


def main(argv: list[str] | None = None) -> None:
    st.set_page_config(page_title="msbench leaderboard", layout="wide")
    st.title("msbench leaderboard")
    results = results_dir(sys.argv[1:] if argv is None else argv)
    try:
        index = _index(str(results))
    except (FileNotFoundError, ValueError) as error:
        st.error(str(error))
        return
    if index.empty:
        st.info(f"{results} has no finished runs yet.")
        return
    st.caption(f"results store: {results.resolve()}  ·  mean Dice over patients' scans, bootstrap 95 % CI")
    render_table(index)


main()
