"""The Streamlit leaderboard: ``streamlit run app.py -- --results DIR`` (``msbench leaderboard`` does this)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

from msbench.leaderboard.data import StoreData, StoreError, load_store, store_signature
from msbench.leaderboard.pages import PAGES, RENDERERS, sidebar_filters
from msbench.leaderboard.table import main_table


@st.cache_data(ttl=60, max_entries=4, show_spinner=False)
def _load(results: str, signature: str) -> tuple[StoreData, pd.DataFrame]:
    """The store and its main table, a pure function of the store: read again when ``signature`` changes."""
    data = load_store(Path(results))
    return data, main_table(data)


def results_dir(argv: list[str]) -> Path:
    """The ``--results`` folder after streamlit's ``--`` (else ``MSBENCH_RESULTS``, else ``results``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", default=os.environ.get("MSBENCH_RESULTS", "results"))
    args, _ = parser.parse_known_args(argv)
    return Path(args.results)


def store_name(text: str, results: Path) -> str:
    """``text`` with the store's absolute path replaced by the folder's name.

    A served page does not say where the store lives on the server (its owner knows).
    """
    name = results.resolve().name
    return text.replace(str(results.resolve()), name).replace(str(results.absolute()), name)


def behind_text(data: StoreData, name: str) -> str:
    """The banner of a store whose run files changed after its index was built (the page shows the index)."""
    first = data.behind[0]
    more = f" and {len(data.behind) - 1} more" if len(data.behind) > 1 else ""
    return (
        f"The index of {name} is older than its files ({first}{more} changed after it was built): this page may not "
        f"show them. Run 'msbench store reindex --results {name}' (and 'msbench store check --results {name}' to see "
        "what changed), then reload."
    )


def main(argv: list[str] | None = None) -> None:
    st.set_page_config(page_title="msbench leaderboard", layout="wide")
    st.title("msbench leaderboard")
    results = results_dir(sys.argv[1:] if argv is None else argv)
    name = results.resolve().name
    try:
        data, table = _load(str(results), store_signature(results))
    except StoreError as error:
        st.error(store_name(str(error), results))
        return
    if data.empty:
        st.info(f"{name} has no run yet: run 'msbench run --results {name}' and reload this page.")
        return
    page = st.sidebar.radio("Page", PAGES, key="page")
    filters = sidebar_filters(table)
    st.caption(f"results store: {name}")
    if data.behind:
        st.warning(store_name(behind_text(data, name), results))
    if data.unscored:
        st.warning(
            f"{len(data.unscored)} run(s) have no stored ISBI score or volume correlation (made before msbench stored "
            f"them; {', '.join(data.unscored[:3])}): run their 'msbench run' command again (it reuses every job)."
        )
    RENDERERS[page](data, table, filters)


main()
