"""PSNR, relative l2, SSIM and the Keras metric against their definitions."""

import math

import keras
import numpy as np
import pytest

from diffnet_tf.metrics import (ImageMetric, batch_psnr, image_quality, psnr, relative_l2,
                                relative_l2_set, released_batch_psnrs, ssim)
from diffnet_tf.synthetic import synthetic_images


def images(n=3, size=16, seed=0, channels=1):
    return np.random.default_rng(seed).random((n, size, size, channels)).astype(np.float32)


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


@pytest.mark.parametrize("fn", [psnr, relative_l2])
def test_per_image_values_pool_all_pixels_and_channels(fn):
    """A colour image's value is that of its pixels and channels laid out as one channel."""
    y, pred = images(channels=3), images(seed=1, channels=3)
    y[1] *= 0.5  # the images differ in range and norm
    flat = (3, 16, 16 * 3, 1)
    np.testing.assert_allclose(fn(y, pred), fn(y.reshape(flat), pred.reshape(flat)), rtol=1e-5)
    values = keras.ops.convert_to_numpy(fn(y, pred))
    assert len({float(value) for value in values}) == 3  # one per image


def test_batch_psnr_pools_all_channels():
    y, pred = images(channels=3), images(seed=1, channels=3)
    expected = 20 * np.log10(y.max() - y.min()) - 10 * np.log10(np.mean((y - pred) ** 2))
    np.testing.assert_allclose(float(batch_psnr(y, pred)), expected, rtol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_is_one_for_identical_images_and_lower_otherwise(channels):
    y = images(channels=channels)
    np.testing.assert_allclose(ssim(y, y), [1.0] * 3, rtol=1e-5)
    assert np.all(keras.ops.convert_to_numpy(ssim(y, images(seed=1, channels=channels))) < 0.5)


def test_ssim_of_a_colour_image_is_the_mean_over_its_channels():
    y, pred = images(size=20, channels=3), images(size=20, seed=1, channels=3)
    pred = 0.5 * y + 0.5 * pred  # partly similar: SSIM well away from 0 and 1
    per_channel = [ssim(y[..., c : c + 1], pred[..., c : c + 1]) for c in range(3)]
    np.testing.assert_allclose(ssim(y, pred), np.mean(per_channel, axis=0), rtol=1e-5)


def pairs(channels):
    """(reference, estimate, max_val) triples: noise, a shifted contrast, unrelated scenes."""
    rng = np.random.default_rng(4)
    noisy = images(4, 24, channels=channels)
    noisy = (noisy, np.clip(noisy + 0.1 * rng.normal(size=noisy.shape), 0, 1), 1.0)
    scenes = synthetic_images(4, 32, seed=5, channels=channels)[:, :, 3:]  # 32 x 29
    return [noisy, (scenes, 0.8 * scenes + 0.1, 2.0),
            (scenes, synthetic_images(4, 32, seed=6, channels=channels)[:, :, 3:], 1.0)]


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_equals_tf_image_ssim(channels):
    tf = pytest.importorskip("tensorflow")
    for y, pred, max_val in pairs(channels):
        pred = pred.astype(np.float32)
        expected = tf.image.ssim(y, pred, max_val=max_val).numpy()
        np.testing.assert_allclose(ssim(y, pred, max_val=max_val), expected, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 10, 16, 1), (2, 16, 10, 3), (16, 16, 1)])
def test_ssim_rejects_images_smaller_than_its_window(shape):
    y = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=r"H and W at least 11 .* Received shape"):
        ssim(y, y)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name, fn", [("psnr", psnr), ("relative_l2", relative_l2), ("ssim", ssim)])
def test_image_metric_in_compile_reports_the_mean_per_image_value(name, fn, channels):
    x, y = images(8, channels=channels), images(8, seed=1, channels=channels)
    model = keras.Sequential([keras.Input((16, 16, channels)), keras.layers.Identity()])
    model.compile(loss="mse", metrics=[ImageMetric(name)])
    result = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    expected = np.mean(keras.ops.convert_to_numpy(fn(y, x)))
    np.testing.assert_allclose(result[name], expected, rtol=1e-5)
    clone = ImageMetric.from_config(ImageMetric(name).get_config())
    assert clone.name == name and clone.metric == name


def test_unknown_metric_name_is_rejected():
    with pytest.raises(ValueError, match="Unknown metric 'mae'"):
        ImageMetric("mae")


@pytest.mark.parametrize("metric", [psnr, batch_psnr, relative_l2, ssim])
def test_a_model_compiled_with_a_metric_function_and_the_l2norm_loss_reloads(metric, tmp_path):
    from diffnet_tf.losses import l2norm_loss
    from diffnet_tf.models import DiffNet

    model = DiffNet(num_layers=1, estimator_depth=2, width=4)
    model.compile(optimizer="adam", loss=l2norm_loss, metrics=[metric])
    x = images(2, 16)
    model.fit(x, x, epochs=1, verbose=0)
    model.save(tmp_path / "mine.keras")
    reloaded = keras.saving.load_model(tmp_path / "mine.keras")  # raised TypeError before
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    assert reloaded.loss is l2norm_loss
    assert reloaded.evaluate(x, x, verbose=0, return_dict=True).keys() == {"loss", metric.__name__}


def test_the_whole_set_relative_l2_is_one_ratio_of_norms_not_a_mean_over_images():
    y = images(4) * np.array([1.0, 1.0, 10.0, 10.0], np.float32)[:, None, None, None]
    estimate = y + 0.01 * images(4, seed=2)
    expected = np.linalg.norm(y.astype(np.float64) - estimate) / np.linalg.norm(y.astype(np.float64))
    np.testing.assert_allclose(relative_l2_set(y, estimate), expected, rtol=1e-12)
    per_image = np.mean(keras.ops.convert_to_numpy(relative_l2(y, estimate)))
    assert abs(relative_l2_set(y, estimate) - per_image) > 0.1 * expected


def test_the_released_batch_psnrs_are_the_batch_form_of_each_16_image_batch():
    y, estimate = images(40), images(40, seed=1)
    found = released_batch_psnrs(y, estimate)
    expected = [float(keras.ops.convert_to_numpy(batch_psnr(y[i : i + 16], estimate[i : i + 16])))
                for i in (0, 16)]  # the last 8 images make no whole batch
    np.testing.assert_allclose(found, expected, rtol=1e-6)
    assert len(released_batch_psnrs(y[:5], estimate[:5])) == 1  # a smaller set: one batch
    quality = image_quality(y, estimate)
    assert (quality["psnr_batch16_min"], quality["psnr_batch16_max"]) == (min(found), max(found))
    assert quality["relative_l2_set"] == relative_l2_set(y, estimate)
