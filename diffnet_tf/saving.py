"""Saving and loading models: atomic saves, and loads whose errors name the file."""

import os
import zipfile

import keras

from diffnet_tf.files import DamagedFile, replace_atomically


def save_model(model, path):
    """model.save to `path`, atomically (a kill never leaves a partial model.keras)."""
    replace_atomically(path, model.save)


def load_model(path):
    """keras.saving.load_model; a damaged file raises a `files.DamagedFile` naming it."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"No saved model at {str(path)!r}: expected a .keras file.")
    if str(path).endswith(".keras") and not zipfile.is_zipfile(path):  # Keras: "File not found"
        raise DamagedFile(f"{str(path)!r} is not a valid .keras file: expected a zip archive. "
                         f"Received {os.path.getsize(path):,} bytes that are not one (an empty "
                         "or truncated file?).")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # zipfile, h5py, JSON or Keras errors from a damaged file
        raise DamagedFile(f"{str(path)!r} is not a valid .keras file ({type(error).__name__}: "
                         f"{error}).") from error
