"""The phantom's cortical folding: dark sulcal sheets between grey-matter banks, the maps' CSF share kept."""

from __future__ import annotations

import numpy as np
import pytest

from msbench.datasets.phantom._anatomy import fold_cortex


def test_folding_keeps_every_voxels_mantle_and_the_mean_csf_share():
    rng = np.random.default_rng(0)
    shape = (48, 48, 48)
    mantle = np.full(shape, 0.9, np.float32)
    share = np.full(shape, 0.3, np.float32)
    gm, csf = fold_cortex(mantle * (1 - share), mantle * share, rng, resolution_mm=1.0)
    np.testing.assert_allclose(gm + csf, mantle, rtol=1e-6)
    assert gm.min() >= 0 and csf.min() >= 0
    # The MNI maps' smooth 30 % mixture becomes mostly pure voxels: sulcal CSF or grey-matter bank.
    folded = csf / mantle
    assert abs(folded.mean() - 0.3) < 0.02
    assert np.mean((folded < 0.05) | (folded > 0.95)) > 0.6


def test_pure_voxels_and_an_empty_mantle_stay_as_they_are():
    rng = np.random.default_rng(1)
    gm = np.zeros((20, 20, 20), np.float32)
    csf = np.zeros_like(gm)
    gm[:10], csf[10:15] = 0.8, 1.0  # grey matter only, CSF only, then nothing
    new_gm, new_csf = fold_cortex(gm, csf, rng, resolution_mm=1.0)
    np.testing.assert_array_equal(new_gm[:10], gm[:10])
    np.testing.assert_allclose(new_csf[10:15], 1.0)
    assert not new_gm[15:].any() and not new_csf[15:].any()


@pytest.mark.parametrize("resolution_mm", [1.0, 3.0])
def test_sulci_are_thin_sheets_not_blobs(resolution_mm):
    """Sulcal CSF lies near the field's zero set: almost all of it within 2 mm (or one voxel) of a grey-matter bank."""
    rng = np.random.default_rng(2)
    shape = (40, 40, 40)
    gm, csf = fold_cortex(np.full(shape, 0.75, np.float32), np.full(shape, 0.25, np.float32), rng, resolution_mm)
    sulcal, bank = csf > 0.5, gm > 0.5
    from scipy import ndimage

    near_bank = ndimage.binary_dilation(bank, iterations=max(1, round(2.0 / resolution_mm)))
    assert sulcal.any() and np.mean(near_bank[sulcal]) > 0.95
