"""Pre-processing helpers: hand-checked values and round trips back to the reference grid."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msbench.datasets.preprocessing import (
    brain_bbox,
    brain_window,
    crop,
    inplane_window,
    mm_to_voxels,
    normalise_01,
    resample_to_shape,
    restore_to_reference,
    uncrop,
)


def test_normalise_01_maps_brain_percentiles_to_0_and_1() -> None:
    image = np.zeros((10, 10, 10), np.float32)
    image[2:8, 2:8, 2:8] = np.arange(216, dtype=np.float32).reshape(6, 6, 6) + 1  # 1..216 inside, 0 outside
    out = normalise_01(image, percentiles=(0, 100))
    assert out.dtype == np.float32
    assert out[2, 2, 2] == 0.0 and out[7, 7, 7] == 1.0
    assert out[2, 2, 3] == pytest.approx(1 / 215)
    assert out[0, 0, 0] == 0.0  # background clipped to 0
    low, high = np.percentile(np.arange(1, 217), (0.5, 99.5))
    clipped = normalise_01(image)
    assert clipped[7, 7, 7] == 1.0 and clipped[2, 2, 2] == 0.0
    assert clipped[4, 4, 4] == pytest.approx((image[4, 4, 4] - low) / (high - low), rel=1e-5)


def test_normalise_01_uses_the_given_brain_and_zeroes_outside() -> None:
    image = np.full((4, 4, 4), 5.0, np.float32)
    image[0] = 1000.0
    brain = np.zeros_like(image, bool)
    brain[1:] = True
    image[3] = 9.0
    out = normalise_01(image, brain, percentiles=(0, 100))
    assert out[0].max() == 0.0 and out[3, 0, 0] == 1.0 and out[1, 0, 0] == 0.0
    assert not normalise_01(np.full((3, 3, 3), 2.0)).any()  # one intensity: all zeros, no division by zero
    stacked = normalise_01(np.stack([image, image * 2]), brain, (0, 100))
    assert stacked.shape == (2, 4, 4, 4) and np.allclose(stacked[0], stacked[1])


def test_brain_bbox_with_margin_clipped_to_the_volume() -> None:
    mask = np.zeros((10, 12, 8), bool)
    mask[3:5, 0:2, 6:8] = True
    assert brain_bbox(mask) == (slice(3, 5), slice(0, 2), slice(6, 8))
    assert brain_bbox(mask, margin=2) == (slice(1, 7), slice(0, 4), slice(4, 8))
    assert brain_bbox(mask, margin=(0, 1, 0)) == (slice(3, 5), slice(0, 3), slice(6, 8))
    assert brain_bbox(np.zeros((3, 4, 5))) == (slice(0, 3), slice(0, 4), slice(0, 5))
    assert brain_bbox(np.stack([np.zeros_like(mask), mask])) == brain_bbox(mask)


def test_crop_uncrop_round_trip_and_padding_outside_the_volume() -> None:
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(2, 6, 7, 5)).astype(np.float32)
    box = (slice(1, 4), slice(2, 7), slice(0, 3))
    small = crop(volume, box)
    assert small.shape == (2, 3, 5, 3) and np.array_equal(small, volume[:, 1:4, 2:7, 0:3])
    back = uncrop(small, box, volume.shape[-3:])
    assert np.array_equal(back[:, 1:4, 2:7, 0:3], small) and back.sum() == small.sum()
    outside = (slice(-2, 4), slice(0, 7), slice(3, 8))
    padded = crop(volume[0], outside, fill=-1)
    assert padded.shape == (6, 7, 5)
    assert (padded[:2] == -1).all() and (padded[:, :, 2:] == -1).all()
    assert np.array_equal(padded[2:, :, :2], volume[0, :4, :, 3:5])
    assert np.array_equal(uncrop(padded, outside, (6, 7, 5))[:4, :, 3:], volume[0, :4, :, 3:])


@settings(max_examples=40, deadline=None)
@given(
    st.tuples(st.integers(2, 9), st.integers(2, 9), st.integers(2, 9)),
    st.tuples(st.integers(-3, 5), st.integers(-3, 5), st.integers(-3, 5)),
    st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
)
def test_uncrop_of_crop_restores_every_voxel_inside_the_box(shape, start, size) -> None:
    volume = np.arange(np.prod(shape)).reshape(shape) + 1
    box = tuple(slice(a, a + n) for a, n in zip(start, size, strict=True))
    restored = uncrop(crop(volume, box), box, shape)
    inside = np.zeros(shape, bool)
    inside[tuple(slice(max(s.start, 0), max(s.stop, 0)) for s in box)] = True
    assert np.array_equal(restored[inside], volume[inside]) and not restored[~inside].any()


def test_resample_nearest_up_then_down_is_the_identity_for_masks() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((5, 6, 4)) > 0.6
    up = resample_to_shape(mask, (10, 12, 8), order=0)
    assert up.dtype == bool and np.array_equal(up[::2, ::2, ::2], mask)
    assert np.array_equal(resample_to_shape(up, mask.shape, order=0), mask)
    linear = resample_to_shape(mask, (10, 12, 8), order=1)
    assert linear.dtype == bool


def test_resample_linear_keeps_a_linear_ramp_on_voxel_centres() -> None:
    ramp = np.broadcast_to(np.arange(8, dtype=np.float64)[:, None, None], (8, 3, 3))
    half = resample_to_shape(ramp, (4, 3, 3), order=1)
    assert half.dtype == np.float32
    assert np.allclose(half[:, 0, 0], [0.5, 2.5, 4.5, 6.5])  # grid mode: the centre of each pair of voxels


def test_restore_to_reference_inverts_crop_and_resample() -> None:
    reference = np.zeros((20, 22, 10), bool)
    reference[5:11, 7:15, 2:6] = True
    box = brain_bbox(reference, margin=1)
    small = resample_to_shape(crop(reference, box), (16, 20, 12), order=0)
    restored = restore_to_reference(small, box, reference.shape, order=0)
    assert restored.shape == reference.shape and restored.dtype == bool
    assert np.array_equal(restored, reference)
    probs = restore_to_reference(small.astype(np.float32), None, reference.shape, order=1)
    assert probs.shape == reference.shape and probs.dtype == np.float32


def test_inplane_window_is_160_by_160_around_the_brain_and_pads_small_images() -> None:
    image = np.zeros((181, 217, 20), np.float32)
    image[30:150, 40:200, 3:17] = 1.0
    box = inplane_window(image)
    assert [s.stop - s.start for s in box] == [160, 160, 20]
    assert box[0] == slice(10, 170) and box[1] == slice(40, 200)
    assert crop(image, box)[..., 3:17].sum() == 120 * 160 * 14  # the brain fits entirely
    small = np.ones((100, 120, 4), np.float32)
    window = inplane_window(small)
    assert window[0] == slice(-30, 130) and window[1] == slice(-20, 140)
    cropped = crop(small, window)
    assert cropped.shape == (160, 160, 4) and cropped.sum() == small.sum()
    assert np.array_equal(restore_to_reference(cropped, window, small.shape), small)


def test_bad_boxes_and_shapes_are_reported() -> None:
    with pytest.raises(ValueError, match="three slices"):
        crop(np.zeros((3, 3, 3)), (slice(0, 2), slice(None), slice(0, 1)))
    with pytest.raises(ValueError, match="does not fit a box"):
        uncrop(np.zeros((2, 2, 2)), (slice(0, 2), slice(0, 2), slice(0, 3)), (4, 4, 4))
    with pytest.raises(ValueError, match="three positive sizes"):
        resample_to_shape(np.zeros((3, 3, 3)), (3, 3))


def test_mm_to_voxels_rounds_to_the_networks_multiple() -> None:
    assert mm_to_voxels(96.0, (3.0, 3.0, 3.0), multiple=16) == (32, 32, 32)  # the 3D smoke patch
    assert mm_to_voxels(64.0, (1.0, 1.0, 1.0), multiple=16) == (64, 64, 64)  # F.sh's 64^3 at 1 mm
    assert mm_to_voxels(64.0, (0.5, 0.5, 1.2), multiple=16) == (128, 128, 48)  # 53.3 voxels -> nearest 48
    assert mm_to_voxels(48.0, (3.0, 3.0, 3.0)) == (16, 16, 16)
    assert mm_to_voxels(160.0, (3.0, 3.0), multiple=8, round_up=True) == (56, 56)  # 53.3 -> up to 56
    assert mm_to_voxels(1.0, (3.0,), multiple=16) == (16,)  # never below one multiple
    assert mm_to_voxels((10.0, 20.0), (1.0, 2.0)) == (10, 10)
    with pytest.raises(ValueError, match="one per axis"):
        mm_to_voxels((1.0, 2.0), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="positive"):
        mm_to_voxels(64.0, (0.0, 1.0, 1.0))


def test_brain_window_spans_the_mm_asked_and_never_cuts_brain() -> None:
    # ISBI 2015's 1 mm grid: a fixed 160-voxel window would cut this 186-voxel-long brain along J.
    brain = np.zeros((181, 217, 20), bool)
    brain[20:160, 15:201, 3:17] = True
    box = brain_window(brain, (1.0, 1.0, 1.0), window_mm=160.0, multiple=32)
    assert [s.stop - s.start for s in box] == [160, 192, 20]
    assert crop(brain, box).sum() == brain.sum()
    # A 0.5 mm grid: 160 mm is 320 voxels, not the 80 mm that 160 voxels would be.
    fine = np.zeros((400, 400, 10), bool)
    fine[150:250, 150:250, :] = True
    box = brain_window(fine, (0.5, 0.5, 0.8), window_mm=160.0, multiple=32)
    assert [s.stop - s.start for s in box[:2]] == [320, 320] and crop(fine, box).sum() == fine.sum()
    # An image smaller than the window: the window reaches outside it (zero padding), brain whole.
    small = np.zeros((30, 40, 4), bool)
    small[2:28, 1:39, :] = True
    box = brain_window(small, (3.0, 3.0, 3.0), window_mm=192.0, multiple=8)
    assert [s.stop - s.start for s in box[:2]] == [64, 64] and crop(small, box).sum() == small.sum()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(5, 60),
    st.integers(5, 60),
    st.integers(0, 30),
    st.integers(0, 30),
    st.sampled_from([0.5, 1.0, 3.0]),
    st.sampled_from([1, 8, 32]),
)
def test_brain_window_holds_every_brain_voxel(ni: int, nj: int, oi: int, oj: int, spacing: float, multiple: int):
    brain = np.zeros((ni + oi + 3, nj + oj + 3, 3), bool)
    brain[oi : oi + ni, oj : oj + nj, 1] = True
    box = brain_window(brain, (spacing, spacing, 1.0), window_mm=20.0, multiple=multiple)
    sizes = [s.stop - s.start for s in box[:2]]
    assert all(size % multiple == 0 and size * spacing >= 20.0 for size in sizes)
    assert crop(brain, box).sum() == brain.sum()
