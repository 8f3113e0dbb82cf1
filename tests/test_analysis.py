"""Filter decomposition W = L + S (eq. 2.26), the alpha estimate and Fourier magnitudes."""

import numpy as np
import pytest

from diffnet_tf.analysis import alpha_estimate, decompose_filters, fourier_magnitude


def laplacian_filters(shape=(2, 6, 7)):
    return np.broadcast_to(np.array([1.0, 1.0, 1.0, 1.0, 4.0]), shape + (5,)).copy()


def test_pure_laplacian_has_no_smoothing_part():
    smoothing, mean_free = decompose_filters(laplacian_filters())
    np.testing.assert_array_equal(smoothing, 0.0)
    np.testing.assert_array_equal(mean_free, laplacian_filters())


@pytest.mark.parametrize("c", [0.3, -0.05])
def test_constant_added_to_neighbour_maps_gives_alpha_four_c(c):
    zeta = laplacian_filters()
    zeta[..., :4] += c
    np.testing.assert_allclose(alpha_estimate(zeta), 4 * abs(c))  # one value per image
    assert alpha_estimate(zeta).shape == (2,)


def test_mean_free_part_annihilates_constant_images():
    zeta = np.random.default_rng(0).normal(size=(3, 5, 5, 5))
    _, mean_free = decompose_filters(zeta)
    # W(zeta) applied to the constant 1: sum of the four neighbour weights minus the centre.
    np.testing.assert_allclose(mean_free[..., :4].sum(-1) - mean_free[..., 4], 0.0, atol=1e-12)


def test_fourier_magnitude_is_centred():
    image = np.ones((8, 10, 1))
    magnitude = fourier_magnitude(image, log=False)
    assert magnitude[4, 5] == pytest.approx(80.0) and magnitude.sum() == pytest.approx(80.0)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"five filter maps.*\(2, 3\)"):
        decompose_filters(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, 1\).*\(2, 3, 4, 1\)"):
        fourier_magnitude(np.zeros((2, 3, 4, 1)))
