"""The cache file of a split's (input, target) pairs: its key, its path, a verified load and
an atomic save.

    data_dir/cache/<problem>_<source>_<split>_<size>px_<16 hex digits of the key's hash>.npz

holding `inputs`, `targets` (float32 (n, H, W, C)), `complete` (the whole split) and
`sha256` (of the shapes and the arrays). A file is written whole or not at all
(`files.replace_atomically`), and a damaged one is detected, reported and deleted. A file
is never replaced by a shorter one: processes that write the same cache at once (a study's
cells on several workers) check and write it under an flock on <file>.lock. NumPy only.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from diffnet_tf import protocols
from diffnet_tf.checks import check_choice
from diffnet_tf.files import make_folder, replace_atomically, writing

FORMAT = 4  # bump when the generated numbers change; 4: heat in true float32 on every
# device (before it, a GPU made the disc data in TF32), the same data on every machine
# the run's sizes, and the folder's path (its content's digest is in the key)
_NOT_IN_KEY = ("train_size", "val_size", "test_size", "validation", "images")


def cache_key(data, split):
    """What identifies a split's pairs: every `spec.DataSpec` field that changes the numbers
    (the heat solver, a folder's content digest among them), the split and the format; not
    the run's sizes, which only say how many of the split's first images are used, nor a
    folder's path (moved images are the same images), nor the training precision: the
    physics is true float32 on every device (FORMAT 4), so its pairs are the same anywhere.

    Returns:
        A JSON-ready dict.
    """
    check_choice(split, protocols.SPLITS, "split")
    fields = {k: v for k, v in dataclasses.asdict(data).items() if k not in _NOT_IN_KEY}
    if fields["images_digest"] is None:  # keys made before the folder source stay the same
        del fields["images_digest"]
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


def stored_count(path):
    """(pairs held, complete) of the cache file at `path`, from its headers alone (no array
    is read), or None when there is none or its headers do not read."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with zipfile.ZipFile(path) as archive:
            with archive.open("inputs.npy") as member:
                shape = readers[np.lib.format.read_magic(member)](member)[0]
            with archive.open("complete.npy") as member:
                return shape[0], bool(np.lib.format.read_array(member))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


@contextlib.contextmanager
def _locked(path):
    """Holds an exclusive flock on <path>.lock (waiting for another writer of `path`)."""
    lock_path = path.with_name(f"{path.name}.lock")
    with writing(lock_path):
        lock = open(lock_path, "a")
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def save(path, inputs, targets, complete):
    """Stores pairs at `path` with their checksum, atomically; creates the cache folder.
    A file there holding more pairs, or the whole split where these are not, is kept.

    Args:
        path: the cache file (`cache_path`).
        inputs, targets: float32 arrays (n, H, W, C).
        complete: the arrays hold the whole split.
    """
    path = Path(path)
    make_folder(path.parent)

    def write(temporary):
        with open(temporary, "wb") as file:
            np.savez(file, inputs=inputs, targets=targets, complete=complete,
                     sha256=_digest(inputs, targets))

    with _locked(path):
        held = stored_count(path)
        if held is None or not (held[0] > len(inputs) or held[1] > complete):
            replace_atomically(path, write)
