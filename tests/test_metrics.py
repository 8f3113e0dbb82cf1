"""PSNR, relative l2, SSIM and the Keras metric against their definitions."""

import math

import keras
import numpy as np
import pytest

from diffnet_tf.metrics import ImageMetric, batch_psnr, psnr, relative_l2, ssim


def images(n=3, size=16, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 1)).astype(np.float32)


def test_psnr_per_image_uses_each_true_images_range():
    y = images()
    y[1] *= 0.5  # range halves: PSNR drops by 20 log10(2) for the same error
    pred = y + 0.01
    ranges = y.max(axis=(1, 2, 3)) - y.min(axis=(1, 2, 3))
    expected = 20 * np.log10(ranges) - 20 * math.log10(0.01)
    np.testing.assert_allclose(psnr(y, pred), expected, rtol=1e-4)


def test_batch_psnr_is_the_released_codes_single_number():
    y, pred = images(), images(seed=1)
    expected = 20 * np.log10(y.max() - y.min()) - 10 * np.log10(np.mean((y - pred) ** 2))
    np.testing.assert_allclose(float(batch_psnr(y, pred)), expected, rtol=1e-5)
    np.testing.assert_allclose(float(batch_psnr(y[:1], pred[:1])), psnr(y[:1], pred[:1])[0], rtol=1e-5)


def test_relative_l2_of_a_scaled_image_is_the_scale_error():
    y = images()
    np.testing.assert_allclose(relative_l2(y, 1.1 * y), [0.1] * 3, rtol=1e-4)


def test_ssim_is_one_for_identical_images_and_lower_otherwise():
    y = images()
    np.testing.assert_allclose(ssim(y, y), [1.0] * 3, rtol=1e-5)
    assert np.all(np.asarray(ssim(y, images(seed=1))) < 0.5)


@pytest.mark.parametrize("name, fn", [("psnr", psnr), ("relative_l2", relative_l2), ("ssim", ssim)])
def test_image_metric_in_compile_reports_the_mean_per_image_value(name, fn):
    x, y = images(8), images(8, seed=1)
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Identity()])
    model.compile(loss="mse", metrics=[ImageMetric(name)])
    result = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    np.testing.assert_allclose(result[name], np.mean(fn(y, x)), rtol=1e-5)
    clone = ImageMetric.from_config(ImageMetric(name).get_config())
    assert clone.name == name and clone.metric == name


def test_unknown_metric_name_is_rejected():
    with pytest.raises(ValueError, match="Unknown metric 'mae'"):
        ImageMetric("mae")
