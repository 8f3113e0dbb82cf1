"""Image quality measures: PSNR (per image and the released code's batch form), relative
l2 error and SSIM, plus a Keras metric for `model.compile(metrics=[...])`.

All take (B, H, W, 1) float batches. A leaf module: it imports nothing of diffnet_tf's
but the argument checks.
"""

import keras
import tensorflow as tf
from keras import ops

from diffnet_tf.checks import check_choice

IMAGE_AXES = (1, 2, 3)


def psnr(y_true, y_pred):
    """Peak signal-to-noise ratio of each image, in dB.

        PSNR = 20 log10(max(y_true) - min(y_true)) - 10 log10(mean((y_true - y_pred)^2))

    with the range and the mean squared error taken per image. A perfect prediction gives
    +inf; a constant true image has no range and gives -inf or nan.

    Args:
        y_true: (B, H, W, 1) reference images.
        y_pred: (B, H, W, 1) estimates.

    Returns:
        (B,) tensor of PSNR values.
    """
    y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
    data_range = ops.max(y_true, axis=IMAGE_AXES) - ops.min(y_true, axis=IMAGE_AXES)
    mse = ops.mean(ops.square(y_true - y_pred), axis=IMAGE_AXES)
    return 20.0 * ops.log10(data_range) - 10.0 * ops.log10(mse)


def batch_psnr(y_true, y_pred):
    """PSNR over a whole batch as the authors' released code computes it (one number):
    the range and the mean squared error are taken over all images together.

    Args:
        y_true: (B, H, W, 1) reference images.
        y_pred: (B, H, W, 1) estimates.

    Returns:
        scalar tensor, in dB.
    """
    y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
    data_range = ops.max(y_true) - ops.min(y_true)
    return 20.0 * ops.log10(data_range) - 10.0 * ops.log10(ops.mean(ops.square(y_true - y_pred)))


def relative_l2(y_true, y_pred):
    """Relative l2 error of each image, ||y_true - y_pred||_2 / ||y_true||_2.

    Args:
        y_true: (B, H, W, 1) reference images.
        y_pred: (B, H, W, 1) estimates.

    Returns:
        (B,) tensor.
    """
    y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
    error = ops.sqrt(ops.sum(ops.square(y_true - y_pred), axis=IMAGE_AXES))
    return error / ops.sqrt(ops.sum(ops.square(y_true), axis=IMAGE_AXES))


def ssim(y_true, y_pred, max_val=1.0):
    """Structural similarity of each image (tf.image.ssim, 11x11 Gaussian window).

    Args:
        y_true: (B, H, W, 1) reference images, H and W at least 11.
        y_pred: (B, H, W, 1) estimates.
        max_val: the images' dynamic range (1 for images scaled to maximum 1).

    Returns:
        (B,) tensor.
    """
    y_true = tf.convert_to_tensor(y_true, tf.float32)
    return tf.image.ssim(y_true, tf.cast(y_pred, tf.float32), max_val=max_val)


PER_IMAGE_METRICS = {"psnr": psnr, "relative_l2": relative_l2, "ssim": ssim}


@keras.saving.register_keras_serializable(package="diffnet_tf")
class ImageMetric(keras.metrics.MeanMetricWrapper):
    """Running mean over images of a per-image measure, for `model.compile(metrics=...)`.

    Args:
        metric: 'psnr', 'relative_l2' or 'ssim' ('ssim' needs the TensorFlow backend).
        name: the name shown in logs and TensorBoard (default: `metric`).
        dtype: the metric's dtype.
    """

    def __init__(self, metric="psnr", name=None, dtype=None):
        check_choice(metric, tuple(PER_IMAGE_METRICS), "metric")
        super().__init__(fn=PER_IMAGE_METRICS[metric], name=name or metric, dtype=dtype)
        self.metric = metric

    def get_config(self):
        return {"metric": self.metric, "name": self.name, "dtype": self.dtype}
