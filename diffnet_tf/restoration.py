"""Restoring your own images with a trained model: any size, scaled as in training.

    image, format = image_io.read_image("photo.png")
    restored = restore(model, image)            # (H, W, C) as read, in the same units
"""

import numpy as np

from diffnet_tf.synthetic import GREY_WEIGHTS
from diffnet_tf.models import UNet


def restore(model, image):
    """Applies `model` to one (H, W, C) image of any size and returns (H, W, C') float32.

    The image is scaled to maximum 1 (the training convention) and back; for a U-Net it is
    mirror-padded to a multiple of 2^(levels - 1) and cropped back. A colour image given to
    a grey model is converted to grey (ITU-R 601 weights) first.

    Args:
        model: a Keras model mapping (1, H, W, C) to (1, H, W, C).
        image: (H, W, C) float array, C = 1 or 3, not all zero-sized.

    Returns:
        (H, W, C') float32 array, C' the model's channels.
    """
    image = np.asarray(image, np.float32)
    if image.shape[-1] == 3 and getattr(model, "channels", 1) == 1:
        image = (image @ GREY_WEIGHTS)[..., None]
    scale = image.max() if image.max() > 0 else 1.0
    height, width = image.shape[:2]
    factor = 2 ** (model.levels - 1) if isinstance(model, UNet) else 1
    padding = ((0, -height % factor), (0, -width % factor), (0, 0))
    padded = np.pad(image / scale, padding, mode="reflect" if factor > 1 else "constant")
    output = np.asarray(model.predict(padded[None], verbose=0))
    return output[0, :height, :width] * scale
