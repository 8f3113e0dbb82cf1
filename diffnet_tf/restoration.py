"""Restoring your own images with a trained model: any size, in overlapping tiles, scaled
as in training.

    image, image_format = image_io.read_image("photo.png")
    restored = restore(model, image)            # (H, W, C) in the units it was read in

Tiles bound the memory (a DiffNet's activations are 32 channels of the tile's size) and
overlap by the model's receptive field, so a DiffNet's tiled result equals its
whole-image result up to float rounding: a pixel's output depends only on the input
within `receptive_radius` pixels, and every tile keeps only its pixels at least that far
from a cut (the image's own borders are the same in both). A U-Net's poolings make it
equivariant only to shifts by its multiple (16 by default), so its tiles start at
multiples of it and its tiled result equals its whole-image result too.
"""

import warnings

import keras
import numpy as np

from diffnet_tf.models import DiffNet
from diffnet_tf.unet import UNet

TILE = 512  # default tile side: about 40 MB per estimator activation


def receptive_radius(model):
    """How far (pixels) an output pixel can see into the input.

    DiffNet: each layer's estimator convolutions (kernel radius each) and its 5-point
    update (1). U-Net: its convolutions, poolings and upsamplings at their strides, a
    bound (larger than what training shapes).
    """
    if isinstance(model, UNet):
        down = sum(3 * 2**level for level in range(model.levels - 1))  # 2 convs + pooling
        up = sum(4 * 2**level for level in range(model.levels - 1))  # upsampling + 2 convs
        return down + 2 * 2 ** (model.levels - 1) + up + 1
    if isinstance(model, DiffNet):
        return sum(layer.estimator.depth * (layer.estimator.kernel_size // 2) + 1
                   for layer in model.diffusion_layers)
    raise ValueError(f"Expected a DiffNet or a UNet (a LinearDiffNet is tied to one image "
                     f"size). Received {type(model).__name__}.")


def _multiple(model):
    """What a U-Net's image sides must divide by (its poolings), 1 for a DiffNet."""
    return 2 ** (model.levels - 1) if isinstance(model, UNet) else 1


def _predict(model, window):
    """The model on one (h, w, C) window; a U-Net's input mirror-padded to its multiple."""
    factor = _multiple(model)
    height, width = window.shape[:2]
    padding = ((0, -height % factor), (0, -width % factor), (0, 0))
    padded = np.pad(window, padding, mode="reflect" if factor > 1 else "constant")
    output = keras.ops.convert_to_numpy(model.predict_on_batch(padded[None]))
    return output[0, :height, :width]


def _cuts(size, tile, margin, multiple=1):
    """(core start, core stop, window start, window stop) along one axis; each window
    starts at a multiple of `multiple` (a U-Net's poolings then see the whole image's
    grid) and at least `margin` before its core."""
    if tile <= 0 or tile >= size:
        return [(0, size, 0, size)]
    core = tile - 2 * margin
    if core < 1:
        raise ValueError(f"Expected a tile larger than twice the model's receptive radius "
                         f"({margin} pixels). Received tile={tile}.")
    starts = range(0, size, core)
    return [(s, min(s + core, size), max(s - margin, 0) // multiple * multiple,
             min(s + core + margin, size)) for s in starts]


def _restore_into(model, image, peak, output, tile, verbose):
    """Writes the model's result for `image` / peak, times peak, into `output`, tile by
    tile: the only full-size arrays are the image and the output.

    Args:
        model: a DiffNet or UNet.
        image: (H, W, C) float32 array (a view is fine).
        peak: the value scaled to 1 (the training convention).
        output: (H, W, C) float32 array to fill.
        tile: the tiles' side in pixels (0: the whole image at once).
        verbose: 1 a progress bar over the tiles, 2 a line at the end, 0 nothing.
    """
    margin = receptive_radius(model)
    rows, columns = (_cuts(n, tile, margin, _multiple(model)) for n in image.shape[:2])
    progbar = keras.utils.Progbar(len(rows) * len(columns), verbose=verbose, unit_name="tile")
    for y0, y1, wy0, wy1 in rows:
        for x0, x1, wx0, wx1 in columns:
            window = _predict(model, image[wy0:wy1, wx0:wx1] / peak)
            output[y0:y1, x0:x1] = window[y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0] * peak
            progbar.add(1)


def restore(model, image, tile=TILE, verbose=0):
    """Applies `model` to one (H, W, C) image of any size; returns (H, W, C) float32.

    The image is scaled to maximum 1 (the training convention) and back. A colour image
    given to a grey model is restored channel by channel, each channel scaled on its own.
    Tiles bound the memory: a 4000x4000 colour image needs the image, the output and one
    tile's activations.

    Args:
        model: a DiffNet or UNet with C or 1 channels.
        image: (H, W, C) float array, C = 1 or 3, in any units (PNG values in [0, 1]).
        tile: tile side in pixels; 0 for the whole image at once.
        verbose: 1 a progress bar over the tiles, 2 a line at the end, 0 nothing.

    Returns:
        (H, W, C) float32 array, in the image's units.
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 3 or image.shape[-1] not in (1, 3) or 0 in image.shape:
        raise ValueError(f"Expected a non-empty image of shape (H, W, 1) or (H, W, 3). "
                         f"Received shape {image.shape}.")
    channels = image.shape[-1]
    if model.channels not in (channels, 1):
        raise ValueError(f"Expected an image with {model.channels} channel(s) (or a grey "
                         f"model). Received {channels} channels.")
    _check_values(image)
    output = np.empty_like(image)
    groups = ([slice(None)] if model.channels == channels else
              [slice(c, c + 1) for c in range(channels)])  # a grey model: each channel
    for group in groups:
        peak = float(image[..., group].max())
        _restore_into(model, image[..., group], peak if peak > 0 else 1.0, output[..., group],
                      tile, verbose)
    _flag_out_of_range(image, output)
    return output


class OutputOutOfRange(UserWarning):
    """A restored image whose values leave the input's range by far: the input is unlike
    the training images (units, noise, content), so the result is not to be trusted."""


def _check_values(image):
    """Refuses an image that is not finite or has no positive maximum (the training
    convention scales each image to maximum 1)."""
    bad = int(np.size(image) - np.count_nonzero(np.isfinite(image)))
    if bad:
        raise ValueError(f"Expected finite pixel values. Received {bad:,} NaN or infinite "
                         f"value(s) of {image.size:,}.")
    if image.max() <= 0:
        raise ValueError(f"Expected an image with a positive maximum (it is scaled to maximum "
                         f"1, as in training). Received values in [{image.min():g}, "
                         f"{image.max():g}].")


def _flag_out_of_range(image, output):
    """Warns (OutputOutOfRange) when the output leaves [lo - span, hi + span], the input's
    range [lo, hi] widened by its span on both sides."""
    lo, hi = float(image.min()), float(image.max())
    span = hi - lo or hi
    out_lo, out_hi = float(output.min()), float(output.max())
    if not (np.isfinite(out_lo) and np.isfinite(out_hi)) or out_lo < lo - span or out_hi > hi + span:
        warnings.warn(f"The restored image's values [{out_lo:g}, {out_hi:g}] leave the input's "
                      f"range [{lo:g}, {hi:g}] by far: the image is unlike the model's training "
                      "images (units, noise level, content); check the result.",
                      OutputOutOfRange, stacklevel=3)


def restore_channels(model, images):
    """A grey model applied to each channel of a batch of colour images, each channel scaled
    to maximum 1 and back (as `restore` does for one image).

    Args:
        model: a single-channel model.
        images: (N, H, W, C) float array.

    Returns:
        (N, H, W, C) float32 array.
    """
    n, height, width, channels = images.shape
    planes = np.moveaxis(np.asarray(images, np.float32), -1, 1).reshape(-1, height, width, 1)
    peak = planes.max(axis=(1, 2, 3), keepdims=True)
    peak = np.where(peak > 0, peak, 1.0)
    outputs = np.asarray(model.predict(planes / peak, verbose=0)) * peak
    return np.moveaxis(outputs.reshape(n, channels, height, width), 1, -1)
