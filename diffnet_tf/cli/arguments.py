"""Flag values turned into what the programs use, their errors naming the flag: noise-level
lists and the distribution strategy."""

import math

from absl import app


def parse_noise_levels(values):
    """A --noise_levels list (strings) as unique finite floats >= 0, in the given order."""
    try:
        levels = list(dict.fromkeys(float(v) for v in values))
    except ValueError:
        raise app.UsageError(f"Expected --noise_levels to be numbers. Received {values}.") from None
    if not levels or not all(math.isfinite(level) and level >= 0 for level in levels):
        raise app.UsageError(f"Expected --noise_levels to be finite numbers >= 0. Received "
                             f"{values}.")
    return levels


def strategy(name):
    """The tf.distribute strategy of --strategy: None for 'default'."""
    if name == "default":
        return None
    import keras

    if keras.backend.backend() != "tensorflow":
        raise app.UsageError(f"Expected --strategy=default on the {keras.backend.backend()} "
                             "backend: --strategy=mirrored is TensorFlow's MirroredStrategy.")
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()
