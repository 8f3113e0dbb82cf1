"""Saving and loading models: atomic saves, archive checks and loads whose errors name the
file."""

import os
import zipfile
import zlib

import keras

from diffnet_tf.files import DamagedFile, replace_atomically


def save_model(model, path):
    """model.save to `path`, atomically (a kill never leaves a partial model.keras; a full
    disk raises a `files.WriteFailed` naming `path`)."""
    replace_atomically(path, model.save)


def check_archive(path):
    """Raises a `files.DamagedFile` naming `path` unless it is a whole zip archive, the
    container of a .keras file: every member's CRC is checked, no model is built (cheap
    enough for a study's loop over its runs)."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise DamagedFile(f"{str(path)!r} is not a valid .keras file: expected a zip archive. "
                          f"Received {os.path.getsize(path):,} bytes that are not one (an "
                          "empty or truncated file?).") from error
    if damaged is not None:
        raise DamagedFile(f"{str(path)!r} is not a valid .keras file: its member {damaged} "
                          "fails its checksum (the file was damaged after it was written).")


def load_model(path):
    """keras.saving.load_model for inference (compile=False: no optimizer state is read, and
    a loss or metric the model was compiled with need not be registered); a damaged file
    raises a `files.DamagedFile` naming it."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"No saved model at {str(path)!r}: expected a .keras file.")
    if os.path.isdir(path):
        raise ValueError(f"Expected a saved model file (.keras). Received {str(path)!r}, a "
                         "folder.")
    if str(path).endswith(".keras"):
        check_archive(path)  # Keras would say "File not found" of a truncated one
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # zipfile, h5py, JSON or Keras errors from a damaged file
        raise DamagedFile(f"{str(path)!r} is not a valid .keras file ({type(error).__name__}: "
                          f"{error}).") from error
