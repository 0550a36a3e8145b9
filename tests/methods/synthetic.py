"""Tiny synthetic cases for the tests of trainable methods: bright blobs in a FLAIR-like volume, written with nibabel.

A test helper: it lived in the package (``msbench.methods.engine.testing``) without a caller there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from msbench.datasets.case import Case


def synthetic_cases(
    root: Path,
    *,
    n_patients: int = 3,
    shape: tuple[int, int, int] = (24, 28, 20),
    seed: int = 0,
    modalities: tuple[str, ...] = ("flair", "t1", "t2"),
) -> list[Case]:
    """One case per patient: an ellipsoidal 'brain' (background 0) with 2-4 bright spherical lesions.

    FLAIR lesions are 1.6x the tissue level (T2 1.4x, T1 0.7x) with Gaussian noise, so a network separates them
    in a few steps while a global threshold is disturbed by the noise. Files are NIfTI with a 1 mm affine.
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*(np.arange(s) for s in shape), indexing="ij"), axis=-1).astype(np.float32)
    centre = (np.asarray(shape) - 1) / 2
    brain = (((grid - centre) / (np.asarray(shape) / 2 - 1.5)) ** 2).sum(-1) <= 1.0
    factors = {"flair": 1.6, "t2": 1.4, "t1": 0.7, "pd": 1.2}
    root.mkdir(parents=True, exist_ok=True)
    cases = []
    for p in range(n_patients):
        mask = np.zeros(shape, bool)
        for _ in range(int(rng.integers(2, 5))):
            radius = float(rng.uniform(1.5, 3.0))
            c = centre + rng.uniform(-0.35, 0.35, 3) * np.asarray(shape)
            mask |= ((grid - c) ** 2).sum(-1) <= radius**2
        mask &= brain
        images = {}
        for modality in modalities:
            tissue = 100.0 * (1.0 + 0.15 * rng.standard_normal(shape))
            tissue[mask] *= factors[modality]
            data = np.where(brain, np.clip(tissue, 1.0, None), 0.0).astype(np.float32)
            path = root / f"p{p}_{modality}.nii.gz"
            nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
            images[modality] = path
        mask_path = root / f"p{p}_mask1.nii.gz"
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)), str(mask_path))
        cases.append(Case(f"p{p}_01", f"p{p}", 1, images, {"mask1": mask_path}, dataset="synthetic"))
    return cases
