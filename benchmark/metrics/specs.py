"""Metric parameters, the per-key metric table and the suite version stored with every result."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

#: Version of the metric suite. Bump the minor part when a key is added, the major part when any
#: existing number can change (a definition, a default parameter or the NaN policy below).
#: NaN policy v1: a ratio with a zero denominator is NaN; a distance with an empty mask is NaN and the
#: case carries ``surface_undefined = 1``; aggregates count valid (non-NaN) cases per metric.
SUITE_VERSION = "1.0.0+nan-policy-1"

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

Undefined = Literal["never", "nan", "nan_flagged"]


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
            finest voxels) of the exact local search for nearest boundary voxels before a KD-tree.
        hd_percentile: Percentile of the directed distances for ``hd95_mm``.
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

    def as_dict(self) -> dict[str, float | int | str]:
        """Parameters plus the suite version, flat, ready to store next to the numbers."""
        return {"suite_version": SUITE_VERSION, **asdict(self)}


@dataclass(frozen=True)
class MetricSpec:
    """How to read one key of the case record.

    Attributes:
        unit: Unit of the value ("" for a ratio in [0, 1], "mm", "ml", "%", "count", "flag").
        higher_is_better: Direction for ranking; None when the key is not a score (counts, volumes, flags).
        undefined: "never" (always finite), "nan" (NaN on a zero denominator) or "nan_flagged"
            (NaN when a mask is empty, and the case carries ``surface_undefined``).
        family: Metric family (voxel, surface, isbi, anima, slice, flag).
        description: One line for tables and tooltips.
    """

    unit: str
    higher_is_better: bool | None
    undefined: Undefined
    family: str
    description: str


def _spec(unit: str, hib: bool | None, undefined: Undefined, family: str, description: str) -> MetricSpec:
    return MetricSpec(unit, hib, undefined, family, description)


METRIC_SPECS: dict[str, MetricSpec] = {
    "tp": _spec("count", None, "never", "voxel", "voxels in both P and G"),
    "fp": _spec("count", None, "never", "voxel", "voxels in P only"),
    "fn": _spec("count", None, "never", "voxel", "voxels in G only"),
    "tn": _spec("count", None, "never", "voxel", "voxels in neither"),
    "dice": _spec("", True, "nan", "voxel", "2TP/(2TP+FP+FN)"),
    "jaccard": _spec("", True, "nan", "voxel", "TP/(TP+FP+FN)"),
    "ppv": _spec("", True, "nan", "voxel", "precision TP/(TP+FP)"),
    "sensitivity": _spec("", True, "nan", "voxel", "recall TP/(TP+FN)"),
    "specificity": _spec("", True, "nan", "voxel", "TN/(TN+FP)"),
    "npv": _spec("", True, "nan", "voxel", "TN/(TN+FN)"),
    "accuracy": _spec("", True, "nan", "voxel", "(TP+TN)/all voxels"),
    "extra_fraction": _spec("", False, "nan", "voxel", "FP/(TN+FN) (Rondinella)"),
    "vol_pred_ml": _spec("ml", None, "never", "voxel", "volume of P"),
    "vol_ref_ml": _spec("ml", None, "never", "voxel", "volume of G"),
    "vol_diff": _spec("", False, "nan", "voxel", "ISBI |V_P - V_G| / V_G"),
    "rel_vol_error_pct": _spec("%", None, "nan", "voxel", "signed 100 (V_P - V_G) / V_G (MSSEG)"),
    "hd_mm": _spec("mm", False, "nan_flagged", "surface", "Hausdorff distance, max of both directed maxima"),
    "hd95_mm": _spec("mm", False, "nan_flagged", "surface", "max of the two directed 95th percentiles"),
    "assd_mm": _spec("mm", False, "nan_flagged", "surface", "all surface distances / all boundary voxels"),
    "n_lesions_ref": _spec("count", None, "never", "isbi", "reference lesions (ISBI connectivity)"),
    "n_lesions_pred": _spec("count", None, "never", "isbi", "predicted lesions (ISBI connectivity)"),
    "n_lesions_ref_detected": _spec("count", None, "never", "isbi", "reference lesions touched by P"),
    "n_lesions_pred_fp": _spec("count", None, "never", "isbi", "predicted lesions touching no G voxel"),
    "ltpr": _spec("", True, "nan", "isbi", "lesion TPR: reference lesions touched / reference lesions"),
    "lfpr": _spec("", False, "nan", "isbi", "lesion FPR: predicted lesions off G / predicted lesions"),
    "lesion_precision": _spec("", True, "nan", "isbi", "1 - LFPR"),
    "lesion_f1": _spec("", True, "nan", "isbi", "F1 of LTPR and 1 - LFPR"),
    "anima_n_ref": _spec("count", None, "never", "anima", "reference lesions after the size filter"),
    "anima_n_pred": _spec("count", None, "never", "anima", "predicted lesions after the size filter"),
    "anima_n_ref_detected": _spec("count", None, "never", "anima", "reference lesions detected"),
    "anima_n_pred_detected": _spec("count", None, "never", "anima", "predicted lesions detected (swap)"),
    "anima_sensl": _spec("", True, "nan", "anima", "Anima lesion sensitivity"),
    "anima_ppvl": _spec("", True, "nan", "anima", "Anima lesion PPV"),
    "anima_f1": _spec("", True, "nan", "anima", "F1 of SensL and PPVL"),
    "slice_tp": _spec("count", None, "never", "slice", "positive axial slices found"),
    "slice_fp": _spec("count", None, "never", "slice", "negative axial slices with P voxels"),
    "slice_fn": _spec("count", None, "never", "slice", "positive axial slices missed"),
    "slice_tn": _spec("count", None, "never", "slice", "negative axial slices without P voxels"),
    "slice_accuracy": _spec("", True, "nan", "slice", "axial slice accuracy"),
    "slice_sensitivity": _spec("", True, "nan", "slice", "axial slice sensitivity"),
    "slice_ppv": _spec("", True, "nan", "slice", "axial slice PPV"),
    "slice_npv": _spec("", True, "nan", "slice", "axial slice NPV"),
    "both_empty": _spec("flag", None, "never", "flag", "1 when P and G are both empty"),
    "surface_undefined": _spec("flag", None, "never", "flag", "1 when P or G is empty (distances are NaN)"),
}
