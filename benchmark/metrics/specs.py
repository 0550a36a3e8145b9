"""Metric parameters, the per-key metric table, the empty-mask policy and the suite version.

Empty-mask policy ``empty-worst-1`` (part of ``SUITE_VERSION``; one policy for every key):

- P empty, G not empty (an abstention): every score that the empty prediction leaves undefined gets its
  worst value, so the scan stays in every mean, median and challenge score and abstaining never pays:
  PPV, lesion precision, Anima PPVL, slice PPV 0; LFPR 1; F1 scores 0; HD, HD95 and ASSD the diagonal of
  the field of view in mm (longer than any distance two voxels of the volume can have). This is
  MetricsReloaded's convention (``positive_predictive_value`` returns 0 for an empty prediction;
  ``measured_distance`` leaves the "worse case" to aggregation, where ``WORSE`` sets distances to a
  maximum), applied in the case record so that no aggregate can forget it.
- G empty, P not empty: ratios over the reference (sensitivity, LTPR, SensL, VD) are NaN (nothing to
  find); the other scores are computed (Dice, PPV, nDSC 0; LFPR 1; F1 0) and distances get the worst value.
- P and G both empty: overlap, lesion and distance scores are NaN (no method can be judged there; Dice
  would be 1 in MetricsReloaded, NaN here) and the scan is counted apart (``both_empty``, ``n_both_empty``).
- Some keys reward an empty prediction by definition (specificity, NPV, accuracy, extra fraction, VD and
  their slice versions): ``MetricSpec.not_for_ranking`` says why and a leaderboard never ranks on them.

Every case record carries ``pred_empty``, ``ref_empty`` and ``both_empty``.

References: MetricsReloaded (Maier-Hein et al., Nat. Methods 2024; ``MetricsReloaded/metrics/
pairwise_measures.py`` and ``processes/overall_process.py``, read at commit cb38dfc). The ISBI 2015
challenge (Carass et al., NeuroImage 148:77-102, 2017, and IACL's evaluation page) scored scans that all
have lesions; neither states an empty-prediction rule (its Matlab evaluator was not available to read), and
its formulas give 0/0 for PPV and LFPR there: msbench gives them their worst values instead.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

#: Version of the metric suite. Bump the minor part when a key is added, the major part when any
#: existing number can change (a definition, a default parameter or the empty-mask policy above).
#: 2.0.0: empty predictions get worst values instead of NaN, F1 of two zero rates is 0, nDSC,
#: lesion-slice Dice, balanced slice scores, the scored domain, CI NaN under two patients.
SUITE_VERSION = "2.0.0+empty-worst-1"

#: The public ISBI 2015 leaderboard maps the raters' agreement to 90; msbench's normalisation follows it.
RATER_AGREEMENT_SCORE = 90.0

#: Column order of `msbench evaluate` CSVs after `case`; `evaluate_case` returns these keys and more.
CSV_COLUMNS: tuple[str, ...] = (
    "dice",
    "jaccard",
    "ppv",
    "sensitivity",
    "specificity",
    "npv",
    "hd_mm",
    "hd95_mm",
    "assd_mm",
    "vol_pred_ml",
    "vol_ref_ml",
    "ltpr",
    "lfpr",
    "lesion_f1",
    "n_lesions_ref",
    "n_lesions_pred",
    "anima_sensl",
    "anima_ppvl",
    "anima_f1",
    "tp",
    "fp",
    "fn",
    "tn",
)


@dataclass(frozen=True)
class MetricParams:
    """Every parameter that changes a number; stored with the results via :meth:`as_dict`.

    Attributes:
        connectivity: Lesion connectivity of the ISBI 2015 family (6, 18 or 26).
        anima_connectivity: Lesion connectivity of the Anima/MSSEG family (6, 18 or 26).
        anima_min_volume_mm3: Anima keeps lesions strictly larger than this volume, in both masks.
        alpha: Anima: a lesion is a candidate when more than this fraction of it is covered.
        beta: Anima: a covering component may have at most this fraction of its voxels outside the other mask.
        gamma: Anima: the covering components checked account for this fraction of the overlap.
        slice_coverage: Slice level: a reference 2D component counts as found when covered at least this much.
        slice_connectivity: In-plane connectivity of the 2D reference components (4 or 8).
        surface_margin_vox: Voxels of background kept around the union bounding box; also the radius (in
            finest voxels) of the exact local search for nearest boundary voxels before the grid search.
        hd_percentile: Percentile of the directed distances for ``hd95_mm``.
        ndsc_reference_load: r of the normalised Dice: the reference lesion load (lesion voxels / domain
            voxels) that nDSC rescales every scan to; 0.001 as in the Shifts 2.0 MS benchmark.
    """

    connectivity: int = 18
    anima_connectivity: int = 6
    anima_min_volume_mm3: float = 3.0
    alpha: float = 0.10
    beta: float = 0.70
    gamma: float = 0.65
    slice_coverage: float = 0.10
    slice_connectivity: int = 8
    surface_margin_vox: int = 3
    hd_percentile: float = 95.0
    ndsc_reference_load: float = 0.001

    def __post_init__(self) -> None:
        for name in ("connectivity", "anima_connectivity"):
            value = getattr(self, name)
            if value not in (6, 18, 26):
                raise ValueError(f"MetricParams.{name}={value!r}: expected 6, 18 or 26 (face/edge/corner).")
        for name in ("alpha", "beta", "gamma", "slice_coverage"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MetricParams.{name}={value!r}: expected a fraction in [0, 1].")
        if self.slice_connectivity not in (4, 8):
            raise ValueError(f"MetricParams.slice_connectivity={self.slice_connectivity!r}: expected 4 or 8.")
        if self.surface_margin_vox < 1:
            raise ValueError(
                f"MetricParams.surface_margin_vox={self.surface_margin_vox!r}: expected >= 1 so that "
                "boundary voxels on the bounding box edge still see background."
            )
        if not 0.0 < self.hd_percentile <= 100.0:
            raise ValueError(f"MetricParams.hd_percentile={self.hd_percentile!r}: expected (0, 100].")
        if self.anima_min_volume_mm3 < 0:
            raise ValueError(f"MetricParams.anima_min_volume_mm3={self.anima_min_volume_mm3!r}: expected >= 0")
        if not (math.isfinite(self.ndsc_reference_load) and 0.0 < self.ndsc_reference_load < 1.0):
            raise ValueError(
                f"MetricParams.ndsc_reference_load={self.ndsc_reference_load!r}: expected a lesion load in (0, 1) "
                "(0.001 as in Shifts, or the mean load of the dataset's training scans)."
            )

    def as_dict(self) -> dict[str, float | int | str]:
        """Parameters plus the suite version, flat, ready to store next to the numbers."""
        return {"suite_version": SUITE_VERSION, **asdict(self)}


def provenance_columns(params: MetricParams | None = None) -> dict[str, float | int | str]:
    """The flat provenance columns every per-case row carries: suite version and every parameter.

    Keys: ``suite_version`` then each :class:`MetricParams` field by name (``connectivity``,
    ``anima_min_volume_mm3`` (the size filter), ``slice_coverage`` (the slice threshold), ...).
    """
    return (params or MetricParams()).as_dict()


@dataclass(frozen=True)
class MetricSpec:
    """How to read one key of the case record.

    Attributes:
        unit: Unit of the value ("" for a ratio in [0, 1], "mm", "ml", "%", "count", "flag").
        higher_is_better: Direction; None when the key is not a score (counts, volumes, flags).
        family: Metric family (voxel, surface, isbi, anima, slice, flag).
        description: One line for tables and tooltips.
        empty_pred: What the key gives when P is empty and G is not (an abstention).
        empty_ref: What the key gives when G is empty and P is not. With both empty every score is NaN.
        not_for_ranking: Why a leaderboard must not rank on this score ("" when it may).
    """

    unit: str
    higher_is_better: bool | None
    family: str
    description: str
    empty_pred: str
    empty_ref: str
    not_for_ranking: str = ""

    @property
    def rankable(self) -> bool:
        """A score (has a direction) that an empty prediction cannot improve."""
        return self.higher_is_better is not None and not self.not_for_ranking


_REWARDS_EMPTY = "an empty prediction scores best or near best on it (it counts correct background)"
_WORST_MM = "worst: field-of-view diagonal (mm)"


def _spec(
    unit: str,
    hib: bool | None,
    family: str,
    description: str,
    empty_pred: str = "computed",
    empty_ref: str = "computed",
    not_for_ranking: str = "",
) -> MetricSpec:
    return MetricSpec(unit, hib, family, description, empty_pred, empty_ref, not_for_ranking)


def _count(family: str, description: str) -> MetricSpec:
    return _spec("count", None, family, description)


METRIC_SPECS: dict[str, MetricSpec] = {
    "tp": _count("voxel", "voxels in both P and G"),
    "fp": _count("voxel", "voxels in P only"),
    "fn": _count("voxel", "voxels in G only"),
    "tn": _count("voxel", "voxels in neither"),
    "dice": _spec("", True, "voxel", "2TP/(2TP+FP+FN)", "0", "0"),
    "jaccard": _spec("", True, "voxel", "TP/(TP+FP+FN)", "0", "0"),
    "ndsc": _spec("", True, "voxel", "normalised Dice 2TP/(k FP+2TP+FN), Shifts 2.0", "0", "0 (Shifts: k = 1)"),
    "ppv": _spec("", True, "voxel", "precision TP/(TP+FP)", "0 (worst)", "0"),
    "sensitivity": _spec("", True, "voxel", "recall TP/(TP+FN)", "0", "NaN"),
    "specificity": _spec("", True, "voxel", "TN/(TN+FP)", "1 (best)", "computed", _REWARDS_EMPTY),
    "npv": _spec("", True, "voxel", "TN/(TN+FN)", "computed (near 1)", "1", _REWARDS_EMPTY),
    "accuracy": _spec("", True, "voxel", "(TP+TN)/all voxels", "computed (near 1)", "computed", _REWARDS_EMPTY),
    "extra_fraction": _spec("", False, "voxel", "FP/(TN+FN) (Rondinella)", "0 (best)", "computed", _REWARDS_EMPTY),
    "vol_pred_ml": _spec("ml", None, "voxel", "volume of P"),
    "vol_ref_ml": _spec("ml", None, "voxel", "volume of G"),
    "vol_diff": _spec(
        "",
        False,
        "voxel",
        "ISBI |V_P - V_G| / V_G",
        "1",
        "NaN",
        "an empty prediction scores 1, better than any prediction of more than twice the reference volume",
    ),  # fmt: skip
    "rel_vol_error_pct": _spec("%", None, "voxel", "signed 100 (V_P - V_G) / V_G (MSSEG)", "-100", "NaN"),
    "dice_lesion_slices": _spec(
        "", True, "slice", "Dice pooled over the axial slices where G has a voxel (Rondinella)", "0", "NaN"
    ),
    "hd_mm": _spec("mm", False, "surface", "Hausdorff distance, max of both directed maxima", _WORST_MM, _WORST_MM),
    "hd95_mm": _spec("mm", False, "surface", "max of the two directed 95th percentiles", _WORST_MM, _WORST_MM),
    "assd_mm": _spec("mm", False, "surface", "all surface distances / all boundary voxels", _WORST_MM, _WORST_MM),
    "n_lesions_ref": _count("isbi", "reference lesions (ISBI connectivity)"),
    "n_lesions_pred": _count("isbi", "predicted lesions (ISBI connectivity)"),
    "n_lesions_ref_detected": _count("isbi", "reference lesions touched by P"),
    "n_lesions_pred_fp": _count("isbi", "predicted lesions touching no G voxel"),
    "ltpr": _spec("", True, "isbi", "lesion TPR: reference lesions touched / reference lesions", "0", "NaN"),
    "lfpr": _spec("", False, "isbi", "lesion FPR: predicted lesions off G / predicted lesions", "1 (worst)", "1"),
    "lesion_precision": _spec("", True, "isbi", "1 - LFPR", "0 (worst)", "0"),
    "lesion_f1": _spec("", True, "isbi", "F1 of LTPR and 1 - LFPR (0 when either is 0)", "0", "0"),
    "anima_n_ref": _count("anima", "reference lesions after the size filter"),
    "anima_n_pred": _count("anima", "predicted lesions after the size filter"),
    "anima_n_ref_detected": _count("anima", "reference lesions detected"),
    "anima_n_pred_detected": _count("anima", "predicted lesions detected (swap)"),
    "anima_sensl": _spec(
        "", True, "anima", "Anima lesion sensitivity", "0 (NaN if no G lesion passes the filter)", "NaN"
    ),
    "anima_ppvl": _spec("", True, "anima", "Anima lesion PPV", "0 (worst)", "0"),
    "anima_f1": _spec("", True, "anima", "F1 of SensL and PPVL (0 when either is 0)", "0", "0"),
    "slice_tp": _count("slice", "positive axial slices found"),
    "slice_fp": _count("slice", "negative axial slices with P voxels"),
    "slice_fn": _count("slice", "positive axial slices missed"),
    "slice_tn": _count("slice", "negative axial slices without P voxels"),
    "slice_accuracy": _spec("", True, "slice", "axial slice accuracy", "computed (near 1)", "computed", _REWARDS_EMPTY),
    "slice_sensitivity": _spec("", True, "slice", "axial slice sensitivity", "0", "NaN"),
    "slice_ppv": _spec("", True, "slice", "axial slice PPV", "0 (worst)", "0"),
    "slice_npv": _spec("", True, "slice", "axial slice NPV", "computed", "1", _REWARDS_EMPTY),
    "slice_bal_accuracy": _spec(
        "",
        True,
        "slice",
        "slice accuracy on a balanced slice set (Darestani), expectation",
        "0.5",
        "NaN",
        "an empty prediction scores 0.5 (every negative slice right), above any worse-than-chance prediction",
    ),  # fmt: skip
    "slice_bal_sensitivity": _spec("", True, "slice", "slice sensitivity on a balanced slice set", "0", "NaN"),
    "slice_bal_ppv": _spec(
        "", True, "slice", "slice PPV on a balanced slice set (expected counts)", "0 (worst)", "NaN"
    ),
    "slice_bal_npv": _spec(
        "", True, "slice", "slice NPV on a balanced slice set (expected counts)", "0.5", "NaN", _REWARDS_EMPTY
    ),
    "slice_n_negative_scored": _count("slice", "negative slices the balanced set draws from (in the domain)"),
    "domain_voxels": _count("flag", "voxels of the scored domain (brain mask, or the whole volume): nDSC's N"),
    "domain_is_mask": _spec("flag", None, "flag", "1 when a brain mask set the domain, 0 for the whole volume"),
    "pred_empty": _spec("flag", None, "flag", "1 when P is empty"),
    "ref_empty": _spec("flag", None, "flag", "1 when G is empty"),
    "both_empty": _spec("flag", None, "flag", "1 when P and G are both empty (scores NaN, counted apart)"),
    "surface_undefined": _spec(
        "flag", None, "flag", "1 when P or G is empty: distances were not measured (worst value, or NaN if both)"
    ),
}


def rankable_metrics() -> tuple[str, ...]:
    """Keys a leaderboard may rank on: scores with a direction that an empty prediction cannot improve."""
    return tuple(name for name, spec in METRIC_SPECS.items() if spec.rankable)
