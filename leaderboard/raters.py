"""Each rater against the truth, where a dataset has one (the ``synth-ms`` phantom): human rows beside the methods.

The inter-rater run scores rater 2 against every other reference; rater 1 against the truth is in no run. This
module scores every rater's mask against ``truth`` on the test cases of each inter-rater run, with the run's own
metric parameters and scored domain (the suite's ``evaluate_case``; numpy only), so the human reference on the
truth holds both raters.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .data import StoreData

TRUTH = "truth"


def rater_run_id(run_id: str, rater: str) -> str:
    """The id rater rows are filed under (never a real run id: it holds ``::``)."""
    return f"{run_id}::{rater}"


def rater_cases(data: StoreData, human_methods: tuple[str, ...]) -> dict[str, tuple[dict[str, Any], pd.DataFrame]]:
    """Pseudo run id -> (the inter-rater run's manifest, per-case metrics of its primary rater against the truth).

    Runs whose dataset folder is gone are skipped (the store alone cannot score them).
    """
    from msbench.benchmark.metrics import MetricParams, evaluate_case
    from msbench.datasets import get_dataset

    found: dict[str, tuple[dict[str, Any], pd.DataFrame]] = {}
    for run_id, manifest in data.manifests.items():
        references = manifest.get("references") or []
        if manifest.get("method") not in human_methods or TRUTH not in references or manifest.get("status") != "ok":
            continue
        tested = set(data.cases.loc[data.cases["run_id"] == run_id, "case"])
        try:
            cases = [
                c
                for c in get_dataset(manifest["dataset"]).load_cases(
                    manifest["data_root"], patient_regex=manifest.get("patient_regex")
                )
                if c.case_id in tested
            ]
        except (FileNotFoundError, KeyError, ValueError, TypeError):
            continue
        params = MetricParams(**{k: v for k, v in manifest.get("metric_params", {}).items() if k != "suite_version"})
        modalities = tuple(manifest.get("modalities") or ("flair",))
        # The inter-rater run already scores its copied rater (not the primary reference) against the truth.
        for rater in [manifest.get("reference")] if manifest.get("reference") in references else []:
            rows = []
            for case in cases:
                record = evaluate_case(
                    case.load_mask(rater), case.load_mask(TRUTH), case.spacing_mm, params=params,
                    domain=case.load_brain(modalities),
                )  # fmt: skip
                rows.append({"case": case.case_id, "patient": case.patient_id, **record})
            if rows:
                found[rater_run_id(run_id, rater)] = (manifest, pd.DataFrame(rows))
    return found


def rater_summary(cases: pd.DataFrame) -> dict[str, float]:
    """Mean, median and the patient-bootstrap 95 % CI of Dice, as the runner's summary computes them."""
    from msbench.benchmark.metrics import summarize

    row = summarize(cases, ["dice"]).iloc[0]
    return {
        "dice_mean": float(row["mean"]),
        "dice_median": float(row["median"]),
        "dice_ci_low": row["ci_low"],
        "dice_ci_high": row["ci_high"],
        "n_patients": float(row["n_patients"]),
        "n_cases": float(row["n_cases"]),
    }
