"""The per-epoch backup a run resumes from: one file per epoch (model and optimizer state,
`epoch-0007.weights.h5`, the training time so far beside it), the newest two kept, the
newest readable one restored. Keras APIs only: it runs on every backend.
"""

import math
import re
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from diffnet_tf.files import (check_free_space, make_folder, read_json, replace_atomically,
                              write_json)

_BACKUP = re.compile(r"epoch-(\d{4,})\.weights\.h5")


def backups(backup_dir):
    """The epoch backups in a folder, newest first: a list of (epoch, path)."""
    found = [(int(m.group(1)), path) for path in Path(backup_dir).glob("epoch-*.weights.h5")
             if (m := _BACKUP.fullmatch(path.name))]
    return sorted(found, reverse=True)


def latest_backup(backup_dir):
    """The newest backup's path, or None."""
    found = backups(backup_dir)
    return found[0][1] if found else None


class EpochBackup(keras.callbacks.Callback):
    """Saves the model's and the optimizer's state after every epoch, atomically.

    Each epoch is one file, backup_dir/epoch-NNNN.weights.h5 (the epoch number is part of
    the file, so weights and epoch can never disagree), written to a temporary file and
    renamed; epoch-NNNN.json beside it holds the training time so far. The newest `keep`
    epochs stay, so a damaged newest file leaves an older one to fall back to. The free
    space is checked first: h5py's C library can crash the process on a full disk, so a
    disk without room for the file raises a `files.WriteFailed` and the older epochs stay.

    Args:
        backup_dir: the folder (created).
        train_seconds: training time of earlier sessions, carried on.
        keep: how many epochs to keep (>= 2).
    """

    def __init__(self, backup_dir, train_seconds=0.0, keep=2):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.train_seconds = train_seconds
        self.keep = keep
        self.started = None

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        make_folder(self.backup_dir)
        path = self.backup_dir / f"epoch-{epoch + 1:04d}.weights.h5"
        check_free_space(path, backup_size(self.model))
        seconds = self.train_seconds + time.perf_counter() - self.started
        write_json(path.with_name(f"epoch-{epoch + 1:04d}.json"),
                   {"epoch": epoch + 1, "train_seconds": seconds})
        replace_atomically(path, lambda temporary: self.model.save_weights(temporary))
        for _, old in backups(self.backup_dir)[self.keep :]:
            old.unlink()
            old.with_name(old.name.replace(".weights.h5", ".json")).unlink(missing_ok=True)


def backup_size(model):
    """An upper bound of the bytes of an epoch backup of a compiled `model`: its weights
    and optimizer variables, with HDF5's headers (about 1 KiB per array, 2 counted)."""
    variables = model.weights + model.optimizer.variables
    return (sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)
            + 2048 * len(variables) + 65536)


def restore_backup(model, backup_dir):
    """Loads the newest readable epoch backup into a compiled model and its optimizer.

    A damaged file (empty, truncated, not HDF5) is named in a note and skipped for the one
    before it; with none readable the model keeps its initial state.

    Returns:
        (epoch, train_seconds, notes): the epochs already done (0 without a backup), the
        training time they took, and a list of messages for the user.
    """
    found = backups(backup_dir)
    if not found:
        return 0, 0.0, []
    model.optimizer.build(model.trainable_variables)
    variables = model.weights + model.optimizer.variables
    initial = [ops.convert_to_numpy(v) for v in variables]
    notes = []
    for epoch, path in found:
        try:
            model.load_weights(path)
        except Exception as error:  # h5py's OSError, a truncated or mismatched file
            notes.append(f"The backup {path} could not be read ({type(error).__name__}: "
                         f"{error}); falling back to the one before it.")
            continue
        record = path.with_name(f"epoch-{epoch:04d}.json")
        seconds = read_json(record)["train_seconds"] if record.exists() else 0.0
        return epoch, seconds, notes
    for variable, value in zip(variables, initial):
        variable.assign(value)
    notes.append(f"No backup in {backup_dir} could be read: training starts from scratch.")
    return 0, 0.0, notes
