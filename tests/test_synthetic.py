"""The synthetic sources: the dead-leaves default and the discs (Sect. 5.1)."""

import numpy as np
import pytest

from diffnet_tf import synthetic


def kurtosis(x):
    x = x.ravel() - x.mean()
    return np.mean(x**4) / np.mean(x**2) ** 2


def test_synthetic_images_are_deterministic_per_seed_and_index():
    images = synthetic.synthetic_images(6, size=32, seed=3)
    np.testing.assert_array_equal(images, synthetic.synthetic_images(6, size=32, seed=3))
    np.testing.assert_array_equal(images[:3], synthetic.synthetic_images(3, size=32, seed=3))
    np.testing.assert_array_equal(images[4:], synthetic.synthetic_images(2, 32, 3, start=4))
    assert not np.allclose(images, synthetic.synthetic_images(6, size=32, seed=4))
    assert len({image.tobytes() for image in images}) == 6


@pytest.mark.parametrize("size", [16, 40])
def test_synthetic_images_are_scaled_to_max_one(size):
    images = synthetic.synthetic_images(8, size=size)
    assert images.shape == (8, size, size, 1) and images.dtype == np.float32
    assert images.min() >= 0
    np.testing.assert_allclose(images.max(axis=(1, 2, 3)), 1.0)


def test_synthetic_gradients_are_heavy_tailed_like_natural_images():
    images = synthetic.synthetic_images(64, size=32, seed=1)
    assert kurtosis(np.diff(images, axis=2)) > 5
    gaussian = np.random.default_rng(0).normal(size=images.shape)
    assert kurtosis(np.diff(gaussian, axis=2)) < 3.5  # the statistic tells them apart
    assert images.std(axis=(1, 2, 3)).min() > 0.05  # not blank


def test_discs_lie_on_a_zero_background():
    images = synthetic.discs(16, size=32, seed=2)
    assert images.shape == (16, 32, 32, 1) and images.dtype == np.float32
    np.testing.assert_allclose(images.max(axis=(1, 2, 3)), 1.0)
    assert images.min() == 0
    background = (images == 0).mean(axis=(1, 2, 3))
    assert (background > 0.2).all() and (background < 1).all()
    for image in images:  # piecewise constant: at most four contrast levels
        assert len(np.unique(image)) <= 5
    np.testing.assert_array_equal(images[5:], synthetic.discs(11, size=32, seed=2, start=5))


@pytest.mark.parametrize("make", [synthetic.synthetic_images, synthetic.discs])
@pytest.mark.parametrize(
    "kwargs, match",
    [({"n": -1}, "non-negative integer"), ({"n": 2.5}, "non-negative integer"),
     ({"n": 2, "size": 4}, "size >= 8"), ({"n": 2, "start": -3}, "start")],
)
def test_generators_reject_bad_arguments(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_generators_accept_zero_images():
    assert synthetic.synthetic_images(0, size=16).shape == (0, 16, 16, 1)


# ---------------------------------------------------------------- STL-10
