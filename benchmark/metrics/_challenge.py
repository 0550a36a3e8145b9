"""ISBI 2015 challenge score (raw and normalised against the raters' own agreement) and volume correlation.

Under the empty-mask policy (``specs``) an empty prediction on a scan with lesions scores Dice 0, PPV 0,
LFPR 1 and LTPR 0, so the scan stays in the score with its worst per-scan terms instead of dropping out.
Scans whose reference is empty lie outside the challenge's definition (every ISBI 2015 scan has lesions,
Carass et al. 2017): they are left out of the score and counted (``n_ref_empty``), never dropped silently.
The volume correlation is a set-level term: Pearson's r is not monotone in one prediction, so emptying a
badly correlated prediction can raise ``corr_term``; the per-scan part ``raw - corr_term`` cannot rise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._aggregate import check_suite_version
from .specs import RATER_AGREEMENT_SCORE

_NEEDED = ("dice", "ppv", "lfpr", "ltpr", "vol_pred_ml", "vol_ref_ml")


def volume_correlation(cases: pd.DataFrame, pred_col: str = "vol_pred_ml", ref_col: str = "vol_ref_ml") -> float:
    """Pearson correlation of predicted and reference lesion volumes across cases.

    NaN with fewer than two cases or constant reference volumes (the set cannot define it); 0 when the
    predicted volumes are constant (e.g. every prediction empty): no association, never a NaN that would
    drop the whole score.
    """
    pred = cases[pred_col].to_numpy(dtype=np.float64)
    ref = cases[ref_col].to_numpy(dtype=np.float64)
    if pred.size < 2 or np.ptp(ref) == 0:
        return math.nan
    if np.ptp(pred) == 0:
        return 0.0
    return float(np.corrcoef(pred, ref)[0, 1])


@dataclass(frozen=True)
class ChallengeScore:
    """ISBI 2015 challenge score of one method on one set of scans.

    Attributes:
        raw: Mean over raters and scans of Dice/8 + PPV/8 + (1 - LFPR)/4 + LTPR/4 + Corr/4 (0..1).
        normalised: ``90 * raw / inter_rater_raw`` (NaN without ``inter_rater_raw``); msbench's own
            normalisation, not comparable with the challenge leaderboard's numbers.
        inter_rater_raw: Raw score of rater 2 scored against rater 1 on the same scans.
        correlation: Volume correlation per rater (over the scored scans).
        per_scan: One row per scan and rater: ``scan``, ``rater``, ``score`` (NaN for a scan with an
            empty reference, or when the correlation is undefined) and ``ref_empty``.
        n_valid: Scan-rater pairs with a defined score (the mean is over these).
        n_ref_empty: Scan-rater pairs left out because the reference is empty (both-empty included).
        corr_term: The part of ``raw`` that the volume correlation contributes (mean of Corr/4).
    """

    raw: float
    normalised: float
    inter_rater_raw: float
    correlation: dict[str, float]
    per_scan: pd.DataFrame = field(repr=False)
    n_valid: int
    n_ref_empty: int = 0
    corr_term: float = math.nan

    def as_dict(self) -> dict[str, float | int]:
        return {
            "isbi_score_raw": self.raw,
            "isbi_score_normalised": self.normalised,
            "isbi_inter_rater_raw": self.inter_rater_raw,
            "isbi_n_valid": self.n_valid,
            "isbi_n_ref_empty": self.n_ref_empty,
        }


def isbi_challenge_score(
    cases: pd.DataFrame,
    *,
    rater_col: str | None = "reference",
    scan_col: str = "case",
    inter_rater_raw: float | None = None,
) -> ChallengeScore:
    """ISBI 2015 challenge score from a per-case table of one method.

    Every scan with a non-empty reference is scored (an empty prediction with its worst terms); scans
    with an empty reference are left out and counted in ``n_ref_empty``.

    Args:
        cases: One row per scan and rater with ``dice, ppv, lfpr, ltpr, vol_pred_ml, vol_ref_ml``.
        rater_col: Column naming the reference rater (e.g. mask1, mask2); None for a single rater.
        scan_col: Column naming the scan.
        inter_rater_raw: Raw score of rater 2 against rater 1 on the same scans (compute it with this
            function on that table); gives ``normalised = 90 * raw / inter_rater_raw``.

    Raises:
        KeyError: A needed column is missing.
    """
    needed = [*_NEEDED, scan_col, *([rater_col] if rater_col else [])]
    missing = [c for c in needed if c not in cases.columns]
    if missing:
        raise KeyError(f"isbi_challenge_score: columns {missing} missing from the cases table; needed: {needed}.")
    check_suite_version(cases)
    groups = cases.groupby(rater_col, sort=True) if rater_col else [("all", cases)]
    per_scan, correlation = [], {}
    for rater, frame in groups:
        ref_empty = (frame["vol_ref_ml"] == 0).to_numpy()
        corr = volume_correlation(frame[~ref_empty])
        correlation[str(rater)] = corr
        score = np.array(
            frame["dice"] / 8 + frame["ppv"] / 8 + (1 - frame["lfpr"]) / 4 + frame["ltpr"] / 4 + corr / 4,
            dtype=np.float64,
        )
        score[ref_empty] = np.nan
        per_scan.append(
            pd.DataFrame(
                {
                    "scan": frame[scan_col].to_numpy(),
                    "rater": str(rater),
                    "score": score,
                    "corr_term": np.where(ref_empty, np.nan, corr / 4),
                    "ref_empty": ref_empty.astype(int),
                }
            )
        )
    table = pd.concat(per_scan, ignore_index=True)
    valid = table["score"].notna()
    raw = float(table.loc[valid, "score"].mean()) if valid.any() else math.nan
    corr_term = float(table.loc[valid, "corr_term"].mean()) if valid.any() else math.nan
    table = table.drop(columns="corr_term")
    normalised = (
        RATER_AGREEMENT_SCORE * raw / inter_rater_raw
        if inter_rater_raw is not None and inter_rater_raw > 0
        else math.nan
    )
    return ChallengeScore(
        raw=raw,
        normalised=normalised,
        inter_rater_raw=math.nan if inter_rater_raw is None else float(inter_rater_raw),
        correlation=correlation,
        per_scan=table,
        n_valid=int(valid.sum()),
        n_ref_empty=int(table["ref_empty"].sum()),
        corr_term=corr_term,
    )
