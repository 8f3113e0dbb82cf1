"""The cache file of a split's (input, target) pairs: its key, its path, a verified load and
an atomic save.

    data_dir/cache/<problem>_<source>_<split>_<size>px_<16 hex digits of the key's hash>.npz

holding `inputs`, `targets` (float32 (n, H, W, C)), `complete` (the whole split) and
`sha256` (of the shapes and the arrays). A file is written whole or not at all
(`files.replace_atomically`), and a damaged one is detected, reported and deleted. NumPy
only.
"""

import dataclasses
import hashlib
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from diffnet_tf import protocols
from diffnet_tf.checks import check_choice
from diffnet_tf.files import replace_atomically

FORMAT = 3  # bump when the generated numbers change
_RUN_SIZES = ("train_size", "val_size", "test_size", "validation")


def cache_key(data, split):
    """What identifies a split's pairs: every `spec.DataSpec` field that changes the numbers,
    the split and the format; not the run's sizes, which only say how many of the split's
    first images are used.

    Returns:
        A JSON-ready dict.
    """
    check_choice(split, protocols.SPLITS, "split")
    fields = {k: v for k, v in dataclasses.asdict(data).items() if k not in _RUN_SIZES}
    return dict(format=FORMAT, split=split, **fields)


def cache_path(data_dir, data, split):
    """The cache file of `data`'s `split` under `data_dir/cache/` (a Path); equal keys, one
    file."""
    key = cache_key(data, split)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return (Path(data_dir) / "cache"
            / f"{data.problem}_{data.source}_{split}_{data.image_size}px_{digest}.npz")


def _digest(inputs, targets):
    h = hashlib.sha256(f"{inputs.shape} {targets.shape}".encode())
    for array in (inputs, targets):
        h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def load(path):
    """The pairs stored at `path`, verified against their checksum.

    Returns:
        (inputs, targets, complete), or None when there is no file or it is damaged (then
        it is deleted, with a warning, to be made again).
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            inputs, targets = stored["inputs"], stored["targets"]
            digest, complete = str(stored["sha256"]), bool(stored["complete"])
        if _digest(inputs, targets) == digest:
            return inputs, targets, complete
        reason = "checksum mismatch"
    except FileNotFoundError:
        return None
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError) as error:  # damaged file
        reason = f"{type(error).__name__}: {error}"
    warnings.warn(f"Corrupted cache file {path} ({reason}); regenerating it.", stacklevel=3)
    Path(path).unlink(missing_ok=True)
    return None


def save(path, inputs, targets, complete):
    """Stores pairs at `path` with their checksum, atomically; creates the cache folder.

    Args:
        path: the cache file (`cache_path`).
        inputs, targets: float32 arrays (n, H, W, C).
        complete: the arrays hold the whole split.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(temporary):
        with open(temporary, "wb") as file:
            np.savez(file, inputs=inputs, targets=targets, complete=complete,
                     sha256=_digest(inputs, targets))

    replace_atomically(path, write)
