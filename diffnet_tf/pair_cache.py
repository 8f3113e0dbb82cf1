"""The cache file of a split's (input, target) pairs: its key, its path, a load of its first
n pairs that reads only them, checked, and an atomic save.

    data_dir/cache/<problem>_<source>_<split>_<size>px_<16 hex digits of the key's hash>.pairs

Layout, uncompressed so that a cell reads the pairs it needs and no other (the paper's pool
of 90,000 training pairs of 96x96 takes 6.6 GB, and each cell of the generalisation study,
Fig. 10, reads its first N): one line of JSON, the header,

    {"format": 5, "shape": [n, H, W, C], "complete": bool, "chunk": k, "sha256": [...]}

padded with spaces to a multiple of 4096 bytes, then `inputs`, then `targets`: raw
little-endian float32 (n, H, W, C) in C order. `complete`: the arrays hold the whole split.
`sha256[j]` is the digest of pairs j*k .. (j+1)*k - 1 (their inputs' bytes, then their
targets'), so pairs are checked a chunk at a time.

Integrity. A digest of the whole file checked on every load would read 6.6 GB for a cell
that needs 250 pairs, on every cell, from a shared data folder. Instead:
- on every load, before any array is read: the header parses, is of this FORMAT, has one
  digest per chunk, and the file's size is exactly the header's plus the arrays' (a
  truncated or extended file, a damaged header, an old format are found whatever n);
- on every load, the digest of each chunk the read touches (its n pairs and the rest of the
  last chunk, at most k - 1 pairs more): every pair returned has been checked;
- on demand: a damaged byte beyond a cell's chunks is found by the first read that reaches
  it; `load(path)` (the whole split) checks every chunk;
- at write time: the digests are taken of the arrays in memory, before they are written.
A read allocates its n pairs only (read into new arrays, which the caller owns), never
the pool. A file is written whole or not at all (`files.replace_atomically`), and a
damaged one is reported and deleted (unless a writer has replaced it meanwhile), to be
made again. A file is never replaced by a shorter one: processes that write the same cache
at once (a study's cells on several workers) check and write it under an flock on
<file>.lock. NumPy only.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from diffnet_tf import protocols
from diffnet_tf.checks import check_choice
from diffnet_tf.files import make_folder, replace_atomically, writing

FORMAT = 5  # bump when the generated numbers or the file's layout change; 4: heat in true
# float32 on every device (before it, a GPU made the disc data in TF32), the same data on
# every machine; 5: the uncompressed layout above with a digest per chunk, read n pairs at
# a time (4 was a .npz loaded whole, its one digest checked on every load)
CHUNK = 256  # pairs per digest (18 MB of 96x96 pairs): what a read checks beyond its n
_DTYPE = np.dtype("<f4")
_ALIGN = 4096  # the arrays start on a page
_MAX_HEADER = 1 << 24  # bytes; a pool of 100,000 pairs has a header of 27 KB
# the run's sizes, and the folder's path (its content's digest is in the key)
_NOT_IN_KEY = ("train_size", "val_size", "test_size", "validation", "images")


class _Damaged(ValueError):
    """A cache file that does not read as one; the message says what is wrong."""


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
            / f"{data.problem}_{data.source}_{split}_{data.image_size}px_{digest}.pairs")


def _digest(*parts):
    """The SHA-256 hex digest of the bytes of `parts` (arrays or bytes) one after another."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _header_line(shape, complete, digests):
    """The file's first line (bytes), padded so that the arrays start on a page."""
    text = json.dumps(dict(format=FORMAT, shape=list(shape), complete=bool(complete),
                           chunk=CHUNK, sha256=digests))
    return (text + " " * (-(len(text) + 1) % _ALIGN) + "\n").encode()


def _read_header(file):
    """The header of the open cache `file`, checked against the file's size; the file is
    left at the arrays' start.

    Raises:
        _Damaged: a header that does not parse, another format, or a size that differs.
    """
    line = file.readline(_MAX_HEADER)
    try:
        header = json.loads(line)
        shape, chunk, digests = header["shape"], header["chunk"], header["sha256"]
        fmt, complete = header["format"], header["complete"]
    except (ValueError, KeyError, TypeError) as error:  # JSON's and Unicode's are ValueErrors
        raise _Damaged(f"unreadable header: {type(error).__name__}: {error}") from None
    if fmt != FORMAT:
        raise _Damaged(f"format {fmt!r}, expected {FORMAT}")
    if not (isinstance(shape, list) and len(shape) == 4 and isinstance(complete, bool)
            and all(isinstance(x, int) and x >= 0 for x in (*shape, chunk)) and chunk > 0
            and isinstance(digests, list) and len(digests) == -(-shape[0] // chunk)):
        raise _Damaged(f"a header that does not describe pairs: {line[:200]!r}")
    size, expected = os.fstat(file.fileno()).st_size, len(line) + 2 * math.prod(shape) * 4
    if size != expected:
        raise _Damaged(f"{size:,} bytes where its header says {expected:,}")
    return header


def _read_checked(file, header, n):
    """The first n pairs of the open cache `file` (at the arrays' start), each chunk they
    lie in checked against its digest: (inputs, targets), two new float32 arrays
    (n, H, W, C); the rest of the last chunk is read to check it, and dropped."""
    (held, *image), chunk = header["shape"], header["chunk"]
    row = math.prod(image) * _DTYPE.itemsize
    offsets = (file.tell(), file.tell() + held * row)
    arrays = tuple(np.empty((n, *image), _DTYPE) for _ in offsets)
    for j, start in enumerate(range(0, n, chunk)):
        kept, stop = min(start + chunk, n), min(start + chunk, held)
        parts = []
        for array, offset in zip(arrays, offsets):
            file.seek(offset + start * row)
            if file.readinto(array[start:kept]) != (kept - start) * row:
                raise _Damaged(f"pairs {start} to {kept - 1} end early")
            parts += [array[start:kept], file.read((stop - kept) * row)]
        if _digest(*parts) != header["sha256"][j]:
            raise _Damaged(f"checksum mismatch in pairs {start} to {stop - 1}")
    return arrays


def load(path, n=None):
    """The first n pairs stored at `path`, checked against the digests of the chunks they
    lie in (n None: every pair, every chunk checked); only they are read and allocated.

    Returns:
        (inputs, targets, complete): two new float32 arrays (n, H, W, C) the caller owns
        and whether the file holds the whole split; or None when there is no file, it
        holds fewer than n pairs, or it is damaged (then it is deleted, with a warning
        naming it, to be made again).
    """
    path = Path(path)
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        return None
    with file:
        try:
            header = _read_header(file)
            held = header["shape"][0]
            if n is not None and n > held:
                return None
            return (*_read_checked(file, header, held if n is None else n), header["complete"])
        except _Damaged as error:
            warnings.warn(f"Corrupted cache file {path} ({error}); regenerating it.",
                          stacklevel=3)
            _discard(path, os.fstat(file.fileno()))
    return None


def _discard(path, damaged):
    """Deletes the cache file `path` if it is still the damaged one (`damaged`: its
    os.stat, taken while open, so that its inode is not reused), not a whole one a writer
    has put in its place since."""
    with _locked(path), contextlib.suppress(FileNotFoundError):
        if os.path.samestat(os.stat(path), damaged):
            path.unlink()


def stored_count(path):
    """(pairs held, complete) of the cache file at `path`, from its header alone (no array
    is read), or None when there is none or its header or size is wrong."""
    try:
        with open(path, "rb") as file:
            header = _read_header(file)
    except (OSError, _Damaged):
        return None
    return header["shape"][0], header["complete"]


@contextlib.contextmanager
def _locked(path):
    """Holds an exclusive flock on <path>.lock (waiting for another writer of `path`)."""
    lock_path = path.with_name(f"{path.name}.lock")
    with writing(lock_path):
        lock = open(lock_path, "a")
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write(temporary, header, arrays):
    """Writes the header line, then each array's bytes, to the file `temporary`."""
    with open(temporary, "wb") as file:
        file.write(header)
        for array in arrays:
            file.write(array.data)


def save(path, inputs, targets, complete):
    """Stores pairs at `path` with the digests of their chunks, atomically; creates the
    cache folder. A file there holding more pairs, or the whole split where these are
    not, is kept.

    Args:
        path: the cache file (`cache_path`).
        inputs, targets: float32 arrays (n, H, W, C) of one shape.
        complete: the arrays hold the whole split.
    """
    path = Path(path)
    inputs, targets = (np.ascontiguousarray(a, _DTYPE) for a in (inputs, targets))
    if inputs.ndim != 4 or inputs.shape != targets.shape:
        raise ValueError(f"Expected inputs and targets of one shape (n, H, W, C). Received "
                         f"{inputs.shape} and {targets.shape}.")
    make_folder(path.parent)
    with _locked(path):
        held = stored_count(path)
        if held is None or not (held[0] > len(inputs) or held[1] > complete):
            digests = [_digest(inputs[s : s + CHUNK], targets[s : s + CHUNK])
                       for s in range(0, len(inputs), CHUNK)]
            header = _header_line(inputs.shape, complete, digests)
            replace_atomically(path, lambda temporary: _write(temporary, header,
                                                              (inputs, targets)))
