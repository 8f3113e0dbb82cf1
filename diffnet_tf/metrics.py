"""Image quality measures: PSNR (per image, and the released code's batch form over a set
and over each 16-image batch), relative l2 error (per image, and over a whole set as the
released code's) and SSIM, plus a Keras metric for `model.compile(metrics=[...])`.

All take (B, H, W, C) float batches, any number of channels C: a per-image value pools all
of an image's pixels and channels. keras.ops only, so they run on every backend. A leaf
module: it imports nothing of diffnet_tf's but the argument checks.
"""

import keras
import numpy as np
from keras import ops

from diffnet_tf.checks import check_choice

IMAGE_AXES = (1, 2, 3)
# SSIM as tf.image.ssim (Wang et al. 2004): Gaussian window, stabilising constants k1, k2.
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
RELEASED_BATCH = 16  # the released code's test batch (PSNR and relative error every 20 steps)


@keras.saving.register_keras_serializable(package="diffnet_tf")
def psnr(y_true, y_pred):
    """Peak signal-to-noise ratio of each image, in dB.

        PSNR = 20 log10(max(y_true) - min(y_true)) - 10 log10(mean((y_true - y_pred)^2))

    with the range and the mean squared error taken per image. A perfect prediction gives
    +inf; a constant true image has no range and gives -inf or nan.

    Args:
        y_true: (B, H, W, C) reference images.
        y_pred: (B, H, W, C) estimates.

    Returns:
        (B,) tensor of PSNR values.
    """
    y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
    data_range = ops.max(y_true, axis=IMAGE_AXES) - ops.min(y_true, axis=IMAGE_AXES)
    mse = ops.mean(ops.square(y_true - y_pred), axis=IMAGE_AXES)
    return 20.0 * ops.log10(data_range) - 10.0 * ops.log10(mse)


@keras.saving.register_keras_serializable(package="diffnet_tf")
def batch_psnr(y_true, y_pred):
    """PSNR over a whole batch as the authors' released code computes it (one number):
    the range and the mean squared error are taken over all images together.

    Args:
        y_true: (B, H, W, C) reference images.
        y_pred: (B, H, W, C) estimates.

    Returns:
        scalar tensor, in dB.
    """
    y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
    data_range = ops.max(y_true) - ops.min(y_true)
    return 20.0 * ops.log10(data_range) - 10.0 * ops.log10(ops.mean(ops.square(y_true - y_pred)))


@keras.saving.register_keras_serializable(package="diffnet_tf")
def relative_l2(y_true, y_pred):
    """Relative l2 error of each image, ||y_true - y_pred||_2 / ||y_true||_2.

    Args:
        y_true: (B, H, W, C) reference images.
        y_pred: (B, H, W, C) estimates.

    Returns:
        (B,) tensor.
    """
    y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
    error = ops.sqrt(ops.sum(ops.square(y_true - y_pred), axis=IMAGE_AXES))
    return error / ops.sqrt(ops.sum(ops.square(y_true), axis=IMAGE_AXES))


def relative_l2_set(y_true, y_pred):
    """Relative l2 error of a whole set, ||y_true - y_pred||_F / ||y_true||_F over all
    images together: the released code's relative error (over its batch) and the paper's
    2.5e-4 for the discs (Sect. 5.1). NumPy float64.

    Args:
        y_true: (B, H, W, C) reference images.
        y_pred: (B, H, W, C) estimates.

    Returns:
        float.
    """
    y_true, y_pred = (np.asarray(ops.convert_to_numpy(a), np.float64) for a in (y_true, y_pred))
    return float(np.linalg.norm(y_true - y_pred) / np.linalg.norm(y_true))


def released_batch_psnrs(y_true, y_pred, batch_size=RELEASED_BATCH):
    """The released code's PSNR (`batch_psnr`) of each batch of `batch_size` consecutive
    images, as it logged for test batches of 16; a set smaller than one batch is one batch,
    and images after the last whole batch are left out.

    Args:
        y_true: (N, H, W, C) reference images.
        y_pred: (N, H, W, C) estimates.
        batch_size: images per batch.

    Returns:
        (number of batches,) float64 array, in dB.
    """
    starts = range(0, max(len(y_true) - batch_size, 0) + 1, batch_size)
    return np.array([float(ops.convert_to_numpy(batch_psnr(
        y_true[i : i + batch_size], y_pred[i : i + batch_size]))) for i in starts])


def _gaussian_window(channels):
    """The SSIM window for a depthwise convolution of `channels` maps: (11, 11, channels, 1),
    a Gaussian of standard deviation 1.5 pixels summing to 1 (tf.image.ssim's)."""
    g = np.exp(-0.5 * ((np.arange(SSIM_WINDOW) - (SSIM_WINDOW - 1) / 2) / SSIM_SIGMA) ** 2)
    window = np.outer(g, g) / g.sum() ** 2
    return np.tile(window[:, :, None, None], (1, 1, channels, 1)).astype("float32")


@keras.saving.register_keras_serializable(package="diffnet_tf")
def ssim(y_true, y_pred, max_val=1.0):
    """Structural similarity of each image, as tf.image.ssim computes it.

        SSIM = mean over pixels and channels of
               (2 mu_x mu_y + c1) (2 s_xy + c2) / ((mu_x^2 + mu_y^2 + c1) (s_x^2 + s_y^2 + c2))

    with local means mu, variances s^2 and covariance s_xy under an 11x11 Gaussian window
    (standard deviation 1.5 pixels) at every position where it fits in the image (VALID),
    each channel on its own, c1 = (0.01 max_val)^2 and c2 = (0.03 max_val)^2.

    Args:
        y_true: (B, H, W, C) reference images, H and W at least 11.
        y_pred: (B, H, W, C) estimates.
        max_val: the images' dynamic range (1 for images scaled to maximum 1).

    Returns:
        (B,) float32 tensor.
    """
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    shape = tuple(y_true.shape)
    if len(shape) != 4 or any(size is not None and size < SSIM_WINDOW for size in shape[1:3]):
        raise ValueError(
            f"Expected image batches (B, H, W, C) with H and W at least {SSIM_WINDOW} (the "
            f"SSIM window). Received shape {shape}."
        )
    maps = ops.concatenate([y_true, y_pred, y_true * y_pred, y_true**2 + y_pred**2], axis=-1)
    local = ops.depthwise_conv(maps, _gaussian_window(4 * shape[-1]), padding="valid")
    mu_x, mu_y, mu_xy, mu_squares = ops.split(local, 4, axis=-1)  # local means of the maps
    c1, c2 = (SSIM_K1 * max_val) ** 2, (SSIM_K2 * max_val) ** 2
    cross, squares = 2.0 * mu_x * mu_y, mu_x**2 + mu_y**2
    luminance = (cross + c1) / (squares + c1)
    # 2 s_xy = 2 mu_xy - 2 mu_x mu_y and s_x^2 + s_y^2 = mu_squares - mu_x^2 - mu_y^2
    structure = (2.0 * mu_xy - cross + c2) / (mu_squares - squares + c2)
    return ops.mean(luminance * structure, axis=IMAGE_AXES)


def image_quality(targets, estimates):
    """Every measure of `estimates` against `targets`, as plain floats for metrics.json.

    Args:
        targets: (N, H, W, C) float images.
        estimates: (N, H, W, C) float images.

    Returns:
        {'psnr_mean', 'psnr_std' (over images), 'psnr_batch' (the released code's form over
        the whole set), 'psnr_batch16_mean', 'psnr_batch16_min', 'psnr_batch16_max' (the
        released code's form over each 16-image batch, `released_batch_psnrs`),
        'relative_l2_mean' (over images), 'relative_l2_set' (`relative_l2_set`),
        'ssim_mean'}.
    """
    per_image = np.asarray(ops.convert_to_numpy(psnr(targets, estimates)))
    batches = released_batch_psnrs(targets, estimates)
    return {
        "psnr_mean": float(per_image.mean()),
        "psnr_std": float(per_image.std()),
        "psnr_batch": float(ops.convert_to_numpy(batch_psnr(targets, estimates))),
        "psnr_batch16_mean": float(batches.mean()),
        "psnr_batch16_min": float(batches.min()),
        "psnr_batch16_max": float(batches.max()),
        "relative_l2_mean": float(np.mean(ops.convert_to_numpy(relative_l2(targets, estimates)))),
        "relative_l2_set": relative_l2_set(targets, estimates),
        "ssim_mean": float(np.mean(ops.convert_to_numpy(ssim(targets, estimates)))),
    }


PER_IMAGE_METRICS = {"psnr": psnr, "relative_l2": relative_l2, "ssim": ssim}


@keras.saving.register_keras_serializable(package="diffnet_tf")
class ImageMetric(keras.metrics.MeanMetricWrapper):
    """Running mean over images of a per-image measure, for `model.compile(metrics=...)`.

    Args:
        metric: 'psnr', 'relative_l2' or 'ssim'.
        name: the name shown in logs and TensorBoard (default: `metric`).
        dtype: the metric's dtype.
    """

    def __init__(self, metric="psnr", name=None, dtype=None):
        check_choice(metric, tuple(PER_IMAGE_METRICS), "metric")
        super().__init__(fn=PER_IMAGE_METRICS[metric], name=name or metric, dtype=dtype)
        self.metric = metric

    def get_config(self):
        return {"metric": self.metric, "name": self.name, "dtype": self.dtype}
