"""apply_stencil against an independent NumPy version of eq. (4.6), for one channel and for
three (Remark 4: channelwise and coupled filters)."""

import numpy as np
import pytest
from keras import ops

from diffnet_tf.stencil import apply_stencil, num_filter_maps, shift


def numpy_stencil(u, zeta, dt, boundary):
    """Eq. (4.6) pixel by pixel, for C channels (Remark 4):

        F^c = u^c + dt sum_d (z1^cd u^d_N + z2^cd u^d_W + z3^cd u^d_S + z4^cd u^d_E - z5^cd u^d)

    with d = c only when zeta holds 5 C maps (z_k^c = zeta[..., k C + c]), every d when it
    holds 5 C^2 (z_k^cd = zeta[..., k C^2 + c C + d]).
    """
    b, h, w, channels = u.shape
    coupled = zeta.shape[-1] == 5 * channels**2 and channels > 1
    out = np.empty_like(u)

    def value(n, i, j, d):
        if 0 <= i < h and 0 <= j < w:
            return u[n, i, j, d]
        if boundary == "zero":
            return 0.0
        return u[n, min(max(i, 0), h - 1), min(max(j, 0), w - 1), d]

    for n in range(b):
        for i in range(h):
            for j in range(w):
                for c in range(channels):
                    total = 0.0
                    for d in range(channels) if coupled else [c]:
                        stride = channels**2 if coupled else channels
                        offset = c * channels + d if coupled else c
                        z = zeta[n, i, j, offset::stride]
                        total += (
                            z[0] * value(n, i - 1, j, d)
                            + z[1] * value(n, i, j - 1, d)
                            + z[2] * value(n, i + 1, j, d)
                            + z[3] * value(n, i, j + 1, d)
                            - z[4] * u[n, i, j, d]
                        )
                    out[n, i, j, c] = u[n, i, j, c] + dt * total
    return out


@pytest.mark.parametrize("boundary", ["neumann", "zero"])
def test_apply_stencil_matches_numpy_reference_on_non_square_images(boundary):
    rng = np.random.default_rng(0)
    u = rng.random((2, 7, 11, 1)).astype(np.float32)
    zeta = rng.normal(size=(2, 7, 11, 5)).astype(np.float32)
    result = ops.convert_to_numpy(apply_stencil(u, zeta, 0.3, boundary))
    np.testing.assert_allclose(result, numpy_stencil(u, zeta, 0.3, boundary), atol=1e-6)


@pytest.mark.parametrize("boundary", ["neumann", "zero"])
@pytest.mark.parametrize("maps", [15, 45], ids=["channelwise", "coupled"])
def test_three_channel_apply_stencil_matches_numpy_reference(boundary, maps):
    rng = np.random.default_rng(3)
    u = rng.random((2, 6, 9, 3)).astype(np.float32)
    zeta = rng.normal(size=(2, 6, 9, maps)).astype(np.float32)
    result = ops.convert_to_numpy(apply_stencil(u, zeta, 0.3, boundary))
    np.testing.assert_allclose(result, numpy_stencil(u, zeta, 0.3, boundary), atol=1e-5)


def test_coupled_update_with_block_diagonal_filters_is_the_channelwise_update():
    rng = np.random.default_rng(4)
    channels = 3
    u = rng.random((2, 5, 7, channels)).astype(np.float32)
    channelwise = rng.normal(size=(2, 5, 7, 5 * channels)).astype(np.float32)
    coupled = np.zeros((2, 5, 7, 5 * channels**2), np.float32)
    for c in range(channels):
        coupled[..., c * channels + c :: channels**2] = channelwise[..., c::channels]
    np.testing.assert_allclose(
        apply_stencil(u, coupled, 0.2), apply_stencil(u, channelwise, 0.2), atol=1e-6
    )


@pytest.mark.parametrize("boundary", ["neumann", "zero"])
def test_identical_channels_with_identical_filters_give_the_grey_update(boundary):
    rng = np.random.default_rng(5)
    grey = rng.random((2, 6, 8, 1)).astype(np.float32)
    zeta = rng.normal(size=(2, 6, 8, 5)).astype(np.float32)
    colour = ops.convert_to_numpy(
        apply_stencil(np.repeat(grey, 3, -1), np.repeat(zeta, 3, -1), 0.2, boundary))
    expected = ops.convert_to_numpy(apply_stencil(grey, zeta, 0.2, boundary))
    for c in range(3):
        np.testing.assert_allclose(colour[..., c : c + 1], expected, atol=1e-6)


def test_channel_order_is_top_left_bottom_right_centre():
    u = np.zeros((1, 3, 3, 1), np.float32)
    u[0, 1, 1, 0] = 1.0  # a single bright centre pixel
    for channel, (i, j) in enumerate([(2, 1), (1, 2), (0, 1), (1, 0)]):
        zeta = np.zeros((1, 3, 3, 5), np.float32)
        zeta[..., channel] = 1.0
        out = ops.convert_to_numpy(apply_stencil(u, zeta, 1.0))
        # Only the pixel whose top/left/bottom/right neighbour is the centre picks it up.
        expected = u.copy()
        expected[0, i, j, 0] += 1.0
        np.testing.assert_array_equal(out, expected)


def test_neumann_shift_repeats_the_boundary_pixel_and_zero_shift_fills_zeros():
    u = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
    np.testing.assert_array_equal(ops.convert_to_numpy(shift(u, 1, -1, "neumann"))[0, 0], u[0, 0])
    np.testing.assert_array_equal(ops.convert_to_numpy(shift(u, 2, 1, "zero"))[0, :, -1], 0.0)


def test_unknown_boundary_is_rejected():
    u = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="Unknown boundary 'periodic'"):
        apply_stencil(u, np.zeros((1, 4, 4, 5), np.float32), 0.1, "periodic")


def test_wrong_number_of_filter_maps_is_rejected():
    u = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match=r"five filter maps .* Received shape \(1, 4, 4, 4\)"):
        apply_stencil(u, np.zeros((1, 4, 4, 4), np.float32), 0.1)


def test_wrong_number_of_filter_maps_for_three_channels_names_both_sizes():
    u = np.zeros((1, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match=r"5 C = 15 .* or 5 C\^2 = 45 .*\(1, 4, 4, 5\)"):
        apply_stencil(u, np.zeros((1, 4, 4, 5), np.float32), 0.1)


def test_num_filter_maps_counts_five_per_stencil_and_rejects_unknown_mixing():
    assert [num_filter_maps(1), num_filter_maps(1, "full")] == [5, 5]
    assert [num_filter_maps(3), num_filter_maps(3, "full")] == [15, 45]
    with pytest.raises(ValueError, match="Unknown channel_mixing 'partial'"):
        num_filter_maps(3, "partial")


def test_shift_offset_must_be_one_step():
    with pytest.raises(ValueError, match="Expected offset -1 or 1. Received 2"):
        shift(np.zeros((1, 4, 4, 1), np.float32), 1, 2)
