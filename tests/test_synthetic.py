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
    images = synthetic.discs(16, size=32, seed=2, max_discs=4)
    assert images.shape == (16, 32, 32, 1) and images.dtype == np.float32
    peaks = images.max(axis=(1, 2, 3))
    assert (peaks >= 0.2).all() and (peaks <= 1).all() and peaks.std() > 0  # not rescaled
    assert images.min() == 0
    background = (images == 0).mean(axis=(1, 2, 3))
    assert (background > 0.2).all() and (background < 1).all()
    levels = [len(np.unique(image)) for image in images]  # piecewise constant, 1-4 discs
    assert max(levels) <= 5 and min(levels) == 2 and max(levels) > 2
    np.testing.assert_array_equal(images[5:], synthetic.discs(11, size=32, seed=2, start=5,
                                                              max_discs=4))


def test_one_disc_per_image_by_default():
    """The paper's data: one disc of radius size/16 .. size/4 and contrast 0.2 .. 1."""
    size = 64
    images = synthetic.discs(64, size=size, seed=3)[..., 0]
    for image in images:
        values = np.unique(image)
        assert len(values) == 2 and values[0] == 0 and 0.2 <= values[1] <= 1
        ys, xs = np.nonzero(image)
        radius = np.sqrt(len(ys) / np.pi)
        assert size / 16 - 1 <= radius <= size / 4 + 0.5
        centre = np.array([ys.mean(), xs.mean()])  # convex: the centre lies inside
        assert image[tuple(np.rint(centre).astype(int))] == values[1]
        assert np.ptp(ys) == pytest.approx(np.ptp(xs), abs=1)  # round, not elongated
    assert np.ptp(images.max(axis=(1, 2))) > 0.5  # the contrast varies


@pytest.mark.parametrize("max_discs", [0, -1, 1.5, True])
def test_discs_reject_bad_max_discs(max_discs):
    with pytest.raises(ValueError, match="max_discs >= 1"):
        synthetic.discs(2, size=16, max_discs=max_discs)


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
