"""Apply a saved DiffNet or U-Net to your own images.

    python -m experiments.restore --model runs/perona_malik/<run>/model.keras in.png out.png

Reads PNG, JPEG or .npy images of any size (colour is converted to grey with the ITU-R 601
weights, with a notice), scales each to maximum 1 as in training, applies the model (U-Net
inputs are padded to a multiple of 16 by mirroring and cropped back), undoes the scaling
and writes the result in the format of the output path's extension.
"""

import os

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

import diffnet_tf  # noqa: F401  (registers the model classes for loading)
from diffnet_tf.datasets import GREY_WEIGHTS
from diffnet_tf.models import UNet

# restore's --model (a file) would clash with the training studies' --model (a network
# name) when both modules are imported in one process, so restore keeps its own registry.
FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "Path of a saved model.keras.", flag_values=FLAGS)
FORMATS = (".png", ".jpg", ".jpeg", ".npy")


def _check_format(path):
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise ValueError(
            f"Expected an image file ending in one of {', '.join(FORMATS)}. Received {path!r}."
        )
    return extension


def read_image(path):
    """Reads one image as a float (H, W) array and the maximum value of its format.

    Returns:
        (image, full_scale): image in the file's units (as floats), and the value of a
        full-intensity pixel (255 or 65535 for PNG/JPEG, None for .npy).
    """
    extension = _check_format(path)
    try:
        if extension == ".npy":
            image, full_scale = np.load(path).astype(np.float64), None
        else:
            decoded = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
            full_scale = 65535 if decoded.dtype == tf.uint16 else 255
            image = decoded.numpy().astype(np.float64)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise ValueError(f"Could not read an image from {path!r}: {error}") from error
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        print(f"Note: {path} has {image.shape[-1]} channels; converting to grey (ITU-R 601).")
        image = image[..., :3] @ GREY_WEIGHTS
    elif image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(
            f"Expected a grey or colour image of shape (H, W), (H, W, 1), (H, W, 3) or "
            f"(H, W, 4) in {path!r}. Received shape {image.shape}."
        )
    return image, full_scale


def write_image(path, image, full_scale):
    """Writes a float (H, W) image; PNG/JPEG values are clipped to [0, full_scale]."""
    extension = _check_format(path)
    if extension == ".npy":
        np.save(path, image.astype(np.float32))
        return
    full_scale = full_scale or 255
    dtype = tf.uint16 if full_scale == 65535 and extension == ".png" else tf.uint8
    scale = 65535 if dtype == tf.uint16 else 255
    pixels = np.clip(np.round(image / full_scale * scale), 0, scale)[..., None]
    pixels = tf.constant(pixels, dtype)
    encoded = tf.io.encode_png(pixels) if extension == ".png" else tf.io.encode_jpeg(pixels)
    tf.io.write_file(path, encoded)


def restore(model, image):
    """Applies `model` to one (H, W) image of any size and returns an (H, W) array.

    The image is scaled to maximum 1 (the training convention) and back; for a U-Net it is
    mirror-padded to a multiple of 2^(levels - 1) and cropped back.
    """
    scale = image.max() if image.max() > 0 else 1.0
    height, width = image.shape
    factor = 2 ** (model.levels - 1) if isinstance(model, UNet) else 1
    padding = ((0, -height % factor), (0, -width % factor))
    padded = np.pad(image / scale, padding, mode="reflect" if factor > 1 else "constant")
    output = np.asarray(model.predict(padded[None, ..., None].astype(np.float32), verbose=0))
    return output[0, :height, :width, 0] * scale


def parse_flags(argv):
    """Parses restore's flags; returns the remaining arguments (program, input, output)."""
    remaining = FLAGS(argv)
    flags.FLAGS(remaining[:1])  # absl's app wants its global registry parsed too
    return remaining


def main(argv):
    if len(argv) != 3:
        raise app.UsageError("Expected two arguments: an input image and an output path.")
    source, target = argv[1], argv[2]
    _check_format(target)
    if FLAGS.model is None or not os.path.exists(FLAGS.model):
        raise FileNotFoundError(f"No saved model at {FLAGS.model!r}: expected a model.keras file.")
    model = keras.saving.load_model(FLAGS.model)
    image, full_scale = read_image(source)
    write_image(target, restore(model, image), full_scale)
    print(f"Restored {source} ({image.shape[0]}x{image.shape[1]}) -> {target}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
