"""Argument and shape checks shared by every module (a leaf: imports nothing of ours):
the one place for choices, numbers, integers and image batches.

Each check raises a ValueError that says what was expected and what was received.
"""

import math

import keras
import numpy as np

BOUNDARIES = ("neumann", "zero")
CHANNEL_MIXINGS = ("none", "full")  # Remark 4: channelwise or coupled filter maps


def check_choice(value, choices, name):
    """Raises unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"Unknown {name} {value!r}. Expected one of {', '.join(map(repr, choices))}."
        )
    return value


def check_image_batch_shape(shape, name="input", channels=1):
    """Raises unless `shape` is (B, H, W, channels); unknown (None) sizes are accepted.

    Args:
        shape: a tuple of ints or None, e.g. a Keras `input_shape`.
        name: what the array is, for the message.
        channels: the number of channels C expected, or None for any.
    """
    shape = tuple(shape)
    wrong_rank = len(shape) != 4
    if wrong_rank or (channels is not None and shape[-1] != channels):
        if channels is None:
            kind, last = "an image batch", "C"
        elif channels == 1:
            kind, last = "a single-channel image batch", 1
        else:
            kind, last = f"an image batch with {channels} channels", channels
        raise ValueError(
            f"Expected {name} to be {kind} of shape (B, H, W, {last}) "
            f"(wrong {'rank' if wrong_rank else 'channels'}). Received shape {shape}."
        )


def check_float_dtype(dtype, name="input"):
    """Raises unless `dtype` is a floating-point dtype (integer images are ambiguous:
    scale them to [0, 1] floats first)."""
    dtype = keras.backend.standardize_dtype(dtype)
    if "float" not in dtype:
        raise ValueError(
            f"Expected {name} to have a floating-point dtype (images scaled to [0, 1]). "
            f"Received dtype {dtype}."
        )


def check_image_batch(x, name="input", channels=1):
    """Shape and dtype check of an image batch (a tensor or array with .shape/.dtype)."""
    check_image_batch_shape(x.shape, name, channels)
    check_float_dtype(x.dtype, name)


def check_number(value, name, minimum=None, positive=False, maximum=None):
    """Raises unless `value` is a finite real number (not NaN, not +-inf, not a bool),
    >= `minimum` and <= `maximum` where they are given and > 0 where `positive`.

    Returns:
        `value` as a float.
    """
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (number and math.isfinite(value)):
        raise ValueError(f"Expected {name} to be a finite number. Received {value!r}.")
    if positive and value <= 0:
        raise ValueError(f"Expected {name} > 0. Received {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"Expected {name} >= {minimum}. Received {value!r}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"Expected {name} <= {maximum}. Received {value!r}.")
    return float(value)


def check_integer(value, name, minimum=0, maximum=None):
    """Raises unless `value` is an integer (not a bool) in [minimum, maximum].

    Returns:
        `value` as an int.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"Expected {name} to be an integer >= {minimum}. Received {value!r}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"Expected {name} <= {maximum}. Received {value}.")
    return int(value)
