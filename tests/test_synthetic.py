"""The synthetic sources: the dead-leaves default and the discs (Sect. 5.1)."""

import numpy as np
import pytest

from diffnet_tf import synthetic

GREY = np.array([0.2989, 0.5870, 0.1140], np.float32)  # ITU-R 601, as rgb2gray


def kurtosis(x):
    x = x.ravel() - x.mean()
    return np.mean(x**4) / np.mean(x**2) ** 2


def channel_correlations(images):
    """Each RGB image's correlations between channels (R, G), (R, B), (G, B): (n, 3)."""
    pairs = np.triu_indices(3, 1)
    return np.array([np.corrcoef(image.reshape(-1, 3).T)[pairs] for image in images])


@pytest.mark.parametrize("channels", [1, 3])
def test_synthetic_images_are_deterministic_per_seed_and_index(channels):
    def pool(n, seed=3, start=0):
        return synthetic.synthetic_images(n, 32, seed, start, channels)

    images = pool(6)
    np.testing.assert_array_equal(images, pool(6))
    np.testing.assert_array_equal(images[:3], pool(3))
    np.testing.assert_array_equal(images[4:], pool(2, start=4))
    assert not np.allclose(images, pool(6, seed=4))
    assert len({image.tobytes() for image in images}) == 6


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 40])
def test_synthetic_images_are_scaled_to_max_one(size, channels):
    images = synthetic.synthetic_images(8, size=size, channels=channels)
    assert images.shape == (8, size, size, channels) and images.dtype == np.float32
    assert images.min() >= 0
    np.testing.assert_allclose(images.max(axis=(1, 2, 3)), 1.0)  # over all channels


def test_synthetic_gradients_are_heavy_tailed_like_natural_images():
    images = synthetic.synthetic_images(64, size=32, seed=1)
    assert kurtosis(np.diff(images, axis=2)) > 5
    gaussian = np.random.default_rng(0).normal(size=images.shape)
    assert kurtosis(np.diff(gaussian, axis=2)) < 3.5  # the statistic tells them apart
    assert images.std(axis=(1, 2, 3)).min() > 0.05  # not blank


def test_colour_channels_differ_but_correlate_like_photographs():
    images = synthetic.synthetic_images(32, size=32, seed=1, channels=3)
    correlations = channel_correlations(images)
    # Natural RGB photographs correlate about 0.8-0.95 between channels. Below 0.85 the
    # shapes would be garishly coloured, above 0.95 nearly grey (this model gives ~0.92).
    assert 0.85 < correlations.mean() < 0.95
    assert correlations.max() < 0.995  # every image has some colour
    differences = np.abs(np.diff(images, axis=3)).mean(axis=(1, 2, 3))
    assert differences.min() > 0.01


def test_colour_in_grey_is_the_grey_scene_with_heavy_tailed_differences():
    grey = synthetic.synthetic_images(64, size=32, seed=1)[..., 0]
    colour_in_grey = synthetic.synthetic_images(64, size=32, seed=1, channels=3) @ GREY
    assert kurtosis(np.diff(colour_in_grey, axis=2)) > 5
    # the same shapes and shading: each image agrees with the grey one up to a scale
    for a, b in zip(grey, colour_in_grey):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("channels", [0, 2, 4, True, 3.0, "3", None])
def test_synthetic_images_reject_bad_channels(channels):
    with pytest.raises(ValueError, match="Expected channels 1 or 3. Received"):
        synthetic.synthetic_images(2, size=16, channels=channels)


def test_discs_lie_on_a_zero_background():
    images = synthetic.disc_images(16, size=32, seed=2, max_discs=4)
    assert images.shape == (16, 32, 32, 1) and images.dtype == np.float32
    peaks = images.max(axis=(1, 2, 3))
    assert (peaks >= 0.2).all() and (peaks <= 1).all() and peaks.std() > 0  # not rescaled
    assert images.min() == 0
    background = (images == 0).mean(axis=(1, 2, 3))
    assert (background > 0.2).all() and (background < 1).all()
    levels = [len(np.unique(image)) for image in images]  # piecewise constant, 1-4 discs
    assert max(levels) <= 5 and min(levels) == 2 and max(levels) > 2
    np.testing.assert_array_equal(images[5:], synthetic.disc_images(11, size=32, seed=2,
                                                                    start=5, max_discs=4))


def test_one_disc_per_image_by_default():
    """The paper's data: one disc of radius size/16 .. size/4 and contrast 0.2 .. 1."""
    size = 64
    images = synthetic.disc_images(64, size=size, seed=3)[..., 0]
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
    with pytest.raises(ValueError, match="Expected max_discs to be an integer >= 1. Received"):
        synthetic.disc_images(2, size=16, max_discs=max_discs)


@pytest.mark.parametrize("make", [synthetic.synthetic_images, synthetic.disc_images])
@pytest.mark.parametrize(
    "kwargs, match",
    [({"n": -1}, "integer >= 0"), ({"n": 2.5}, "integer >= 0"),
     ({"n": 2, "size": 4}, "image size to be an integer >= 8"), ({"n": 2, "start": -3}, "start")],
)
def test_generators_reject_bad_arguments(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_generators_accept_zero_images():
    assert synthetic.synthetic_images(0, size=16).shape == (0, 16, 16, 1)
    assert synthetic.synthetic_images(0, size=16, channels=3).shape == (0, 16, 16, 3)
