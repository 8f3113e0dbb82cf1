"""apply_stencil against an independent NumPy version of eq. (4.6)."""

import numpy as np
import pytest

from diffnet_tf.stencil import apply_stencil, shift


def numpy_stencil(u, zeta, dt, boundary):
    """Eq. (4.6) pixel by pixel: F = u + dt (z1 uN + z2 uW + z3 uS + z4 uE - z5 u)."""
    b, h, w, _ = u.shape
    out = np.empty_like(u)

    def value(n, i, j):
        if 0 <= i < h and 0 <= j < w:
            return u[n, i, j, 0]
        if boundary == "zero":
            return 0.0
        return u[n, min(max(i, 0), h - 1), min(max(j, 0), w - 1), 0]

    for n in range(b):
        for i in range(h):
            for j in range(w):
                z = zeta[n, i, j]
                neighbour_sum = (
                    z[0] * value(n, i - 1, j)
                    + z[1] * value(n, i, j - 1)
                    + z[2] * value(n, i + 1, j)
                    + z[3] * value(n, i, j + 1)
                )
                out[n, i, j, 0] = u[n, i, j, 0] + dt * (neighbour_sum - z[4] * u[n, i, j, 0])
    return out


@pytest.mark.parametrize("boundary", ["neumann", "zero"])
def test_apply_stencil_matches_numpy_reference_on_non_square_images(boundary):
    rng = np.random.default_rng(0)
    u = rng.random((2, 7, 11, 1)).astype(np.float32)
    zeta = rng.normal(size=(2, 7, 11, 5)).astype(np.float32)
    result = np.asarray(apply_stencil(u, zeta, 0.3, boundary))
    np.testing.assert_allclose(result, numpy_stencil(u, zeta, 0.3, boundary), atol=1e-6)


def test_channel_order_is_top_left_bottom_right_centre():
    u = np.zeros((1, 3, 3, 1), np.float32)
    u[0, 1, 1, 0] = 1.0  # a single bright centre pixel
    for channel, (i, j) in enumerate([(2, 1), (1, 2), (0, 1), (1, 0)]):
        zeta = np.zeros((1, 3, 3, 5), np.float32)
        zeta[..., channel] = 1.0
        out = np.asarray(apply_stencil(u, zeta, 1.0))
        # Only the pixel whose top/left/bottom/right neighbour is the centre picks it up.
        expected = u.copy()
        expected[0, i, j, 0] += 1.0
        np.testing.assert_array_equal(out, expected)


def test_neumann_shift_repeats_the_boundary_pixel_and_zero_shift_fills_zeros():
    u = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
    np.testing.assert_array_equal(np.asarray(shift(u, 1, -1, "neumann"))[0, 0], u[0, 0])
    np.testing.assert_array_equal(np.asarray(shift(u, 2, 1, "zero"))[0, :, -1], 0.0)


def test_unknown_boundary_is_rejected():
    u = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="Unknown boundary 'periodic'"):
        apply_stencil(u, np.zeros((1, 4, 4, 5), np.float32), 0.1, "periodic")


def test_wrong_number_of_filter_maps_is_rejected():
    u = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match=r"five filter maps .* Received shape \(1, 4, 4, 4\)"):
        apply_stencil(u, np.zeros((1, 4, 4, 4), np.float32), 0.1)


def test_shift_offset_must_be_one_step():
    with pytest.raises(ValueError, match="Expected offset -1 or 1. Received 2"):
        shift(np.zeros((1, 4, 4, 1), np.float32), 1, 2)
