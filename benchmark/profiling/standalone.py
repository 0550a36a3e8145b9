"""``msbench profile``: a method profiled on a synthetic MNI-sized case, outside any run, and stored by id."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from msbench.datasets import Case
from msbench.methods import Adapter, MethodCard

from ..fitting import FitSpec, Overrides, build, fit
from ..store import write_json
from ..store.index import PROFILES_DIR, index_profile
from .measure import PROFILE_SHAPE, PROFILE_VERSION, ProfileSettings, environment, memory_kind, settings_for
from .record import FIGURES, profile_adapter


def new_profile_id(method: str, device: str) -> str:
    """``<method>-<device>-<UTC time>-<random>``: the id of a standalone profile (``RESULTS/profiles/<id>.json``)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{method}-{device.replace(':', '')}-{stamp}-{uuid.uuid4().hex[:6]}"


def default_spacing(budget: str) -> float:
    """Grid spacing of the profiling case: 3 mm at ``smoke`` (the smoke phantom's grid), 1 mm otherwise."""
    return 3.0 if budget == "smoke" else 1.0


def profile_case(root: Path, spacing_mm: float = 1.0, modalities: Sequence[str] = ("flair", "t1", "t2")) -> Case:
    """A synthetic case over the 181x217x181 mm MNI field of view at ``spacing_mm``, with two raters' masks.

    At 1 mm the grid is 181x217x181 voxels (at 3 mm 60x72x60). An ellipsoidal brain fills most of the box, so a
    method's crop to the brain saves little: latency is that of a whole grid. Lesions are a few bright spheres (the
    method's sampler needs some); the second rater's mask equals the first.
    """
    if not spacing_mm > 0:
        raise ValueError(f"--spacing must be a positive voxel size in mm, got {spacing_mm}.")
    shape = tuple(max(8, int(round(n / spacing_mm))) for n in PROFILE_SHAPE)
    rng = np.random.default_rng(0)
    axes = np.ogrid[tuple(slice(0, n) for n in shape)]
    centre = [(n - 1) / 2 for n in shape]
    brain = sum(((a - c) / (n / 2 - 1.5)) ** 2 for a, c, n in zip(axes, centre, shape, strict=True)) <= 1.0
    mask = np.zeros(shape, bool)
    for _ in range(6):
        c = [ci + rng.uniform(-0.3, 0.3) * n for ci, n in zip(centre, shape, strict=True)]
        radius = max(1.5, 8.0 / spacing_mm) * rng.uniform(0.5, 1.0)
        mask |= sum((a - ci) ** 2 for a, ci in zip(axes, c, strict=True)) <= radius**2
    mask &= brain
    affine = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    images = {}
    for modality, factor in (("flair", 1.6), ("t1", 0.7), ("t2", 1.4), ("pd", 1.2)):
        if modality not in modalities:
            continue
        tissue = rng.normal(100.0, 15.0, shape).astype(np.float32)
        tissue[mask] *= factor
        images[modality] = root / f"profile_{modality}.nii.gz"
        nib.save(
            nib.Nifti1Image(np.where(brain, np.clip(tissue, 1.0, None), 0.0).astype(np.float32), affine),
            images[modality],
        )
    masks = {}
    for rater in ("mask1", "mask2"):
        masks[rater] = root / f"profile_{rater}.nii.gz"
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), masks[rater])
    return Case("profile_01", "profile", 1, images, masks, dataset="profile")


def profile_method(
    card: MethodCard,
    case: Case,
    *,
    device: str = "cpu",
    budget: str = "smoke",
    batch_size: int | None = None,
    settings: ProfileSettings | None = None,
    workdir: Path,
    seed: int = 0,
) -> dict[str, Any]:
    """Profiles one registered method at its ``budget`` recipe (``batch_size`` overrides the recipe's) on ``case``.

    A training-free method is calibrated on ``case`` first (the threshold's grid search: cheap); a trainable one is
    profiled with its untrained network.
    """
    spec = FitSpec.from_card(
        card, budget, overrides=Overrides(batch_size=batch_size), workdir=Path(workdir), seed=seed, device=device
    )
    # a training-free method is calibrated on the case (the threshold's grid search); a network stays untrained
    adapter = fit(spec, [case], [case])[0] if not card.trainable else build(spec)
    ids = {"profile_id": new_profile_id(card.name, device), "run_id": None, "job_id": None, "case": "synthetic"}
    if type(adapter).profile_network is Adapter.profile_network and card.trainable:
        return {
            "version": PROFILE_VERSION,
            "method": card.name,
            "budget": budget,
            **environment(device),
            "memory_kind": memory_kind(device),
            **dict.fromkeys(FIGURES),
            "errors": {},
            "not_applicable": f"{card.name} builds its network only when trained (nnU-Net plans it from the training "
            "data), so it is not profiled standalone; 'msbench run' stores its profile with every trained model "
            "(the job's profile.json).",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **ids,
        }
    record = profile_adapter(adapter, case, device=device, settings=settings or settings_for(budget))
    record.update(ids)
    return record


def store_profile(results: Path, record: dict[str, Any]) -> Path:
    """Writes a standalone profile to ``RESULTS/profiles/<profile_id>.json`` (atomically) and indexes it."""
    path = write_json(Path(results) / PROFILES_DIR / f"{record['profile_id']}.json", record)
    index_profile(results, record)
    return path
